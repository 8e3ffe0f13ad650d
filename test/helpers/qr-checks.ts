/** Checks on a QR factorisation (src/kernels/linalg.ts orthonormalize), shared by the kernel tests. */
import { jsBackend } from '../../src/kernels/index.js';
import { gramF64, type QrResult } from '../../src/kernels/linalg.js';
import { Rng } from '../../src/rng.js';

/** Gram of the columns of Q minus I, max abs entry (float64). */
export function orthogonalityError(q: Float32Array, rows: number, cols: number): number {
  const g = gramF64(q, rows, cols, 'cols');
  let e = 0;
  for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) e = Math.max(e, Math.abs(g[i * cols + j]! - (i === j ? 1 : 0)));
  return e;
}

/** max |Q·R − Y| / max |Y|. */
export function reconstructionError(y: Float32Array, res: QrResult, rows: number, cols: number): number {
  let e = 0, s = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let t = 0;
      for (let k = 0; k <= j; k++) t += res.q[i * cols + k]! * res.r[k * cols + j]!;
      e = Math.max(e, Math.abs(t - y[i * cols + j]!));
      s = Math.max(s, Math.abs(y[i * cols + j]!));
    }
  }
  return e / s;
}

/** A rows×cols panel with condition number ≈ cond: G·diag(cond^(−j/(cols−1)))·H, H a random mix. */
export function conditionedPanel(rng: Rng, rows: number, cols: number, cond: number): Float32Array {
  const g = rng.fillNormal(new Float32Array(rows * cols));
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) g[i * cols + j]! *= Math.pow(cond, -j / (cols - 1));
  const h = rng.fillNormal(new Float32Array(cols * cols));
  const y = new Float32Array(rows * cols);
  jsBackend.gemm(false, false, rows, cols, cols, g, h, y);
  return y;
}
