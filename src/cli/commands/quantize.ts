import { Command } from 'commander';
import { AFFINE_BITS, FP_MODES, type QuantFormat, type QuantMode } from '../../format.js';
import { DEFAULTS, ROUNDINGS, STRATEGIES, type QuantRules, type Rounding, type Strategy } from '../../options.js';
import { planModel, quantizeModel, type QuantizeOptions } from '../../pipeline/quantize.js';
import type { SizeTarget } from '../../plan/target.js';
import { addEvalOptions, quantizeEval, type CardEvalFlags } from '../eval-options.js';
import { addAnalysisOptions, addRulesOption, formatsArg, intIn, oneOf, positiveFloat, sizeArg, swanConfigFrom, type AnalysisFlags } from '../options.js';
import { progressBar } from '../progress.js';
import { allocationSummary, budgetSummary, nonFiniteWarning, planDetails, printWarnings } from '../summary.js';

interface QuantizeFlags extends AnalysisFlags, CardEvalFlags {
  output?: string;
  allMetrics?: boolean;
  manifest?: string;
  uniform?: boolean;
  strategy?: Strategy;
  targetBpw?: number;
  targetSize?: number;
  rounding: Rounding;
  qBits: number;
  qMode: QuantMode;
  formats?: QuantFormat[];
  imatrix?: string;
  mlxRules: QuantRules;
  overwrite?: boolean;
  dryRun?: boolean;
  budgetKeepsProtected?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

/** --strategy, --uniform and the targets (the library picks budget when a target is given, thresholds otherwise). */
function strategyOf(flags: QuantizeFlags): { strategy?: Strategy; target?: SizeTarget } {
  if (flags.targetBpw !== undefined && flags.targetSize !== undefined) throw new Error('give --target-bpw or --target-size, not both');
  const target: SizeTarget | undefined =
    flags.targetBpw !== undefined ? { bpw: flags.targetBpw } : flags.targetSize !== undefined ? { bytes: flags.targetSize } : undefined;
  if (flags.uniform && flags.strategy && flags.strategy !== 'uniform') throw new Error(`--uniform contradicts --strategy ${flags.strategy}`);
  const strategy = flags.uniform ? 'uniform' : flags.strategy;
  if (strategy === 'budget' && !target) throw new Error('--strategy budget needs --target-bpw or --target-size');
  if (strategy && strategy !== 'budget' && target) throw new Error(`--target-bpw/--target-size need --strategy budget (got ${strategy})`);
  return { strategy, target };
}

export function quantizeCommand(): Command {
  const cmd = new Command('quantize')
    .description('quantize an HF model into an MLX model directory (SWAN mixed precision, or --uniform)')
    .argument('<model-dir>', 'HuggingFace model directory (config.json + safetensors)')
    .option('-o, --output <dir>', 'MLX model directory to create (not needed with --dry-run)')
    .option(
      '--manifest <file>',
      'plan from this manifest instead of analysing: its decisions (thresholds; swan or reference SWAN tool) or its measurements (budget: re-plans in seconds)',
    )
    .option('--target-bpw <x>', 'size target in bits per weight as mlx-lm counts them (scales, biases and float tensors included)', positiveFloat)
    .option('--target-size <size>', 'size target in bytes of tensors: 5.2GB, 4.8GiB, 123456B', sizeArg)
    .option('--strategy <s>', 'budget (default with a target): least expected damage within the target; thresholds (default otherwise): SWAN as published; uniform', oneOf(STRATEGIES))
    .option('--rounding <r>', 'rtn: bit-exact MLX round-to-nearest; search: per-group scale search (never worse than RTN on any group), still plain MLX affine', oneOf(ROUNDINGS), DEFAULTS.rounding)
    .option('--uniform', 'same bits for every Linear/Embedding, like mlx_lm.convert -q (baselines); = --strategy uniform')
    .option('--q-bits <n>', 'bits of --uniform', intIn(AFFINE_BITS), DEFAULTS.bits)
    .option('--q-mode <mode>', `--uniform: affine, or an MLX fp mode (${FP_MODES.join(', ')}: bits and group are the mode's, as mlx_lm.convert --q-mode)`, oneOf(['affine', ...FP_MODES] as const), 'affine')
    .option(
      '--formats <list>',
      'only these quantized formats, in every strategy (default: affine; the fp modes are opt-in, e.g. --formats affine,fp; float is always allowed): comma-separated terms, a term matching formats by words joined with "-": affine, mxfp4, nvfp4, mxfp8, fp, <n>bit, g<n>; e.g. 4bit-g64,8bit-g64 or affine-g64 or mxfp4,8bit',
      formatsArg,
    )
    .option(
      '--imatrix <file>',
      "importance matrix from `swan imatrix` (opt-in calibration; swan differs from mlx-lm here): its per-channel activation energy replaces the norm-gain prior in the budget's measured errors and in --rounding search",
    )
    .option('--budget-keeps-protected', "budget: keep SWAN's built-in protected tensors (embeddings, head, norms) in float, as thresholds does (default: the budget may quantize them)")
    .option('--all-metrics', 'thresholds: compute the SVD and output metrics even for tensors whose bits the cheap metrics already decide')
    .option('--overwrite', 'replace the output directory if it exists')
    .option('--dry-run', 'print the plan, the per-format table and the exact output bytes without writing')
    .option('-v, --verbose', 'print the format of every tensor')
    .option('-q, --quiet', 'no progress bars or summary');
  addEvalOptions(addRulesOption(addAnalysisOptions(cmd))).action((dir: string, flags: QuantizeFlags, command: Command) => {
    const show = !flags.quiet;
    const analyzeBar = progressBar('analyze', show);
    const writeBar = progressBar('write', show);
    const { strategy, target } = strategyOf(flags);
    const opts: QuantizeOptions = {
      strategy,
      target,
      rounding: flags.rounding,
      weighting: flags.weighting,
      keepFloat: flags.protect,
      atLeast8: flags.sensitive,
      budgetKeepsProtected: flags.budgetKeepsProtected,
      // An fp --q-mode sets its own bits and group: pass only what the user typed, for the check.
      bits: flags.qMode !== 'affine' && command.getOptionValueSource('qBits') !== 'cli' ? undefined : flags.qBits,
      groupSize: flags.qMode !== 'affine' && command.getOptionValueSource('qGroupSize') !== 'cli' ? undefined : flags.qGroupSize,
      mode: flags.qMode,
      formats: flags.formats,
      imatrix: flags.imatrix,
      dtype: flags.dtype,
      rules: flags.mlxRules,
      manifestFile: flags.manifest,
      seed: flags.seed,
      swan: swanConfigFrom(flags),
      scoreProtected: flags.scoreProtected,
      skipDecided: !flags.allMetrics,
      allowNonFinite: flags.allowNonfinite,
      overwrite: flags.overwrite,
      onAnalyze: (done, total, a) => {
        analyzeBar.update(done, total, a.name);
        if (done === total) analyzeBar.stop();
      },
      onWrite: (done, total, name) => writeBar.update(done, total, name),
    };
    if (flags.dryRun) {
      const { plan, exec, source, analysis } = planModel(dir, opts);
      analyzeBar.stop();
      printWarnings([...source.warnings, ...nonFiniteWarning(analysis?.nonfinite ?? new Map(), plan.dtype)]);
      process.stdout.write(`${flags.verbose ? planDetails(plan) + '\n\n' : ''}${allocationSummary(plan)}\n${budgetSummary(plan, exec.rounding)}(dry run: nothing written)\n`);
      return;
    }
    if (!flags.output) throw new Error("required option '-o, --output <dir>' not specified (or use --dry-run)");
    const result = quantizeModel(dir, flags.output, opts);
    analyzeBar.stop();
    writeBar.stop();
    // Even with --quiet: what the output lacks or holds is the user's to know.
    printWarnings([...result.source.warnings, ...result.warnings, ...nonFiniteWarning(result.nonfinite, result.plan.dtype)]);
    if (show) {
      process.stdout.write(
        `${flags.verbose ? planDetails(result.plan) + '\n\n' : ''}${allocationSummary(result.plan)}\n${budgetSummary(result.plan, result.exec.rounding)}` +
          `wrote ${flags.output} (${result.shards.length} shard${result.shards.length > 1 ? 's' : ''}, ${result.bytes.toLocaleString('en-US')} bytes of tensors)\n`,
      );
    }
    quantizeEval(dir, result.outDir, flags, show);
  });
  return cmd;
}
