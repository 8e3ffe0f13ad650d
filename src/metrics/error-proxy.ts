/**
 * Reconstruction-error proxy (SWAN v2's error_proxy): simulate asymmetric min-max round-to-nearest at
 * `bits` bits with groups of `groupSize` along each row and return the normalised RMS error.
 *
 * Matches the reference's float32 arithmetic element by element: every op is rounded with
 * Math.fround (an f64 op on f32 inputs, rounded once to f32, is the correctly rounded f32 op), and
 * round() is ties-to-even like torch.round. Only the two sums are accumulated in float64.
 *
 * Rows are zero-padded to a multiple of the group size; the pad zeros take part in the last group's
 * min/max and in both RMS sums (their reconstruction error counts, w = 0 adds nothing to Σw²). The
 * element count is the same in both RMS terms, so NRMSE = √(Σ err² / Σ w²).
 */
import type { KernelBackend } from '../kernels/backend.js';
import { clip01 } from '../kernels/linalg.js';

const fr = Math.fround;

export interface ErrorProxyResult {
  nrmse: number;
  score: number;
}

export function errorProxyMetric(
  rows: number,
  cols: number,
  data: ArrayLike<number>,
  bits = 4,
  groupSize = 128,
  backend?: KernelBackend,
): ErrorProxyResult {
  const nrmse =
    backend?.rtnErrorSums && data instanceof Float32Array
      ? nrmseOf(...backend.rtnErrorSums(data, rows, cols, bits, groupSize))
      : rtnNrmse(rows, cols, data, bits, groupSize);
  return { nrmse, score: clip01((nrmse - 0.005) / 0.045) };
}

export function rtnNrmse(rows: number, cols: number, data: ArrayLike<number>, bits = 4, groupSize = 128): number {
  const qmax = 2 ** bits - 1;
  const minScale = fr(1e-12);
  const padded = Math.ceil(cols / groupSize) * groupSize;
  const pad = padded - cols;
  // Adding and subtracting 2⁵² rounds a float64 |v| < 2⁵¹ to an integer, ties to even, in one step.
  const MAGIC = 4503599627370496;
  // The reconstructed values of one group, indexed by q: fr(fr(q·scale) + min).
  const lut = new Float64Array(qmax + 1);
  let errSum = 0;
  let wSum = 0;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let g0 = 0; g0 < cols; g0 += groupSize) {
      const g1 = Math.min(g0 + groupSize, cols);
      const lastPadded = g1 === cols && pad > 0;
      let mn = lastPadded ? 0 : Infinity;
      let mx = lastPadded ? 0 : -Infinity;
      for (let i = row + g0; i < row + g1; i++) {
        const w = data[i]!;
        if (w < mn) mn = w;
        if (w > mx) mx = w;
      }
      let scale = fr(fr(mx - mn) / qmax);
      if (scale < minScale) scale = minScale;
      for (let q = 0; q <= qmax; q++) lut[q] = fr(fr(q * scale) + mn);
      let e2 = 0, w2 = 0;
      for (let i = row + g0; i < row + g1; i++) {
        const w = data[i]!;
        let q = fr(fr(w - mn) / scale);
        q = q + MAGIC - MAGIC;
        q = q < 0 ? 0 : q > qmax ? qmax : q; // NaN falls through to index 0 and stays NaN in err
        const err = fr(lut[q | 0]! - w);
        e2 += err * err;
        w2 += w * w;
      }
      if (lastPadded) {
        // The pad zeros: same formula with w = 0.
        let q = fr(fr(0 - mn) / scale);
        q = q + MAGIC - MAGIC;
        q = q < 0 ? 0 : q > qmax ? qmax : q;
        const err = lut[q | 0]!;
        e2 += pad * err * err;
      }
      errSum += e2;
      wSum += w2;
    }
  }
  return nrmseOf(errSum, wSum);
}

function nrmseOf(errSum: number, wSum: number): number {
  // An all-zero tensor reconstructs exactly: report 0 rather than 0/0.
  if (wSum === 0) return errSum === 0 ? 0 : Infinity;
  return Math.sqrt(errSum / wSum);
}
