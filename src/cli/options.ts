import { InvalidArgumentError, type Command } from 'commander';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, affine, FLOAT, parseFormats, type QuantFormat, type TensorFormat } from '../format.js';
import type { TensorPin } from '../plan/eligibility.js';
import { dtypeFromName, type FloatDType } from '../io/float.js';
import { BACKENDS, DEFAULTS, INPUT_WEIGHTINGS, QUANT_RULES, type InputWeighting } from '../options.js';
import { parseSize } from '../plan/target.js';
import { DEFAULT_SWAN_CONFIG, type SwanConfig } from '../plan/swan-rules.js';

/** A validator accepting exactly the values of one of src/options.ts's arrays. */
export function oneOf<T extends string>(allowed: readonly T[]) {
  return (v: string): T => {
    if (!(allowed as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be ${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`);
    return v as T;
  };
}

/** `--formats` (parseFormats in src/format.ts), its error as commander's. */
export function formatsArg(v: string): QuantFormat[] {
  try {
    return parseFormats(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^--formats: /, ''));
  }
}

export function intIn(allowed: readonly number[]) {
  return (v: string): number => {
    const n = Number(v);
    if (!allowed.includes(n)) throw new InvalidArgumentError(`must be one of ${allowed.join(', ')}`);
    return n;
  };
}

/** An integer option of at least `min`. */
export function atLeast(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer ≥ ${min}`);
    return n;
  };
}

export function nonNegInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

export function unitFloat(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number in [0, 1]');
  return n;
}

export function dtypeArg(v: string): FloatDType {
  const d = dtypeFromName(v);
  if (!d) throw new InvalidArgumentError('must be float16, bfloat16 or float32');
  return d;
}

export function positiveFloat(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

export function sizeArg(v: string): number {
  try {
    return parseSize(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/**
 * `--tensor-type PATTERN=FORMAT` (llama-quantize's spelling): FORMAT is `<bits>bit` (group 64, as
 * mlx_lm's default), `<bits>bit-g<group>`, or `float` (the model dtype). PATTERN is a
 * case-insensitive regular expression searched in the HF tensor name.
 */
export function tensorPinArg(v: string, prev: TensorPin[] | undefined): TensorPin[] {
  const eq = v.lastIndexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected PATTERN=FORMAT, e.g. embed_tokens=6bit-g64, lm_head=8bit, norm=float');
  const pattern = v.slice(0, eq);
  const spec = v.slice(eq + 1).toLowerCase();
  try {
    new RegExp(pattern, 'i');
  } catch (e) {
    throw new InvalidArgumentError(`${pattern}: not a regular expression (${(e as Error).message})`);
  }
  let format: TensorFormat;
  const m = /^(\d+)bit(?:-g(\d+))?$/.exec(spec);
  if (spec === 'float') format = FLOAT;
  else if (m && AFFINE_BITS.includes(Number(m[1])) && AFFINE_GROUP_SIZES.includes(Number(m[2] ?? DEFAULTS.groupSize))) {
    format = affine(Number(m[1]), Number(m[2] ?? DEFAULTS.groupSize));
  } else {
    throw new InvalidArgumentError(`${spec}: FORMAT must be float or <bits>bit[-g<group>] with bits ${AFFINE_BITS.join('/')} and group ${AFFINE_GROUP_SIZES.join('/')}`);
  }
  return [...(prev ?? []), { pattern, format }];
}

export const MLX_RULES_HELP =
  "rounding rules of MLX's quantize kernel: metal (Apple GPU, what mlx_lm.convert does on a Mac) or cpu (MLX CPU kernel)";

/** `--mlx-rules`, shared by analyze and quantize. */
export function addRulesOption(cmd: Command, help = MLX_RULES_HELP): Command {
  return cmd.option('--mlx-rules <rules>', help, oneOf(QUANT_RULES), DEFAULTS.rules);
}

/** Options shared by analyze and quantize: seed, SWAN thresholds and patterns, group size, dtype. */
export function addAnalysisOptions(cmd: Command): Command {
  return cmd
    .option('--seed <n>', 'seed of every random draw (same seed, same output)', nonNegInt, DEFAULTS.seed)
    .option('--threshold-2bit <x>', 'composite score at or below which a tensor gets 2-bit', unitFloat, DEFAULT_SWAN_CONFIG.threshold2)
    .option('--threshold-8bit <x>', 'composite score at or above which a tensor gets 8-bit', unitFloat, DEFAULT_SWAN_CONFIG.threshold8)
    .option('--threshold-16bit <x>', 'composite score at or above which a tensor stays 16-bit', unitFloat, DEFAULT_SWAN_CONFIG.threshold16)
    .option('--protect <pattern...>', 'extra name patterns kept in 16-bit (case-insensitive substrings)')
    .option('--sensitive <pattern...>', 'name patterns given at least 8-bit')
    .option('--q-group-size <n>', `thresholds: group size of the 4-bit tier; uniform: of every layer (default ${DEFAULTS.groupSize}; 16 only with --q-mode nvfp4); an error with the budget, which picks each tensor's group`, intIn([16, ...AFFINE_GROUP_SIZES]))
    .option('--dtype <type>', 'dtype of float tensors, scales and biases (default: config torch_dtype)', dtypeArg)
    .option('--score-protected', 'also compute the metrics of protected tensors (embeddings, head), as the reference does (thresholds: they stay 16-bit either way)')
    .option(
      '--weighting <w>',
      'what --rounding search minimises across input channels: norm (the error weighted by the squared gains of the RMSNorm feeding each layer; data-free) or none (plain squared error)',
      oneOf(INPUT_WEIGHTINGS),
      DEFAULTS.weighting,
    )
    .option('--allow-nonfinite', 'keep going when a tensor holds NaN/Inf or values beyond the dtype\'s range, and record them in the manifest and the card (default: refuse)')
    .option('--threads <n>', 'threads for the linear algebra (default: all cores)', positiveInt)
    .option('--jobs <n>', 'tensors analysed, then written, at once, each in its own worker thread with its share of --threads (default: 2; 1 with --threads 1 or a model under 4M weights); the output is the same for any value', positiveInt)
    .option('--backend <name>', 'kernel backend: auto (native BLAS when built, else WebAssembly SIMD, else JS), native, wasm or js', oneOf(BACKENDS), DEFAULTS.backend);
}

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export interface AnalysisFlags {
  seed: number;
  threshold2bit: number;
  threshold8bit: number;
  threshold16bit: number;
  protect?: string[];
  sensitive?: string[];
  qGroupSize?: number;
  dtype?: FloatDType;
  scoreProtected?: boolean;
  weighting: InputWeighting;
  allowNonfinite?: boolean;
  jobs?: number;
}

export function swanConfigFrom(f: AnalysisFlags): SwanConfig {
  return {
    ...DEFAULT_SWAN_CONFIG,
    threshold2: f.threshold2bit,
    threshold8: f.threshold8bit,
    threshold16: f.threshold16bit,
    protectedPatterns: [...DEFAULT_SWAN_CONFIG.protectedPatterns, ...(f.protect ?? [])],
    sensitivePatterns: [...(f.sensitive ?? [])],
  };
}
