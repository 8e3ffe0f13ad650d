/**
 * Checks on a QR factorisation (src/kernels/linalg.ts orthonormalize) and test matrices for the
 * eigenvalue routines, shared by the kernel tests.
 */
import { jsBackend } from '../../src/kernels/index.js';
import { gramF64, householderQR, type QrResult } from '../../src/kernels/linalg.js';
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

/**
 * Symmetric test matrices [name, a, n] for the eigenvalue routines: random of each size in `sizes`,
 * zero, a repeated spectrum (2 ×10, −1 ×15, then 0.1·i), and a Gram with fast-decaying values.
 */
export function symmetricCases(rng: Rng, sizes: number[]): Array<[string, Float64Array, number]> {
  const cases: Array<[string, Float64Array, number]> = [];
  for (const n of sizes) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    cases.push([`rand${n}`, a, n]);
  }
  cases.push(['zero', new Float64Array(400), 20]);
  {
    const n = 40;
    const q = householderQR(rng.fillNormal(new Float32Array(n * n)), n, n).q;
    const lam = Array.from({ length: n }, (_, i) => (i < 10 ? 2 : i < 25 ? -1 : i * 0.1));
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = lam.reduce((s, l, k) => s + q[i * n + k]! * l * q[j * n + k]!, 0);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i]!;
    cases.push(['repeated', a, n]);
  }
  {
    const y = rng.fillNormal(new Float32Array(300 * 200));
    for (let i = 0; i < 300; i++) for (let j = 0; j < 200; j++) y[i * 200 + j]! *= Math.exp(-j / 12);
    cases.push(['gram', gramF64(y, 300, 200, 'cols'), 200]);
  }
  return cases;
}
