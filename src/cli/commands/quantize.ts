import { Command } from 'commander';
import { AFFINE_BITS, FP_MODES, type QuantFormat, type QuantMode } from '../../format.js';
import { DEFAULTS, roundsWithSearch, QUANT_RECIPES, ROUNDINGS, STRATEGIES, type QuantRecipe, type QuantRules, type Rounding, type Strategy } from '../../options.js';
import { uploadModelDir } from '../../hub/upload.js';
import { DTYPE_NAMES } from '../../io/float.js';
import { dequantizeModel } from '../../pipeline/dequantize.js';
import { planModel, quantizeModel, resolveQuantizeOptions, type QuantizeOptions, type ResolvedOptions } from '../../pipeline/quantize.js';
import { addRevisionOption, isHubId, MODEL_ARG_HELP, resolveModelArg } from '../model-arg.js';
import type { SizeTarget } from '../../plan/target.js';
import { addEvalOptions, quantizeEval, type CardEvalFlags } from '../eval-options.js';
import type { TensorPin } from '../../plan/eligibility.js';
import { addAnalysisOptions, addRulesOption, formatsArg, intIn, oneOf, positiveFloat, sizeArg, swanConfigFrom, tensorPinArg, type AnalysisFlags } from '../options.js';
import { progressBar } from '../progress.js';
import { fragileWarnings } from '../../plan/fragile.js';
import { allocationSummary, budgetSummary, gptqSummary, nonFiniteWarning, planDetails, printWarnings, sizeChoiceLine } from '../summary.js';

interface QuantizeFlags extends AnalysisFlags, CardEvalFlags {
  output?: string;
  mlxPath?: string;
  hfPath?: string;
  revision?: string;
  quantize?: boolean;
  quantPredicate?: QuantRecipe;
  dequantize?: boolean;
  tensorType?: TensorPin[];
  uploadRepo?: string;
  private?: boolean;
  allMetrics?: boolean;
  manifest?: string;
  uniform?: boolean;
  strategy?: Strategy;
  targetBpw?: number;
  targetSize?: number;
  rounding?: Rounding;
  qBits?: number;
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

/** --strategy, --uniform / -q and the targets (the library resolves what is left out: resolveQuantizeOptions). */
function strategyOf(flags: QuantizeFlags): { strategy?: Strategy; target?: SizeTarget } {
  if (flags.quantize) flags.uniform = true;
  if (flags.targetBpw !== undefined && flags.targetSize !== undefined) throw new Error('give --target-bpw or --target-size, not both');
  const target: SizeTarget | undefined =
    flags.targetBpw !== undefined ? { bpw: flags.targetBpw } : flags.targetSize !== undefined ? { bytes: flags.targetSize } : undefined;
  if (flags.uniform && flags.strategy && flags.strategy !== 'uniform') throw new Error(`${flags.quantize ? '-q/--quantize' : '--uniform'} contradicts --strategy ${flags.strategy}`);
  const strategy = flags.uniform ? 'uniform' : flags.strategy;
  if (strategy && strategy !== 'budget' && target) throw new Error(`--target-bpw/--target-size need --strategy budget (got ${strategy})`);
  return { strategy, target };
}

/** The top of `swan quantize --help`: mlx_lm.convert's spelling and what it means here. */
const CONVERT_MAPPING = `Coming from mlx_lm.convert:
  mlx_lm.convert --hf-path M --mlx-path out -q --q-bits 4 --q-group-size 64
  swan quantize  --hf-path M --mlx-path out -q --q-bits 4 --q-group-size 64   (same tensors and config; --mlx-rules cpu on Linux)
  -q --quant-predicate mixed_2_6|mixed_3_4|mixed_3_6|mixed_4_6 and -d/--dequantize: as in convert
  swan quantize M -o out                                                   (swan's own allocation)
  M: a local directory or a Hub id (org/name, --revision); --upload-repo org/name publishes the result.
  Differences: the output directory is required (no default mlx_model); --quiet has no -q; an option
  that has no effect with the chosen strategy is an error.
`;

/**
 * Options that only matter under some plans: given elsewhere they would be silently ignored, so
 * they are refused (checked against the strategy the library resolved, whichever is the default).
 */
const ONLY_WHEN: { flag: string; key: keyof QuantizeFlags; applies: (o: ResolvedOptions, f: QuantizeFlags) => boolean; needs: string }[] = [
  { flag: '--q-bits', key: 'qBits', applies: (o) => o.strategy === 'uniform', needs: '-q/--quantize (uniform bits)' },
  { flag: '--q-group-size', key: 'qGroupSize', applies: (o) => o.strategy !== 'budget', needs: 'the uniform or thresholds strategy (the budget strategy chooses every group itself)' },
  { flag: '--weighting', key: 'weighting', applies: (o) => roundsWithSearch(o.rounding), needs: '--rounding search or gptq' },
  { flag: '--budget-keeps-protected', key: 'budgetKeepsProtected', applies: (o) => o.strategy === 'budget', needs: 'the budget strategy' },
  { flag: '--all-metrics', key: 'allMetrics', applies: (o) => o.strategy === 'thresholds' && !o.manifestFile, needs: 'the thresholds strategy analysing the model (no --manifest)' },
  { flag: '--threshold-2bit', key: 'threshold2bit', applies: (o) => o.strategy === 'thresholds' && !o.manifestFile, needs: 'the thresholds strategy analysing the model (no --manifest)' },
  { flag: '--threshold-8bit', key: 'threshold8bit', applies: (o) => o.strategy === 'thresholds' && !o.manifestFile, needs: 'the thresholds strategy analysing the model (no --manifest)' },
  { flag: '--threshold-16bit', key: 'threshold16bit', applies: (o) => o.strategy === 'thresholds' && !o.manifestFile, needs: 'the thresholds strategy analysing the model (no --manifest)' },
  { flag: '--score-protected', key: 'scoreProtected', applies: (o) => o.strategy !== 'uniform' && !o.manifestFile, needs: 'an analysis (not -q/--uniform, not --manifest)' },
  { flag: '--seed', key: 'seed', applies: (o) => o.strategy !== 'uniform' && !o.manifestFile, needs: 'an analysis (not -q/--uniform, not --manifest)' },
  { flag: '--protect', key: 'protect', applies: (o) => o.strategy !== 'uniform', needs: 'the thresholds or budget strategy (-q/--uniform quantizes every layer, like mlx_lm.convert)' },
  { flag: '--sensitive', key: 'sensitive', applies: (o) => o.strategy !== 'uniform', needs: 'the thresholds or budget strategy (-q/--uniform quantizes every layer, like mlx_lm.convert)' },
  { flag: '--manifest', key: 'manifest', applies: (o) => o.strategy !== 'uniform', needs: 'the thresholds or budget strategy' },
  { flag: '--q-mode', key: 'qMode', applies: (o) => o.strategy === 'uniform', needs: '-q/--quantize (the other strategies choose fp formats through --formats)' },
  { flag: '--imatrix', key: 'imatrix', applies: (o) => roundsWithSearch(o.rounding), needs: '--rounding search (the default of --target-*) or gptq' },
  { flag: '--private', key: 'private', applies: (_o, f) => f.uploadRepo !== undefined, needs: '--upload-repo' },
  { flag: '--verbose', key: 'verbose', applies: (_o, f) => !f.quiet, needs: 'no --quiet' },
];

/** Refuse every option the user gave that the resolved plan would not use. */
function refuseIneffective(cmd: Command, flags: QuantizeFlags, o: ResolvedOptions): void {
  for (const r of ONLY_WHEN) {
    if (cmd.getOptionValueSource(r.key) === 'cli' && !r.applies(o, flags)) {
      throw new Error(`${r.flag} has no effect here (strategy ${o.strategy}${o.manifestFile ? ' from --manifest' : ''}): it needs ${r.needs}`);
    }
  }
}

/** One of two spellings of the same thing (convert's and swan's), never both. */
function either(a: string | undefined, b: string | undefined, names: string): string | undefined {
  if (a !== undefined && b !== undefined) throw new Error(`give ${names}, not both`);
  return a ?? b;
}

export function quantizeCommand(): Command {
  const cmd = new Command('quantize')
    .description(
      "quantize an HF model (a directory or a Hub id) into an MLX model directory: by default the least expected damage at the bytes SWAN's thresholds would write; or a size target, --strategy thresholds (SWAN as published) or -q uniform like mlx_lm.convert",
    )
    .addHelpText('before', CONVERT_MAPPING)
    .argument('[model]', MODEL_ARG_HELP)
    .option('--hf-path <model>', 'the model, as mlx_lm.convert spells it (= the model argument)')
    .option('-o, --output <dir>', 'MLX model directory to create (required unless --dry-run; convert\'s default mlx_model is not assumed)')
    .option('--mlx-path <dir>', 'the output directory, as mlx_lm.convert spells it (= -o)')
    .option('--upload-repo <org/name>', 'after the output is complete, upload it to this Hub model repo (created if missing; token: HF_TOKEN)')
    .option('--private', 'with --upload-repo: create the repo private')
    .option(
      '--manifest <file>',
      'plan from this manifest instead of analysing: its decisions (thresholds; swan or reference SWAN tool) or its measurements (budget: re-plans in seconds)',
    )
    .option('--target-bpw <x>', 'size target in bits per weight as mlx-lm counts them (scales, biases and float tensors included; default: the bytes --strategy thresholds would write)', positiveFloat)
    .option(
      '--target-size <size>',
      'size target in bytes of tensors (weights, scales, biases, float tensors; not the tokenizer, config or safetensors headers): 5.2GB, 4.8GiB, 123456B',
      sizeArg,
    )
    .option(
      '--strategy <s>',
      'budget (default): least expected damage within the target, which defaults to the bytes SWAN\'s thresholds would write; thresholds: SWAN as published (default with --manifest and no target); uniform',
      oneOf(STRATEGIES),
    )
    .option(
      '--rounding <r>',
      `rtn: bit-exact MLX round-to-nearest; search: per-group scale search (never worse than RTN on any group); gptq: GPTQ under each layer's input covariance (needs --imatrix from \`swan imatrix --covariance\`; per tensor the search's result where GPTQ's output error is not lower); all plain MLX affine (default: ${DEFAULTS.budgetRounding} with the budget strategy, ${DEFAULTS.covarianceRounding} when its --imatrix has covariances, ${DEFAULTS.rounding} otherwise)`,
      oneOf(ROUNDINGS),
    )
    .option('-q, --quantize', 'uniform quantization of every Linear/Embedding, as mlx_lm.convert -q (= --strategy uniform)')
    .option('--uniform', 'same as -q/--quantize')
    .option('--q-bits <n>', `bits of -q/--quantize (default ${DEFAULTS.bits}); an error with any other strategy`, intIn(AFFINE_BITS))
    .option('--q-mode <mode>', `-q: affine, or an MLX fp mode (${FP_MODES.join(', ')}: bits and group are the mode's, as mlx_lm.convert --q-mode)`, oneOf(['affine', ...FP_MODES] as const), 'affine')
    .option(
      '--formats <list>',
      'only these quantized formats, in every strategy (default: affine; the fp modes are opt-in, e.g. --formats affine,fp; float is always allowed): comma-separated terms, a term matching formats by words joined with "-": affine, mxfp4, nvfp4, mxfp8, fp, <n>bit, g<n>; e.g. 4bit-g64,8bit-g64 or affine-g64 or mxfp4,8bit',
      formatsArg,
    )
    .option(
      '--imatrix <file>',
      "importance matrix from `swan imatrix` (opt-in calibration; swan differs from mlx-lm here): its per-channel activation energy replaces the norm-gain prior in --rounding search (how each group is rounded); made with --covariance, the budget rounds by GPTQ (--rounding gptq); the plan stays the data-free one",
    )
    .option('--quant-predicate <recipe>', `with -q: mlx_lm.convert's mixed recipe (${QUANT_RECIPES.join(', ')}), the same bits per layer and the same config.json`, oneOf(QUANT_RECIPES))
    .option('--tensor-type <pattern=format>', 'pin tensors whose name matches PATTERN (regex) to FORMAT: 6bit-g64, 8bit (g64), float; repeatable, first match wins, honoured by every strategy', tensorPinArg)
    .option('--budget-keeps-protected', "budget: keep SWAN's built-in protected tensors (embeddings, head, norms) in float, as thresholds does (default: the budget may quantize them)")
    .option('--all-metrics', 'thresholds: compute the SVD and output metrics even for tensors whose bits the cheap metrics already decide')
    .option('--overwrite', 'replace the output directory if it exists')
    .option('--dry-run', 'print the plan, the per-format table and the exact output bytes without writing (-o and --upload-repo may stay in the command: nothing is written or uploaded)')
    .option('-v, --verbose', 'print the format of every tensor (budget: its importance and expected damage, and the three tensors that dominate the damage)')
    .option('--quiet', 'no progress bars or summary (no short form: -q is --quantize, as in mlx_lm.convert)')
    .option('-d, --dequantize', 'as mlx_lm.convert -d: an MLX model with affine-quantized layers back to float (--dtype, default config torch_dtype)');
  addRevisionOption(cmd);
  addEvalOptions(addRulesOption(addAnalysisOptions(cmd))).action(async (arg: string | undefined, flags: QuantizeFlags) => {
    const show = !flags.quiet;
    if (flags.dequantize) return dequantizeCommand(cmd, arg, flags, show);
    const model = either(arg, flags.hfPath, 'the model argument or --hf-path');
    if (model === undefined) throw new Error('no model: give a directory or Hub id (or --hf-path)');
    const output = either(flags.output, flags.mlxPath, '-o/--output or --mlx-path');
    const { strategy, target } = strategyOf(flags);
    const analyzeBar = progressBar('analyze', show);
    const writeBar = progressBar('write', show);
    const opts: QuantizeOptions = {
      strategy,
      target,
      rounding: flags.rounding,
      weighting: flags.weighting,
      keepFloat: flags.protect,
      atLeast8: flags.sensitive,
      pins: flags.tensorType,
      budgetKeepsProtected: flags.budgetKeepsProtected,
      bits: flags.qBits,
      recipe: flags.quantPredicate,
      groupSize: flags.qGroupSize,
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
      jobs: flags.jobs,
      overwrite: flags.overwrite,
      repoId: flags.uploadRepo,
      onAnalyze: (done, total, a) => {
        analyzeBar.update(done, total, a.name);
        if (done === total) analyzeBar.stop();
      },
      onWrite: (done, total, name) => writeBar.update(done, total, name),
    };
    // Every refusal before any download or analysis.
    refuseIneffective(cmd, flags, resolveQuantizeOptions(opts));
    if (!flags.dryRun && output === undefined) throw new Error("required option '-o, --output <dir>' (or --mlx-path) not specified (or use --dry-run)");
    if (flags.uploadRepo !== undefined && !isHubId(flags.uploadRepo)) throw new Error(`--upload-repo ${flags.uploadRepo}: expected a Hub repo id org/name`);
    const { dir, hubId } = await resolveModelArg(model, { revision: flags.revision, show });
    opts.baseModel = hubId;
    if (flags.dryRun) {
      const { plan, exec, source, analysis } = planModel(dir, opts);
      analyzeBar.stop();
      printWarnings([...source.warnings, ...nonFiniteWarning(analysis?.nonfinite ?? new Map(), plan.dtype), ...fragileWarnings(plan, source.tied)]);
      process.stdout.write(`${flags.verbose ? planDetails(plan) + '\n\n' : ''}${allocationSummary(plan)}\n${budgetSummary(plan, exec.rounding)}${sizeChoiceLine(plan)}(dry run: nothing written)\n`);
      return;
    }
    const result = quantizeModel(dir, output!, opts);
    analyzeBar.stop();
    writeBar.stop();
    // Even with --quiet: what the output lacks or holds is the user's to know.
    printWarnings([...result.source.warnings, ...result.warnings, ...nonFiniteWarning(result.nonfinite, result.plan.dtype), ...fragileWarnings(result.plan, result.source.tied)]);
    if (show) {
      process.stdout.write(
        `${flags.verbose ? planDetails(result.plan) + '\n\n' : ''}${allocationSummary(result.plan)}\n${budgetSummary(result.plan, result.exec.rounding)}${gptqSummary(result.gptq)}${sizeChoiceLine(result.plan)}` +
          `wrote ${output} (${result.shards.length} shard${result.shards.length > 1 ? 's' : ''}, ${result.bytes.toLocaleString('en-US')} bytes of tensors)\n`,
      );
    }
    quantizeEval(dir, result.outDir, flags, show);
    if (flags.uploadRepo) await uploadOutput(output!, result.outDir, flags.uploadRepo, flags.private === true, show);
  });
  return cmd;
}

/** What `-d` reads besides the model and the output; anything else given with it would be ignored. */
const DEQUANTIZE_OPTIONS = new Set(['dequantize', 'hfPath', 'output', 'mlxPath', 'dtype', 'overwrite', 'quiet', 'revision', 'uploadRepo', 'private']);

async function dequantizeCommand(cmd: Command, arg: string | undefined, flags: QuantizeFlags, show: boolean): Promise<void> {
  for (const o of cmd.options) {
    const key = o.attributeName();
    if (!DEQUANTIZE_OPTIONS.has(key) && cmd.getOptionValueSource(key) === 'cli') {
      throw new Error(`${o.long} has no effect with -d/--dequantize${key === 'quantize' || key === 'uniform' ? ' (choose quantize or dequantize, not both)' : ''}`);
    }
  }
  const model = either(arg, flags.hfPath, 'the model argument or --hf-path');
  if (model === undefined) throw new Error('no model: give a directory or Hub id (or --hf-path)');
  const output = either(flags.output, flags.mlxPath, '-o/--output or --mlx-path');
  if (output === undefined) throw new Error("required option '-o, --output <dir>' (or --mlx-path) not specified");
  const { dir } = await resolveModelArg(model, { revision: flags.revision, show });
  const r = dequantizeModel(dir, output, { dtype: flags.dtype, overwrite: flags.overwrite });
  printWarnings(r.warnings);
  if (show) process.stdout.write(`wrote ${output} (${DTYPE_NAMES[r.dtype]}, ${r.bytes.toLocaleString('en-US')} bytes of tensors)\n`);
  if (flags.uploadRepo) await uploadOutput(output, r.outDir, flags.uploadRepo, flags.private === true, show);
}

/** Upload the finished output; on failure the output stays and the message gives the command to retry. */
async function uploadOutput(output: string, outDir: string, repoId: string, isPrivate: boolean, show: boolean): Promise<void> {
  if (show) process.stderr.write(`uploading ${output} to ${repoId}…\n`);
  try {
    const r = await uploadModelDir(outDir, repoId, { private: isPrivate });
    if (show) process.stdout.write(`uploaded ${r.files.length} files to ${repoId}: ${r.url}\n`);
  } catch (e) {
    const retry = `hf upload ${repoId} ${output} .${isPrivate ? ' --private' : ''}`;
    throw new Error(`${output} is written and complete, but the upload failed: ${(e as Error).message} — the local output is kept; retry with \`${retry}\``);
  }
}
