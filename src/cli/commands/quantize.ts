import { Command, InvalidArgumentError } from 'commander';
import type { QuantRules } from '../../mlx/affine.js';
import { planModel, quantizeModel, type QuantizeOptions } from '../../pipeline/quantize.js';
import { addAnalysisOptions, intIn, swanConfigFrom, type AnalysisFlags } from '../options.js';
import { progressBar } from '../progress.js';
import { allocationSummary, planDetails } from '../summary.js';

interface QuantizeFlags extends AnalysisFlags {
  output: string;
  manifest?: string;
  uniform?: boolean;
  qBits: number;
  mlxRules: QuantRules;
  overwrite?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

function rulesArg(v: string): QuantRules {
  if (v !== 'metal' && v !== 'cpu') throw new InvalidArgumentError('must be metal or cpu');
  return v;
}

export function quantizeCommand(): Command {
  const cmd = new Command('quantize')
    .description('quantize an HF model into an MLX model directory (SWAN mixed precision, or --uniform)')
    .argument('<model-dir>', 'HuggingFace model directory (config.json + safetensors)')
    .requiredOption('-o, --output <dir>', 'MLX model directory to create')
    .option('--manifest <file>', 'use the decisions of this manifest (swan or reference SWAN tool) instead of analysing')
    .option('--uniform', 'same bits for every Linear/Embedding, like mlx_lm.convert -q (baselines)')
    .option('--q-bits <n>', 'bits of --uniform', intIn([2, 3, 4, 5, 6, 8]), 4)
    .option(
      '--mlx-rules <rules>',
      "rounding rules of MLX's quantize kernel: metal (Apple GPU, what mlx_lm.convert does on a Mac) or cpu (MLX CPU kernel)",
      rulesArg,
      'metal',
    )
    .option('--overwrite', 'replace the output directory if it exists')
    .option('--dry-run', 'print the plan and exact output bytes without writing')
    .option('-v, --verbose', 'print the format of every tensor')
    .option('-q, --quiet', 'no progress bars or summary');
  addAnalysisOptions(cmd).action((dir: string, flags: QuantizeFlags) => {
    const show = !flags.quiet;
    const analyzeBar = progressBar('analyze', show);
    const writeBar = progressBar('write', show);
    const opts: QuantizeOptions = {
      strategy: flags.uniform ? 'uniform' : 'thresholds',
      bits: flags.qBits,
      groupSize: flags.qGroupSize,
      dtype: flags.dtype,
      rules: flags.mlxRules,
      manifestFile: flags.manifest,
      seed: flags.seed,
      swan: swanConfigFrom(flags),
      overwrite: flags.overwrite,
      onAnalyze: (done, total, a) => {
        analyzeBar.update(done, total, a.name);
        if (done === total) analyzeBar.stop();
      },
      onWrite: (done, total, name) => writeBar.update(done, total, name),
    };
    if (flags.dryRun) {
      const { plan } = planModel(dir, opts);
      analyzeBar.stop();
      process.stdout.write(`${flags.verbose ? planDetails(plan) + '\n\n' : ''}${allocationSummary(plan)}\n(dry run: nothing written)\n`);
      return;
    }
    const result = quantizeModel(dir, flags.output, opts);
    analyzeBar.stop();
    writeBar.stop();
    if (show) {
      process.stdout.write(
        `${flags.verbose ? planDetails(result.plan) + '\n\n' : ''}${allocationSummary(result.plan)}\n` +
          `wrote ${flags.output} (${result.shards.length} shard${result.shards.length > 1 ? 's' : ''}, ${result.bytes.toLocaleString('en-US')} bytes of tensors)\n`,
      );
    }
  });
  return cmd;
}
