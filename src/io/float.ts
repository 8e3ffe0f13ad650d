/**
 * Float conversions between the on-disk 16-bit formats and float32.
 * Narrowing uses round-to-nearest-even, as numpy/torch/MLX do.
 */

export type FloatDType = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each float dtype. */
export const DTYPE_SIZE: Record<FloatDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Python/torch names of the float dtypes, as config.json and `--dtype` spell them. */
export const DTYPE_NAMES: Record<FloatDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** The dtype a config.json / `--dtype` name means (`torch.` prefix allowed), or undefined. */
export function dtypeFromName(name: string): FloatDType | undefined {
  const n = name.replace(/^torch\./, '');
  return (Object.keys(DTYPE_NAMES) as FloatDType[]).find((k) => DTYPE_NAMES[k] === n);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits → float32 value (exact). */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** float32 value → bf16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  const lsb = (x >>> 16) & 1;
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** f16 bits → float32 value (exact). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 (or double) value → f16 bits, round to nearest even, with subnormals and overflow to inf. */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0 even after rounding
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1))) h += 1;
    return sign | h;
  }
  const rest = mant & 0x1fff;
  let h = (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1; // may carry into exponent: correct
  return sign | h;
}

let f16Table: Float32Array | undefined;
/** 64K lookup table f16 bits → f32, built once. */
export function f16Table32(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i);
  }
  return f16Table;
}

/** Values of a tensor that are NaN, ±Inf, or finite but ±Inf once cast to a narrower target dtype. */
export interface NonFiniteCounts {
  nan: number;
  inf: number;
  overflow: number;
}

/**
 * Magnitude bits (float32 layout) from which a value is not finite, or becomes ±Inf when cast to
 * the dtype with round-to-nearest-even: bf16's max 0x7f7f (≈ 3.3895e38) rounds up to Inf from
 * 0x7f7f8000 (≈ 3.3962e38), f16's max 65504 from 65520.
 */
const INF_FROM: Record<FloatDType, number> = { F32: 0x7f800000, BF16: 0x7f7f8000, F16: 0x477ff000 };

/** The largest finite value of each dtype, for messages. */
export const DTYPE_MAX: Record<FloatDType, string> = { F32: '3.4028e38', BF16: '3.3895e38', F16: '65504' };

/** Adds a value of float32 magnitude bits `m` (at or above INF_FROM) to the counts. */
function tally(c: NonFiniteCounts, m: number): void {
  if (m > 0x7f800000) c.nan++;
  else if (m === 0x7f800000) c.inf++;
  else c.overflow++;
}

/** 16-bit magnitude bits from which a BF16/F16 value counts (every finite f16 is finite in bf16 and f32). */
function limit16(dtype: 'BF16' | 'F16', target: FloatDType): number {
  return dtype === 'BF16' ? Math.ceil(INF_FROM[target] / 0x10000) : 0x7c00;
}

/** Adds a BF16/F16 value of magnitude bits `m` (at or above limit16) to the counts. */
function tally16(dtype: 'BF16' | 'F16', c: NonFiniteCounts, m: number): void {
  if (dtype === 'BF16') tally(c, m << 16);
  else if (m & 0x3ff) c.nan++;
  else c.inf++;
}

function u16View(bytes: Uint8Array, n: number): Uint16Array {
  return bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.slice(0, n * 2).buffer);
}

/**
 * Faster BF16 conversions of this thread, when the installed kernel backend has them
 * (src/kernels/select.ts sets them), the same bits as the loops below: `decode` fills dst and returns
 * how many values have magnitude bits (value & 0x7fff) at or above `lim` (0x8000: none counted);
 * `encode` writes 2 bytes per value into dst.
 */
export interface Bf16Codec {
  decode(src: Uint8Array, dst: Float32Array, lim: number): number;
  encode(src: Float32Array, dst: Uint8Array): void;
}

let bf16Codec: Bf16Codec | undefined;

/** Below this many values the loops here are as fast as a call into the backend. */
const FAST_CODEC_MIN_VALUES = 4096;

/** Use `codec` for BF16 tensors in this thread (undefined: the TypeScript loops). */
export function setBf16Codec(codec: Bf16Codec | undefined): void {
  bf16Codec = codec;
}

/**
 * Decode little-endian raw bytes of a float tensor into float32. With `check`, the same loop counts
 * into `check.counts` the values that are not finite once cast to `check.target` (overflow: finite
 * in the source dtype, ±Inf in the target).
 */
export function decodeToF32(bytes: Uint8Array, dtype: FloatDType, out?: Float32Array, check?: { target: FloatDType; counts: NonFiniteCounts }): Float32Array {
  const n = dtype === 'F32' ? bytes.byteLength / 4 : bytes.byteLength / 2;
  const dst = out ?? new Float32Array(n);
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0) dst.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
    else new Uint8Array(dst.buffer, dst.byteOffset, n * 4).set(bytes.subarray(0, n * 4));
    if (check) countNonFinite(new Uint8Array(dst.buffer, dst.byteOffset, n * 4), 'F32', check.target, check.counts);
    return dst;
  }
  // Without a check no value reaches 0x8000.
  const lim = check ? limit16(dtype, check.target) : 0x8000;
  if (dtype === 'BF16' && bf16Codec && n >= FAST_CODEC_MIN_VALUES) {
    // Any alignment: no aligned copy first. The values flagged (at or above lim) are rare: their tally is taken again here, exactly.
    const raw = bytes.subarray(0, n * 2);
    if (bf16Codec.decode(raw, dst.subarray(0, n), lim) > 0) countNonFinite(raw, 'BF16', check!.target, check!.counts);
    return dst;
  }
  const src = u16View(bytes, n);
  if (dtype === 'BF16') {
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
    let i = 0;
    if (src.byteOffset % 4 === 0) {
      // Two values per 32-bit load: about twice as fast as one at a time.
      const pairs = new Uint32Array(src.buffer, src.byteOffset, n >>> 1);
      for (let k = 0; k < pairs.length; k++) {
        const s = pairs[k]!;
        d32[2 * k] = s << 16;
        d32[2 * k + 1] = s & 0xffff0000;
        if ((s & 0x7fff) >= lim) tally16(dtype, check!.counts, s & 0x7fff);
        if (((s >>> 16) & 0x7fff) >= lim) tally16(dtype, check!.counts, (s >>> 16) & 0x7fff);
      }
      i = pairs.length * 2;
    }
    for (; i < n; i++) {
      const s = src[i]!;
      d32[i] = s << 16;
      if ((s & 0x7fff) >= lim) tally16(dtype, check!.counts, s & 0x7fff);
    }
  } else {
    const t = f16Table32();
    for (let i = 0; i < n; i++) {
      const s = src[i]!;
      dst[i] = t[s]!;
      if ((s & 0x7fff) >= lim) tally16(dtype, check!.counts, s & 0x7fff);
    }
  }
  return dst;
}

function countF32(u: Uint32Array, target: FloatDType, c: NonFiniteCounts): void {
  const lim = INF_FROM[target];
  for (let i = 0; i < u.length; i++) {
    const m = u[i]! & 0x7fffffff;
    if (m >= lim) tally(c, m);
  }
}

/** decodeToF32's counts over raw bytes that are used as they are (no decode), added to `counts`. */
export function countNonFinite(bytes: Uint8Array, dtype: FloatDType, target: FloatDType, counts: NonFiniteCounts = { nan: 0, inf: 0, overflow: 0 }): NonFiniteCounts {
  if (dtype === 'F32') {
    const u = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint32Array(bytes.slice().buffer);
    countF32(u, target, counts);
    return counts;
  }
  const src = u16View(bytes, bytes.byteLength / 2);
  const lim = limit16(dtype, target);
  for (let i = 0; i < src.length; i++) {
    const m = src[i]! & 0x7fff;
    if (m >= lim) tally16(dtype, counts, m);
  }
  return counts;
}

/** "1 NaN, 2 ±Inf and 3 values beyond float16's range (max 65504)". */
export function describeNonFinite(c: NonFiniteCounts, target: FloatDType): string {
  const parts: string[] = [];
  if (c.nan) parts.push(`${c.nan.toLocaleString('en-US')} NaN`);
  if (c.inf) parts.push(`${c.inf.toLocaleString('en-US')} ±Inf`);
  if (c.overflow) parts.push(`${c.overflow.toLocaleString('en-US')} value${c.overflow > 1 ? 's' : ''} beyond ${DTYPE_NAMES[target]}'s range (max ${DTYPE_MAX[target]}, ±Inf once cast)`);
  return parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}` : (parts[0] ?? 'no non-finite values');
}

/** Whether any value was counted. */
export function anyNonFinite(c: NonFiniteCounts): boolean {
  return c.nan + c.inf + c.overflow > 0;
}

/** Encode float32 values into little-endian raw bytes of the given dtype (RNE narrowing). */
export function encodeFromF32(values: Float32Array, dtype: FloatDType): Uint8Array {
  const n = values.length;
  if (dtype === 'F32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + n * 4));
  if (dtype === 'BF16' && bf16Codec && n >= FAST_CODEC_MIN_VALUES) {
    const bytes = new Uint8Array(n * 2);
    bf16Codec.encode(values, bytes);
    return bytes;
  }
  const out = new Uint16Array(n);
  if (dtype === 'BF16') {
    const s32 = new Uint32Array(values.buffer, values.byteOffset, n);
    for (let i = 0; i < n; i++) {
      const x = s32[i]!;
      if ((x & 0x7fffffff) > 0x7f800000) out[i] = ((x >>> 16) | 0x40) & 0xffff;
      else out[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = f32ToF16(values[i]!);
  }
  return new Uint8Array(out.buffer);
}

/** Round each value to the precision of `dtype` in place (the cast MLX applies before quantizing). */
export function roundToDType(values: Float32Array, dtype: FloatDType): Float32Array {
  if (dtype === 'F32') return values;
  const bytes = encodeFromF32(values, dtype);
  return decodeToF32(bytes, dtype, values);
}
