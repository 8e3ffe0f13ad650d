import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { analyzeModel } from '../../pipeline/analyze.js';
import { buildManifest } from '../../pipeline/manifest-build.js';
import { makePlan } from '../../plan/plan.js';
import type { QuantRules } from '../../mlx/affine.js';
import { addAnalysisOptions, MLX_RULES_HELP, rulesArg, swanConfigFrom, type AnalysisFlags } from '../options.js';
import { progressBar } from '../progress.js';
import { allocationSummary } from '../summary.js';

export function analyzeCommand(): Command {
  const cmd = new Command('analyze')
    .description('score every tensor with SWAN and write the manifest (scores, decisions, formats, sizes)')
    .argument('<model-dir>', 'HuggingFace model directory (config.json + safetensors)')
    .option('-o, --output <file>', 'manifest file to write (default: print the manifest JSON to stdout)')
    .option('-q, --quiet', 'no progress bar or summary')
    .option('--mlx-rules <rules>', `${MLX_RULES_HELP}; the candidates' errors are measured with it`, rulesArg, 'metal')
    .option('--no-search-errors', 'skip measuring the error of --rounding search (faster; re-plans with it then need a new analysis)');
  addAnalysisOptions(cmd).action((dir: string, flags: AnalysisFlags & { output?: string; quiet?: boolean; mlxRules: QuantRules; searchErrors: boolean }) => {
    const bar = progressBar('analyze', !flags.quiet);
    const analysis = analyzeModel(dir, {
      seed: flags.seed,
      swan: swanConfigFrom(flags),
      dtype: flags.dtype,
      rules: flags.mlxRules,
      measureSearch: flags.searchErrors,
      weighting: flags.weighting,
      scoreProtected: flags.scoreProtected,
      onTensor: (done, total, a) => bar.update(done, total, a.name),
    });
    bar.stop();
    const items = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, decision: a.decision }));
    const plan = makePlan(items, analysis.source.dtype, { strategy: 'thresholds', groupSize: flags.qGroupSize });
    const manifest = buildManifest(analysis, plan);
    const json = JSON.stringify(manifest, null, 2) + '\n';
    if (flags.output) {
      const target = resolve(flags.output);
      const tmp = join(dirname(target), `.${basename(target)}.swan-tmp-${process.pid}`);
      writeFileSync(tmp, json);
      renameSync(tmp, target);
    } else {
      process.stdout.write(json);
    }
    if (!flags.quiet) {
      const scored = analysis.tensors.filter((a) => a.raw !== null).length;
      process.stderr.write(
        `${allocationSummary(plan)}\nanalysed ${analysis.tensors.length} tensors (${scored} scored) in ${analysis.seconds.toFixed(1)} s` +
          (flags.output ? `; manifest: ${flags.output}\n` : '\n'),
      );
    }
  });
  return cmd;
}
