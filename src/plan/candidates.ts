import type { TensorRecord } from '../arch/types.js';
import { roundToDType, type FloatDType } from '../io/float.js';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, affineRelativeError, type QuantRules } from '../mlx/affine.js';
import { everyNthRow, searchRelativeError } from '../mlx/rounding-search.js';
import { affine, FLOAT, formatBytes, groupDivides, numel, type TensorFormat } from './format.js';

/** How group scales are chosen: MLX's round-to-nearest (bit-exact) or swan's per-group search. */
export type Rounding = 'rtn' | 'search';

/**
 * What `--rounding search` minimises across a weight's input channels (the allocation always
 * measures plain relative errors, docs/allocation.md §6):
 * - none: plain ‖ΔW‖² (every input channel alike);
 * - norm: column j weighted by g_j², the square of the gain of the RMSNorm that feeds the layer
 *   (Architecture.inputNorm). The layer sees x̂·g with x̂ of unit RMS per token, so g_j² is a
 *   data-free prior on channel j's input energy and Σ_j g_j²‖ΔW[:, j]‖² the expected output error
 *   under it. Weights not fed by a norm (o_proj, down_proj, an untied embedding) stay unweighted.
 */
export type InputWeighting = 'none' | 'norm';

export const INPUT_WEIGHTINGS: readonly InputWeighting[] = ['none', 'norm'];

/**
 * One way to store a tensor, with its exact bytes and the measured relative reconstruction error
 * ‖W − deq(Q(W))‖² / ‖W‖² of the real MLX quantizer on the tensor cast to the model dtype.
 * Float (the model dtype) is always a candidate, with error 0.
 */
export interface Candidate {
  format: TensorFormat;
  bytes: number;
  relError: number;
  /** The same error with `--rounding search` (measured only when asked for). */
  relErrorSearch?: number;
}

/** Affine formats MLX accepts for this tensor: bits {2,3,4,5,6,8} × group {32,64,128} where the group divides the last dim. */
export function affineCandidateFormats(record: TensorRecord, shape: number[]): TensorFormat[] {
  if (!record.quantizable || record.mlxName === null) return [];
  const out: TensorFormat[] = [];
  for (const bits of AFFINE_BITS) for (const g of AFFINE_GROUP_SIZES) if (groupDivides(shape, g)) out.push(affine(bits, g));
  return out;
}

export interface MeasureOptions {
  dtype: FloatDType;
  rules: QuantRules;
  /** Also measure the error of `--rounding search`. */
  search: boolean;
  /** What the measured search minimises across input channels (absent: none); the errors reported stay plain. */
  weighting?: InputWeighting;
}

/**
 * Candidate errors are measured on at most this many weights. Groups never cross rows, so whole rows
 * taken at an even stride are an unbiased sample of the tensor's groups; 2^19 weights keep the
 * estimate within a fraction of a percent on real-sized matrices while making the 18-format
 * measurement cost the same for a 1024² and a 151936×4096 tensor.
 */
export const CANDIDATE_SAMPLE_ELEMENTS = 1 << 19;

/** Every `step`-th row of a row-major matrix, so that at most `maxElements` weights remain. */
export function sampleRows(w: Float32Array, rows: number, cols: number, maxElements: number): { w: Float32Array; rows: number } {
  return everyNthRow(w, rows, cols, Math.max(1, Math.ceil((rows * cols) / maxElements)));
}

/**
 * Measure every affine candidate of one tensor, row-major with the last dim as columns. Large
 * tensors are measured on an evenly strided row sample (CANDIDATE_SAMPLE_ELEMENTS). The measured
 * weights are cast to the model dtype first (what MLX quantizes); only the sample is cast, so a
 * small tensor's `full` array is cast in place (a no-op for values already in the dtype).
 * `colWeights` (one per column, InputWeighting 'norm') is what the rounding search minimises; both
 * errors reported are plain ‖ΔW‖²/‖W‖², so the allocation compares every tensor on the same measure.
 */
export function measureCandidates(
  record: TensorRecord,
  shape: number[],
  full: Float32Array,
  opts: MeasureOptions,
  colWeights?: ArrayLike<number>,
): Candidate[] {
  const formats = affineCandidateFormats(record, shape);
  if (formats.length === 0) return [];
  const cols = shape[shape.length - 1]!;
  const sample = sampleRows(full, numel(shape) / cols, cols, CANDIDATE_SAMPLE_ELEMENTS);
  const rows = sample.rows;
  const w = roundToDType(sample.w, opts.dtype);
  return formats.map((format) => {
    if (format.kind !== 'affine') throw new Error('unreachable');
    const c: Candidate = {
      format,
      bytes: formatBytes(format, shape, opts.dtype),
      relError: affineRelativeError(w, rows, cols, format.bits, format.groupSize, opts.dtype, opts.rules),
    };
    if (opts.search) {
      c.relErrorSearch = searchRelativeError(w, rows, cols, { bits: format.bits, groupSize: format.groupSize, dtype: opts.dtype, rules: opts.rules, rtnRelError: c.relError, colWeights });
    }
    return c;
  });
}

/** Float candidate of a written tensor (error 0: it is the reference the others are measured against). */
export function floatCandidate(shape: number[], dtype: FloatDType): Candidate {
  return { format: FLOAT, bytes: formatBytes(FLOAT, shape, dtype), relError: 0, relErrorSearch: 0 };
}
