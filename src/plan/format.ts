import type { FloatDType } from '../io/float.js';

/** How one tensor is stored in the output: kept in float (the model dtype) or MLX affine quantized. */
export type TensorFormat = { kind: 'float' } | { kind: 'affine'; bits: number; groupSize: number };

export const FLOAT: TensorFormat = { kind: 'float' };

export function affine(bits: number, groupSize: number): TensorFormat {
  return { kind: 'affine', bits, groupSize };
}

export const DTYPE_SIZE: Record<FloatDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Python/torch names of the float dtypes, as config.json and `--dtype` spell them. */
export const DTYPE_NAMES: Record<FloatDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export function dtypeFromName(name: string): FloatDType | undefined {
  const n = name.replace(/^torch\./, '');
  return (Object.keys(DTYPE_NAMES) as FloatDType[]).find((k) => DTYPE_NAMES[k] === n);
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when MLX can affine-quantize a tensor of this shape with this group size. */
export function groupDivides(shape: number[], groupSize: number): boolean {
  return shape.length >= 2 && shape[shape.length - 1]! % groupSize === 0;
}

/** Exact bytes on disk: packed uint32 weight + scales + biases in the model dtype, or the float tensor. */
export function formatBytes(format: TensorFormat, shape: number[], dtype: FloatDType): number {
  const n = numel(shape);
  if (format.kind === 'float') return n * DTYPE_SIZE[dtype];
  return (n * format.bits) / 8 + 2 * (n / format.groupSize) * DTYPE_SIZE[dtype];
}

/** Nominal bits per weight of the format (16 for float 16-bit, 32 for f32). */
export function nominalBits(format: TensorFormat, dtype: FloatDType): number {
  return format.kind === 'float' ? DTYPE_SIZE[dtype] * 8 : format.bits;
}

export function formatLabel(format: TensorFormat, dtype: FloatDType): string {
  return format.kind === 'float' ? DTYPE_NAMES[dtype] : `${format.bits}-bit g${format.groupSize}`;
}

export function sameFormat(a: TensorFormat, b: TensorFormat): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind === 'float' || (b.kind === 'affine' && a.bits === b.bits && a.groupSize === b.groupSize);
}

/** The output tensors one source tensor becomes: weight (+ scales, biases when quantized). */
export interface OutputTensor {
  name: string;
  dtype: FloatDType | 'U32';
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
  return [
    { name: mlxName, dtype: 'U32', shape: [...lead, words], byteLength: rows * words * 4 },
    { name: `${base}.scales`, dtype, shape: [...lead, groups], byteLength: rows * groups * DTYPE_SIZE[dtype] },
    { name: `${base}.biases`, dtype, shape: [...lead, groups], byteLength: rows * groups * DTYPE_SIZE[dtype] },
  ];
}
