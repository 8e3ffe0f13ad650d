/**
 * MLX's floating-point quantization modes (`mx.quantize(w, mode="mxfp4" | "nvfp4" | "mxfp8")`),
 * bit-exact. Per group (FP_MODE_SPEC: 32, 16, 32 elements), all math in float32 on the weight
 * already cast to the storage dtype:
 *   amax = max |w|;  s = amax / 6 (FP4 modes) or amax / 448 (mxfp8), rounded to the weight dtype
 *   mxfp4, mxfp8: E8M0 scale, e = ceil(log2 s) exactly (e = 0 when s = 0), stored as (e + 127) mod
 *                 256 (a group with amax below ~1e-37 wraps, as MLX's kernel does), scale 2^e;
 *   nvfp4:        scale = s rounded to FP8 E4M3 (nearest, ties to even, saturating at 448), stored as
 *                 its E4M3 byte;
 *   code = encode(w / scale) in float32: FP4 E2M1 to the nearest of 0, .5, 1, 1.5, 2, 3, 4, 6 with
 *          ties toward the smaller magnitude and no negative zero (a zero scale gives code 0); FP8
 *          E4M3 nearest, ties to even, saturating at 448, the sign kept even on zero.
 * Codes are packed LSB-first into uint32 words like the affine ones (src/mlx/pack.ts).
 *
 * Derived by experiment against mx.quantize of MLX 0.32 (mlx[cpu], the CPU kernel) and checked
 * there bit for bit on random and edge-case groups (test/mlx-fp.test.ts). Whether the Metal kernel
 * rounds alike could not be run here; swan writes the same bytes under either `--mlx-rules`.
 */
import { FP_MODE_SPEC, type FpMode } from '../format.js';
import type { FloatDType } from '../io/float.js';
import { roundHalfEven } from '../round.js';
import { dtypeKind, roundTo } from './affine.js';

export interface FpQuantized {
  /** Packed codes, [rows, cols·bits/32] row-major. */
  wq: Uint32Array;
  /** [rows, cols/groupSize] scale bytes (E8M0 or E4M3). */
  scales: Uint8Array;
}

const fr = Math.fround;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** FP4 E2M1 magnitudes by code. */
export const FP4_VALUES: readonly number[] = Object.freeze([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
/** Midpoints between consecutive FP4 magnitudes: a value on one goes to the smaller. */
const FP4_MIDS = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5];

/** FP4 E2M1 code of x (a float32 value), MLX's rounding. */
export function encodeFp4(x: number): number {
  const a = Math.abs(x);
  if (!(a < Infinity)) return 0; // NaN, ±inf (a zero nvfp4 scale): MLX writes 0
  let m = 0;
  while (m < 7 && a > FP4_MIDS[m]!) m++;
  return m === 0 ? 0 : x < 0 ? m | 8 : m;
}

/** Value of an E4M3 byte's magnitude bits (0..126; 127 is NaN). */
export function e4m3Value(code: number): number {
  const c = code & 0x7f;
  if (c === 0x7f) return NaN;
  const e = c >> 3;
  const m = c & 7;
  const v = e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7);
  return code & 0x80 ? -v : v;
}

/** FP8 E4M3 byte of x (a float32 value): nearest, ties to even, saturating at ±448, sign kept on zero. */
export function encodeE4m3(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  let c: number;
  if (a >= 448) c = 126;
  else if (a < 2 ** -6) c = roundHalfEven(a * 2 ** 9); // subnormals: multiples of 2^-9 (8 → 2^-6, code 8)
  else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--; // log2 rounding near a power of two
    else if (2 ** (e + 1) <= a) e++;
    const m = roundHalfEven((a / 2 ** e - 1) * 8); // exact: a has ≤ 24 significant bits
    c = ((e + 7) << 3) + m; // m = 8 carries into the exponent
    if (c > 126) c = 126;
  }
  return c | sign;
}

/** exact ceil(log2 s) of a positive float32 s. */
function ceilLog2(s: number): number {
  f32[0] = s;
  const u = u32[0]!;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp > 0) return exp - 127 + (mant !== 0 ? 1 : 0);
  return -149 + (mant === 1 ? 0 : 32 - Math.clz32(mant - 1)); // subnormal: mant · 2^-149
}

/** Per group: the stored scale byte and the float32 scale the codes are divided by. */
function groupScale(amax: number, mode: FpMode, kind: number, out: Float64Array): number {
  const s = roundTo(amax / (mode === 'mxfp8' ? 448 : 6), kind); // MLX divides in the weight dtype
  if (mode === 'nvfp4') {
    const code = encodeE4m3(s);
    out[0] = e4m3Value(code);
    return code;
  }
  const e = s === 0 ? 0 : ceilLog2(s);
  out[0] = 2 ** e;
  return (e + 127) & 0xff;
}

/** Value of a stored scale byte as mx.dequantize reads it. */
export function scaleValue(byte: number, mode: FpMode): number {
  if (mode === 'nvfp4') return e4m3Value(byte);
  return byte === 0xff ? NaN : 2 ** (byte - 127);
}

/** Throws unless cols is a positive multiple of the mode's group and w has rows×cols elements. */
function checkFpArgs(fn: string, w: { length: number }, rows: number, cols: number, mode: FpMode): void {
  const spec = FP_MODE_SPEC[mode];
  if (!spec) throw new Error(`${fn}: unknown mode ${String(mode)}`);
  if (!Number.isInteger(cols) || cols <= 0 || cols % spec.groupSize !== 0 || cols % 32 !== 0) {
    throw new Error(`${fn}: cols (${cols}) must be a positive multiple of ${Math.max(32, spec.groupSize)} for ${mode}`);
  }
  if (w.length !== rows * cols) throw new Error(`${fn}: w has ${w.length} elements, expected ${rows}×${cols}`);
}

/** Quantize a row-major [rows, cols] float32 matrix whose values are already in the storage dtype. */
export function quantizeFp(w: Float32Array, rows: number, cols: number, mode: FpMode, dtype: FloatDType): FpQuantized {
  checkFpArgs('quantizeFp', w, rows, cols, mode);
  const kind = dtypeKind(dtype);
  const { bits, groupSize } = FP_MODE_SPEC[mode];
  const nGroups = (rows * cols) / groupSize;
  const wq = new Uint32Array((rows * cols * bits) / 32);
  const scales = new Uint8Array(nGroups);
  const sc = new Float64Array(1);
  const perWord = 32 / bits;
  for (let gi = 0; gi < nGroups; gi++) {
    const off = gi * groupSize;
    let amax = 0;
    for (let j = off; j < off + groupSize; j++) amax = Math.max(amax, Math.abs(w[j]!));
    scales[gi] = groupScale(amax, mode, kind, sc);
    const scale = sc[0]!;
    for (let j = off; j < off + groupSize; j++) {
      const t = fr(w[j]! / scale);
      const q = bits === 8 ? encodeE4m3(t) : encodeFp4(t);
      wq[(j / perWord) | 0]! |= q << (bits * (j % perWord));
    }
  }
  return { wq, scales };
}

/** Magnitude-and-sign value of one code. */
function codeValue(q: number, bits: number): number {
  if (bits === 8) return e4m3Value(q);
  const v = FP4_VALUES[q & 7]!;
  return q & 8 ? -v : v;
}

/** mx.dequantize: code value × scale, rounded to `dtype` (the output dtype). */
export function dequantizeFp(wq: Uint32Array, scales: Uint8Array, rows: number, cols: number, mode: FpMode, dtype: FloatDType): Float32Array {
  checkFpArgs('dequantizeFp', { length: rows * cols }, rows, cols, mode);
  const { bits, groupSize } = FP_MODE_SPEC[mode];
  const kind = dtypeKind(dtype);
  const perWord = 32 / bits;
  const mask = (1 << bits) - 1;
  const out = new Float32Array(rows * cols);
  for (let j = 0; j < rows * cols; j++) {
    const q = (wq[(j / perWord) | 0]! >>> (bits * (j % perWord))) & mask;
    out[j] = roundTo(codeValue(q, bits) * scaleValue(scales[(j / groupSize) | 0]!, mode), kind);
  }
  return out;
}

/**
 * ‖W − dequant(quant(W))‖² / ‖W‖² of one round trip (0 for an all-zero W), float64 accumulation,
 * the fp counterpart of affineRelativeError.
 */
export function fpRelativeError(w: Float32Array, rows: number, cols: number, mode: FpMode, dtype: FloatDType): number {
  const q = quantizeFp(w, rows, cols, mode, dtype);
  const d = dequantizeFp(q.wq, q.scales, rows, cols, mode, dtype);
  let num = 0;
  let den = 0;
  for (let j = 0; j < w.length; j++) {
    const e = w[j]! - d[j]!;
    num += e * e;
    den += w[j]! * w[j]!;
  }
  return den === 0 ? 0 : num / den;
}
