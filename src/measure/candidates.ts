/**
 * Candidate measurements: the real MLX quantizer's error for each format (affine, fp modes) a tensor may take,
 * the evidence the budget strategy allocates from (src/plan/budget.ts). Which formats to measure
 * is the policy's answer (measurableFormats in src/plan/eligibility.ts).
 */
import { roundToDType, type FloatDType } from '../io/float.js';
import { getBackend } from '../kernels/index.js';
import { affineRelativeErrorOn } from '../mlx/affine.js';
import { fpRelativeError } from '../mlx/fp.js';
import { everyNthRow, searchRelativeError } from '../mlx/rounding-search.js';
import type { InputWeighting, QuantRules } from '../options.js';
import { formatBytes, numel, type Candidate, type QuantFormat } from '../format.js';

export interface MeasureOptions {
  dtype: FloatDType;
  rules: QuantRules;
  /** Also measure the error of `--rounding search`. */
  search: boolean;
  /** What the measured search minimises across input channels; the errors reported stay plain. */
  weighting: InputWeighting;
  /**
   * The formats to measure (default: every format MLX has). `swan quantize` measures only those its
   * plan may choose (`--formats`); the budget refuses to plan with a format it has no measurement of.
   */
  formats?: readonly QuantFormat[];
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
 * Measure the given affine formats of one tensor, row-major with the last dim as columns. Large
 * tensors are measured on an evenly strided row sample (CANDIDATE_SAMPLE_ELEMENTS). The measured
 * weights are cast to the model dtype first (what MLX quantizes); only the sample is cast, so a
 * small tensor's `full` array is cast in place (a no-op for values already in the dtype).
 * `colWeights` (one per column, InputWeighting 'norm') is what the rounding search minimises; both
 * errors reported are plain ‖ΔW‖²/‖W‖², so the allocation compares every tensor on the same measure.
 */
export function measureCandidates(
  formats: readonly QuantFormat[],
  shape: number[],
  full: Float32Array,
  opts: MeasureOptions,
  colWeights?: ArrayLike<number>,
): Candidate[] {
  if (formats.length === 0) return [];
  const cols = shape[shape.length - 1]!;
  const sample = sampleRows(full, numel(shape) / cols, cols, CANDIDATE_SAMPLE_ELEMENTS);
  const rows = sample.rows;
  const w = roundToDType(sample.w, opts.dtype);
  return formats.map((format) => {
    if (format.kind === 'fp') {
      // MLX's fp modes have no free scale to search: `--rounding search` writes them as RTN.
      const relError = fpRelativeError(w, rows, cols, format.mode, opts.dtype);
      return { format, bytes: formatBytes(format, shape, opts.dtype), relError, ...(opts.search ? { relErrorSearch: relError } : {}) };
    }
    const c: Candidate = {
      format,
      bytes: formatBytes(format, shape, opts.dtype),
      relError: affineRelativeErrorOn(getBackend(), w, rows, cols, format.bits, format.groupSize, opts.dtype, opts.rules),
    };
    if (opts.search) {
      c.relErrorSearch = searchRelativeError(w, rows, cols, { bits: format.bits, groupSize: format.groupSize, dtype: opts.dtype, rules: opts.rules, rtnRelError: c.relError, colWeights }, getBackend());
    }
    return c;
  });
}
