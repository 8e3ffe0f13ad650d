/**
 * MLX storage formats: what MLX's affine quantization accepts, and the exact bytes each format
 * costs. The one byte formula of the project (outputTensors; formatBytes sums it).
 */
import { DTYPE_NAMES, DTYPE_SIZE, type FloatDType } from './io/float.js';

/** Bit widths MLX affine quantization packs. */
export const AFFINE_BITS: readonly number[] = Object.freeze([2, 3, 4, 5, 6, 8]);
/** Group sizes MLX affine quantization accepts. */
export const AFFINE_GROUP_SIZES: readonly number[] = Object.freeze([32, 64, 128]);

/**
 * MLX's floating-point quantization modes (`mx.quantize(w, mode=...)`, MLX ≥ 0.29): each allows one
 * (bits, group size) pair and stores one uint8 scale per group, no bias: an E8M0 power of two
 * (mxfp4, mxfp8) or an FP8 E4M3 value (nvfp4). Codes are FP4 E2M1 (4-bit modes) or FP8 E4M3.
 */
export const FP_MODES = ['mxfp4', 'nvfp4', 'mxfp8'] as const;
export type FpMode = (typeof FP_MODES)[number];
/** `mode` of a config.json quantization entry. */
export type QuantMode = 'affine' | FpMode;
export const FP_MODE_SPEC: Readonly<Record<FpMode, { bits: number; groupSize: number; scale: 'e8m0' | 'e4m3' }>> = Object.freeze({
  mxfp4: { bits: 4, groupSize: 32, scale: 'e8m0' },
  nvfp4: { bits: 4, groupSize: 16, scale: 'e4m3' },
  mxfp8: { bits: 8, groupSize: 32, scale: 'e8m0' },
});

/** How one tensor is stored in the output: kept in float (the model dtype) or MLX quantized. */
export type TensorFormat = { kind: 'float' } | QuantFormat;
export type AffineFormat = { kind: 'affine'; bits: number; groupSize: number };
/** An MLX floating-point mode; bits and groupSize are the mode's (FP_MODE_SPEC), kept for uniform handling. */
export type FpFormat = { kind: 'fp'; mode: FpMode; bits: number; groupSize: number };
export type QuantFormat = AffineFormat | FpFormat;

export const FLOAT: TensorFormat = { kind: 'float' };

export function fpFormat(mode: FpMode): FpFormat {
  return { kind: 'fp', mode, bits: FP_MODE_SPEC[mode].bits, groupSize: FP_MODE_SPEC[mode].groupSize };
}

/** The config.json `mode` of a quantized format. */
export function quantMode(format: QuantFormat): QuantMode {
  return format.kind === 'fp' ? format.mode : 'affine';
}

/** The format `mode` names with these bits and group size (for fp modes, only their own pair exists). */
export function formatOfMode(mode: QuantMode, bits: number, groupSize: number): QuantFormat {
  return mode === 'affine' ? affine(bits, groupSize) : fpFormat(mode);
}

export function affine(bits: number, groupSize: number): AffineFormat {
  return { kind: 'affine', bits, groupSize };
}

/** Every quantized format MLX has: the 18 affine bits × groups, then the fp modes. */
export const ALL_QUANT_FORMATS: readonly QuantFormat[] = Object.freeze([
  ...AFFINE_BITS.flatMap((bits) => AFFINE_GROUP_SIZES.map((g) => affine(bits, g))),
  ...FP_MODES.map(fpFormat),
]);

/**
 * The budget's candidates when `--formats` is not given: the affine formats. The fp modes are
 * opt-in (`--formats affine,fp`): on SmolLM2 at the bytes of 4-bit g64 the budget given every format
 * put the tied embedding (the output layer too) in mxfp4, and WikiText-2 perplexity was far worse
 * than the affine-only plan's (docs/allocation.md §1).
 */
export const DEFAULT_FORMATS: readonly QuantFormat[] = Object.freeze(ALL_QUANT_FORMATS.filter((f) => f.kind === 'affine'));

/** The family words `--formats` accepts: a mode, or `fp` for every fp mode. */
const FAMILY_WORDS = ['affine', ...FP_MODES, 'fp'] as const;

/**
 * `--formats`: which quantized formats the plan may use. A comma-separated list of terms; a format
 * is allowed when some term matches it. A term is words joined by `-`, all of which must match:
 * a family (`affine`, `mxfp4`, `nvfp4`, `mxfp8`, or `fp` for the three), `<n>bit` (bits), `g<n>`
 * (group size). Examples: `4bit-g64,8bit-g64`; `affine`; `g64`; `mxfp4,8bit`. Float (the model
 * dtype) is always allowed. Throws a one-line error on a word it does not know or a term that
 * matches no MLX format.
 */
export function parseFormats(text: string): QuantFormat[] {
  const terms = text.split(',').map((t) => t.trim().toLowerCase());
  const matched = new Set<QuantFormat>();
  for (const term of terms) {
    if (term === '') throw new Error(`--formats: empty term in ${JSON.stringify(text)}`);
    const tests = term.split('-').map((word) => formatWordTest(word, term));
    const hits = ALL_QUANT_FORMATS.filter((f) => tests.every((t) => t(f)));
    if (hits.length === 0) throw new Error(`--formats: ${JSON.stringify(term)} matches no MLX format`);
    for (const f of hits) matched.add(f);
  }
  return ALL_QUANT_FORMATS.filter((f) => matched.has(f));
}

function formatWordTest(word: string, term: string): (f: QuantFormat) => boolean {
  if ((FAMILY_WORDS as readonly string[]).includes(word)) return (f) => (word === 'fp' ? f.kind === 'fp' : quantMode(f) === word);
  const bits = /^(\d+)bits?$/.exec(word);
  if (bits) return (f) => f.bits === Number(bits[1]);
  const group = /^g(\d+)$/.exec(word);
  if (group) return (f) => f.groupSize === Number(group[1]);
  throw new Error(`--formats: unknown word ${JSON.stringify(word)} in ${JSON.stringify(term)} (use ${FAMILY_WORDS.join('/')}, <n>bit, g<n>)`);
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when MLX can affine-quantize a tensor of this shape with this group size. */
export function groupDivides(shape: number[], groupSize: number): boolean {
  return shape.length >= 2 && shape[shape.length - 1]! % groupSize === 0;
}

/** Exact bytes on disk: packed uint32 weight + scales (+ biases) as outputTensors lists them, or the float tensor. */
export function formatBytes(format: TensorFormat, shape: number[], dtype: FloatDType): number {
  return outputTensors('w.weight', shape, format, dtype).reduce((sum, t) => sum + t.byteLength, 0);
}

/** Nominal bits per weight of the format (16 for float 16-bit, 32 for f32). */
export function nominalBits(format: TensorFormat, dtype: FloatDType): number {
  return format.kind === 'float' ? DTYPE_SIZE[dtype] * 8 : format.bits;
}

export function formatLabel(format: TensorFormat, dtype: FloatDType): string {
  if (format.kind === 'fp') return format.mode;
  return format.kind === 'float' ? DTYPE_NAMES[dtype] : `${format.bits}-bit g${format.groupSize}`;
}

export function sameFormat(a: TensorFormat, b: TensorFormat): boolean {
  if (a.kind === 'float' || b.kind === 'float') return a.kind === b.kind;
  return quantMode(a) === quantMode(b) && a.bits === b.bits && a.groupSize === b.groupSize;
}

/** The output tensors one source tensor becomes: weight (+ scales, + biases for affine). */
export interface OutputTensor {
  name: string;
  dtype: FloatDType | 'U32' | 'U8';
  shape: number[];
  byteLength: number;
}

export function outputTensors(mlxName: string, shape: number[], format: TensorFormat, dtype: FloatDType): OutputTensor[] {
  if (format.kind === 'float') {
    return [{ name: mlxName, dtype, shape, byteLength: numel(shape) * DTYPE_SIZE[dtype] }];
  }
  const lead = shape.slice(0, -1);
  const cols = shape[shape.length - 1]!;
  const rows = numel(lead);
  const words = (cols * format.bits) / 32;
  const groups = cols / format.groupSize;
  const base = mlxName.replace(/\.weight$/, '');
  const weight: OutputTensor = { name: mlxName, dtype: 'U32', shape: [...lead, words], byteLength: rows * words * 4 };
  // fp modes: one uint8 scale per group (E8M0 or E4M3), no bias.
  if (format.kind === 'fp') return [weight, { name: `${base}.scales`, dtype: 'U8', shape: [...lead, groups], byteLength: rows * groups }];
  return [
    weight,
    { name: `${base}.scales`, dtype, shape: [...lead, groups], byteLength: rows * groups * DTYPE_SIZE[dtype] },
    { name: `${base}.biases`, dtype, shape: [...lead, groups], byteLength: rows * groups * DTYPE_SIZE[dtype] },
  ];
}

/**
 * One way to store a tensor, with its exact bytes and the measured relative reconstruction error
 * ‖W − deq(Q(W))‖² / ‖W‖² of the real MLX quantizer on the tensor cast to the model dtype
 * (src/measure/candidates.ts). Float (the model dtype) is always a candidate, with error 0.
 */
export interface Candidate {
  format: TensorFormat;
  bytes: number;
  relError: number;
  /** The same error with `--rounding search` (measured only when asked for). */
  relErrorSearch?: number;
}

/** Float candidate of a written tensor (error 0: it is the reference the others are measured against). */
export function floatCandidate(shape: number[], dtype: FloatDType): Candidate {
  return { format: FLOAT, bytes: formatBytes(FLOAT, shape, dtype), relError: 0, relErrorSearch: 0 };
}
