import { Rng } from '../../src/rng.js';

/**
 * Weights for the rounding-search tests: heavy-tailed rows (log-normal spread `tail`) plus the
 * awkward groups: constant, zero, all negative, one outlier, tiny values.
 */
export function testMatrix(rows: number, cols: number, seed: number, tail = 0.5): Float32Array {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = 0.02 * rng.normal() * Math.exp(tail * rng.normal());
  const row = (r: number) => w.subarray(r * cols, (r + 1) * cols);
  row(0).fill(0.37);
  row(1).fill(0);
  for (let j = 0; j < cols; j++) row(2)[j] = -Math.abs(row(2)[j]!) - 0.01;
  row(3)[5] = 3;
  for (let j = 0; j < cols; j++) row(4)[j] = row(4)[j]! * 1e-6;
  return w;
}
