/**
 * MLX storage formats: what MLX's affine quantization accepts, and the exact bytes each format
 * costs. The one byte formula of the project (outputTensors; formatBytes sums it).
 */
import { DTYPE_NAMES, DTYPE_SIZE, type FloatDType } from './io/float.js';

/** Bit widths MLX affine quantization packs. */
export const AFFINE_BITS: readonly number[] = Object.freeze([2, 3, 4, 5, 6, 8]);
/** Group sizes MLX affine quantization accepts. */
export const AFFINE_GROUP_SIZES: readonly number[] = Object.freeze([32, 64, 128]);

/** How one tensor is stored in the output: kept in float (the model dtype) or MLX affine quantized. */
export type TensorFormat = { kind: 'float' } | AffineFormat;
export type AffineFormat = { kind: 'affine'; bits: number; groupSize: number };

export const FLOAT: TensorFormat = { kind: 'float' };

export function affine(bits: number, groupSize: number): AffineFormat {
  return { kind: 'affine', bits, groupSize };
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
  return outputTensors('w.weight', shape, format, dtype).reduce((sum, t) => sum + t.byteLength, 0);
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
