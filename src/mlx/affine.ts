/**
 * MLX affine quantization (`mx.quantize(w, group_size, bits)`, mode "affine"), bit-exact.
 *
 * Per group of `groupSize` consecutive elements along a row, all math in float32 (MLX ≥ 0.23.2):
 *   s0 = max((wmax - wmin) / n, eps); neg = |wmin| > |wmax|; if !neg, s0 = -s0
 *   edge = neg ? wmin : wmax; q0 = ROUND(edge / s0)
 *   q0 != 0 → scale = edge / q0, bias = edge;  else scale = s0, bias = 0
 *   q = clamp(ROUND((w - bias) / scale), 0, n)
 * Codes come from the unrounded float32 scale/bias; only the stored copies are rounded to the
 * storage dtype (by the caller, e.g. with src/io/float.ts).
 *
 * Two rule sets, as MLX's kernels differ:
 * - 'metal' (default): Metal/CUDA kernels, what `mlx_lm.convert` produces on a Mac: ROUND ties away
 *   from zero, and wmax starts at 0 (all-negative groups get the range [wmin, 0]).
 * - 'cpu': the MLX CPU kernel (what mlx[cpu] on Linux produces): rint (ties to even), true min/max.
 *
 * Checked against a real MLX 0.32.4 (mlx[cpu] on Linux, the CPU kernel) in
 * test/mlx-interop.test.ts: with 'cpu' rules wq, scales and biases are bit-identical for every
 * bits × group × dtype, and dequantizeAffine equals mx.dequantize bit for bit. The 'metal' rules
 * could not be run here (no Mac); they follow the source of the Metal `affine_quantize` kernel.
 * Metal clamps codes only from above; we clamp both ends, which is the same because
 * (w - bias) / scale is never below -0.5 with these parameters.
 *
 * Non-finite weights are not supported (MLX itself gives undefined codes for NaN).
 */
import { AFFINE_BITS, AFFINE_GROUP_SIZES } from '../format.js';
import type { FloatDType } from '../io/float.js';
import { roundHalfAway, roundHalfEven } from '../round.js';
import { packedWordsPerRow, readCode } from './pack.js';

import type { QuantRules } from '../options.js';

export type { QuantRules };

export { AFFINE_BITS, AFFINE_GROUP_SIZES };

export interface AffineQuantized {
  /** Packed codes, [rows, cols·bits/32] row-major. */
  wq: Uint32Array;
  /** [rows, cols/groupSize], float32 values before rounding to the storage dtype. */
  scales: Float32Array;
  /** [rows, cols/groupSize], float32 values before rounding to the storage dtype. */
  biases: Float32Array;
}

const fr = Math.fround;
/** MLX's `float eps = 1e-7`. */
const EPS = fr(1e-7);

/** Throws unless (bits, groupSize, cols) is a shape MLX affine quantization accepts. */
export function checkAffineArgs(fn: string, rows: number, cols: number, bits: number, groupSize: number): void {
  if (!AFFINE_BITS.includes(bits)) throw new Error(`${fn}: bits must be one of ${AFFINE_BITS.join(', ')} (got ${bits})`);
  if (!AFFINE_GROUP_SIZES.includes(groupSize)) {
    throw new Error(`${fn}: group size must be one of ${AFFINE_GROUP_SIZES.join(', ')} (got ${groupSize})`);
  }
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`${fn}: rows must be a non-negative integer (got ${rows})`);
  if (!Number.isInteger(cols) || cols <= 0 || cols % groupSize !== 0) {
    throw new Error(`${fn}: cols (${cols}) must be a positive multiple of the group size ${groupSize}`);
  }
}

/** Throws unless `rules` is 'metal' or 'cpu'; returns whether it is 'metal'. */
export function checkRules(fn: string, rules: QuantRules): boolean {
  if (rules !== 'metal' && rules !== 'cpu') throw new Error(`${fn}: rules must be 'metal' or 'cpu' (got ${String(rules)})`);
  return rules === 'metal';
}

/** Writes the float32 scale and bias of the group w[off .. off+g) to out[0], out[1]. */
function groupParams(w: Float32Array, off: number, g: number, n: number, metal: boolean, out: Float64Array): void {
  let wmin = Infinity;
  let wmax = metal ? 0 : -Infinity; // the Metal kernel starts w_max at 0
  const end = off + g;
  for (let j = off; j < end; j++) {
    const v = w[j]!;
    if (v < wmin) wmin = v;
    if (v > wmax) wmax = v;
  }
  let s0 = fr(fr(wmax - wmin) / n);
  if (s0 < EPS) s0 = EPS;
  const neg = Math.abs(wmin) > Math.abs(wmax);
  if (!neg) s0 = -s0;
  const edge = neg ? wmin : wmax;
  const t = fr(edge / s0);
  const q0 = metal ? roundHalfAway(t) : roundHalfEven(t); // MLX's ROUND on Metal / on the CPU
  if (q0 !== 0) {
    out[0] = fr(edge / q0);
    out[1] = edge;
  } else {
    out[0] = s0;
    out[1] = 0;
  }
}

/**
 * Quantize a row-major [rows, cols] float32 matrix. `w` must already hold values of the storage
 * dtype (cast first, as MLX quantizes the cast weight).
 */
export function quantizeAffine(
  w: Float32Array,
  rows: number,
  cols: number,
  bits: number,
  groupSize: number,
  rules: QuantRules = 'metal',
): AffineQuantized {
  const metal = checkQuantizeArgs(w, rows, cols, bits, groupSize, rules);
  const nGroups = (rows * cols) / groupSize;
  const wq = new Uint32Array(packedWordsPerRow(cols, bits) * rows);
  const scales = new Float32Array(nGroups);
  const biases = new Float32Array(nGroups);
  const n = (1 << bits) - 1;
  const wordsPerGroup = (groupSize * bits) / 32; // a group always starts on a word boundary
  const params = new Float64Array(2);

  for (let gi = 0; gi < nGroups; gi++) {
    const off = gi * groupSize;
    groupParams(w, off, groupSize, n, metal, params);
    const scale = params[0]!;
    const bias = params[1]!;
    scales[gi] = scale;
    biases[gi] = bias;

    // Codes go straight into the packed words: an LSB-first stream with a 32-bit accumulator.
    let o = gi * wordsPerGroup;
    let acc = 0;
    let filled = 0;
    const end = off + groupSize;
    for (let j = off; j < end; j++) {
      // Written out, not a helper: one measured 4-7% slower in this loop and affineRelativeError's.
      const t = fr(fr(w[j]! - bias) / scale);
      let q = metal ? roundHalfAway(t) : roundHalfEven(t);
      q = q < 0 ? 0 : q > n ? n : q; // NaN falls through and packs as 0
      acc |= q << filled;
      filled += bits;
      if (filled >= 32) {
        wq[o++] = acc;
        filled -= 32;
        acc = filled > 0 ? q >>> (bits - filled) : 0;
      }
    }
  }
  return { wq, scales, biases };
}

/**
 * quantizeAffine on `backend` when it has a faster implementation (the native one: the same bits,
 * tested), else the TypeScript one. Arguments are checked here either way.
 */
export function quantizeAffineOn(
  backend: { quantizeAffine?: (w: Float32Array, rows: number, cols: number, bits: number, groupSize: number, rules: QuantRules) => AffineQuantized },
  ...args: Parameters<typeof quantizeAffine>
): AffineQuantized {
  if (!backend.quantizeAffine) return quantizeAffine(...args);
  const [w, rows, cols, bits, groupSize, rules = 'metal'] = args;
  checkQuantizeArgs(w, rows, cols, bits, groupSize, rules);
  return backend.quantizeAffine(w, rows, cols, bits, groupSize, rules);
}

/** quantizeAffine's argument checks; returns whether the rules are Metal's. */
function checkQuantizeArgs(w: Float32Array, rows: number, cols: number, bits: number, groupSize: number, rules: QuantRules): boolean {
  checkAffineArgs('quantizeAffine', rows, cols, bits, groupSize);
  const metal = checkRules('quantizeAffine', rules);
  if (w.length !== rows * cols) throw new Error(`quantizeAffine: w has ${w.length} elements, expected ${rows}×${cols}`);
  return metal;
}

// Scratch for bf16/f16 rounding by bit manipulation.
const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** Round a float32 value to bf16 precision (nearest even), returned as float32. */
function roundBf16(x: number): number {
  scratchF[0] = x;
  const u = scratchU[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return x; // NaN
  scratchU[0] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return scratchF[0]!;
}

/**
 * Round a float32 value to f16 precision (nearest even; ±65520 and beyond become ±inf), returned as
 * float32: the value src/io/float.ts f32ToF16 gives (checked for every float32), small enough to
 * inline twice in a hot loop, which f32ToF16 and a table lookup are not.
 */
function roundF16(x: number): number {
  scratchF[0] = x;
  const u = scratchU[0]!;
  const a = u & 0x7fffffff;
  if (a < 0x38800000) {
    // f16 subnormals are multiples of 2⁻²⁴, the ulp of 1.5·2²⁸ in double: the sum rounds |x| to one.
    const m = Math.abs(x) + 402653184 - 402653184;
    return u >>> 31 ? -m : m;
  }
  if (a > 0x7f800000) return x; // NaN
  const r = (u + 0xfff + ((u >>> 13) & 1)) & 0xffffe000; // 10 mantissa bits; a carry moves up a binade
  if ((r & 0x7fffffff) >= 0x47800000) return u >>> 31 ? -Infinity : Infinity; // rounded to 2¹⁶ or more
  scratchU[0] = r;
  return scratchF[0]!;
}

const KIND_F32 = 0;
const KIND_BF16 = 1;
const KIND_F16 = 2;

/** Numeric dtype code for roundTo and decodeCode (a number keeps the hot loops monomorphic). */
export function dtypeKind(dtype: FloatDType): number {
  switch (dtype) {
    case 'F32':
      return KIND_F32;
    case 'BF16':
      return KIND_BF16;
    case 'F16':
      return KIND_F16;
    default:
      throw new Error(`unsupported dtype ${String(dtype)}`);
  }
}

/** Round a double to float32, then to the dtype (how MLX stores each op's result). */
export function roundTo(x: number, kind: number): number {
  const f = fr(x);
  if (kind === KIND_F32) return f;
  if (kind === KIND_BF16) return roundBf16(f);
  return roundF16(f);
}

/**
 * The value MLX dequantizes code q to, given scale and bias already in dtype T (roundTo): the
 * product rounded to T, then the sum rounded to T, as mx.dequantize evaluates scale·q + bias in T.
 * Going through float32 first (as MLX's CPU half types do) never changes the result: a product or
 * sum of two f16/bf16 values that lands near a T rounding boundary is exact in float32. (A Metal
 * build that fused the multiply-add into one fma would differ; the Metal source does not ask for
 * that.)
 */
export function decodeCode(scale: number, q: number, bias: number, kind: number): number {
  return roundTo(roundTo(scale * q, kind) + bias, kind);
}

// cachedDecode's values: decoded[q] belongs to the group whose stamp is decodedFor[q]. Module-level:
// arrays owned by each call made affineRelativeError about 7% slower (V8 addresses a constant array
// directly, a local one through its object).
const decoded = new Float64Array(256); // codes fit in 8 bits
const decodedFor = new Int32Array(256);
let lastStamp = 0;

/** A stamp no earlier group has: cachedDecode values under it start empty. */
export function nextDecodeStamp(): number {
  if (lastStamp === 0x7fffffff) {
    decodedFor.fill(0);
    lastStamp = 0;
  }
  return ++lastStamp;
}

/**
 * decodeCode computed once per code and group (stamp): a group has at most 2^bits distinct codes,
 * and the dtype rounding is the cost.
 */
export function cachedDecode(stamp: number, scale: number, q: number, bias: number, kind: number): number {
  if (decodedFor[q] === stamp) return decoded[q]!;
  const v = decodeCode(scale, q, bias, kind);
  decoded[q] = v;
  decodedFor[q] = stamp;
  return v;
}

/** MLX dequantization (decodeCode of every code): scales and biases are taken in `dtype`. */
export function dequantizeAffine(
  wq: Uint32Array,
  scales: Float32Array,
  biases: Float32Array,
  rows: number,
  cols: number,
  bits: number,
  groupSize: number,
  dtype: FloatDType,
): Float32Array {
  checkAffineArgs('dequantizeAffine', rows, cols, bits, groupSize);
  const nGroups = (rows * cols) / groupSize;
  if (wq.length !== packedWordsPerRow(cols, bits) * rows) {
    throw new Error(`dequantizeAffine: wq has ${wq.length} words, expected ${packedWordsPerRow(cols, bits) * rows}`);
  }
  if (scales.length !== nGroups || biases.length !== nGroups) {
    throw new Error(`dequantizeAffine: scales/biases need ${nGroups} entries (got ${scales.length}/${biases.length})`);
  }
  const kind = dtypeKind(dtype);
  const out = new Float32Array(rows * cols);
  for (let gi = 0; gi < nGroups; gi++) {
    const s = roundTo(scales[gi]!, kind);
    const b = roundTo(biases[gi]!, kind);
    const stamp = nextDecodeStamp();
    const off = gi * groupSize;
    for (let i = off; i < off + groupSize; i++) out[i] = cachedDecode(stamp, s, readCode(wq, i, bits), b, kind);
  }
  return out;
}

/** affineRelativeError's argument checks (either route); returns whether the rules are Metal's. */
function checkRelativeErrorArgs(w: Float32Array, rows: number, cols: number, bits: number, groupSize: number, rules: QuantRules): boolean {
  checkAffineArgs('affineRelativeError', rows, cols, bits, groupSize);
  const metal = checkRules('affineRelativeError', rules);
  if (w.length !== rows * cols) throw new Error(`affineRelativeError: w has ${w.length} elements, expected ${rows}×${cols}`);
  return metal;
}

/**
 * affineRelativeError on `backend` when it computes the two sums natively (the same doubles, tested:
 * test/native-search.test.ts), else the TypeScript. Arguments are checked here either way.
 */
export function affineRelativeErrorOn(
  backend: {
    affineErrorSums?: (w: Float32Array, rows: number, cols: number, bits: number, groupSize: number, rules: QuantRules, dtype: FloatDType) => [number, number];
  },
  ...args: Parameters<typeof affineRelativeError>
): number {
  if (!backend.affineErrorSums) return affineRelativeError(...args);
  const [w, rows, cols, bits, groupSize, dtype, rules = 'metal'] = args;
  checkRelativeErrorArgs(w, rows, cols, bits, groupSize, rules);
  const [num, den] = backend.affineErrorSums(w, rows, cols, bits, groupSize, rules, dtype);
  return den === 0 ? 0 : num / den;
}

/**
 * Relative squared error of one quantize/dequantize round trip:
 * ‖W − dequant(quant(W))‖² / ‖W‖², float64 accumulation, no packing and no large allocation.
 * Dequantization uses the scales/biases rounded to `dtype`, as a loaded model would. Returns 0 for
 * an all-zero W.
 */
export function affineRelativeError(
  w: Float32Array,
  rows: number,
  cols: number,
  bits: number,
  groupSize: number,
  dtype: FloatDType,
  rules: QuantRules = 'metal',
): number {
  const metal = checkRelativeErrorArgs(w, rows, cols, bits, groupSize, rules);
  const kind = dtypeKind(dtype);
  const params = new Float64Array(2);
  const n = (1 << bits) - 1;
  const nGroups = (rows * cols) / groupSize;
  let num = 0;
  let den = 0;
  for (let gi = 0; gi < nGroups; gi++) {
    const off = gi * groupSize;
    groupParams(w, off, groupSize, n, metal, params);
    const scale = params[0]!;
    const bias = params[1]!;
    const sT = roundTo(scale, kind);
    const bT = roundTo(bias, kind);
    const stamp = nextDecodeStamp();
    const end = off + groupSize;
    for (let j = off; j < end; j++) {
      const v = w[j]!;
      const t = fr(fr(v - bias) / scale);
      let q = metal ? roundHalfAway(t) : roundHalfEven(t);
      q = q < 0 ? 0 : q > n ? n : q;
      const d = v - cachedDecode(stamp, sT, q | 0, bT, kind);
      num += d * d;
      den += v * v;
    }
  }
  return den === 0 ? 0 : num / den;
}
