/**
 * SVD-concentration metric (reference §1.3).
 *
 * k = min(256, m, n). When min(m, n) ≤ 512 the reference takes all min(m, n) exact singular values;
 * we compute them as √eig of the smaller Gram matrix formed in float64 (exact to far better than the
 * reference's float32 SVD for every value that carries energy).
 *
 * Otherwise it calls torch.svd_lowrank(W, q=256, niter=2, M=None), which returns exactly 256 values.
 * We follow that routine step for step. Since n > q always holds here, torch takes its transposed
 * branch for either orientation of W: it builds the basis of Wᵀ, not of W:
 *
 *   R ~ N(0,1)^{m×q};  Q = orth(Wᵀ·R)                      (n×q)
 *   niter times:       Q = orth(W·Q);  Q = orth(Wᵀ·Q)      (m×q, then n×q)
 *   B_t = W·Q (m×q);   s = singular values of B_t = √eig(B_tᵀB_t)  (q×q Gram by the backend GEMM, eigen in float64,
 *                      by LAPACK on the native backend)
 *
 * torch orthonormalises with Householder QR; we use Cholesky-QR (linalg.orthonormalize, with
 * shifted/Householder fallbacks), which spans the same subspace to float32 accuracy: one pass for the
 * bases between power iterations, two (CholQR2) for the final one. The sketch comes
 * from our seeded Rng instead of torch's unseeded one; the Gaussian sketch is rotation invariant, so
 * the distribution of the returned values depends only on W's spectrum.
 *
 * Concentration c = Σ s[:t]² / Σ s² with t = max(1, ⌊len(s)/10⌋) over the values returned — for
 * min dim > 512 the denominator is the top-256 energy only, not ‖W‖_F²: the reference's behaviour,
 * kept on purpose. score = clip((c − 0.1)/0.8); total energy < 1e-12 gives 0. Non-finite input
 * (where torch's SVD raises and the reference returns 0.5) gives 0.5.
 */
import type { KernelBackend } from '../kernels/backend.js';
import {
  allFinite,
  clip01,
  orthonormalize,
  Scratch,
  singularValues,
  symmetricEigenvaluesOn,
} from '../kernels/linalg.js';
import type { Rng } from '../rng.js';

export const SVD_RANK = 256;
export const SVD_NITER = 2;

export interface SvdResult {
  concentration: number;
  score: number;
  /** Singular values used, descending. */
  values: Float64Array;
  /** 'failed': non-finite input or a numerical failure; score 0.5 as in the reference. */
  method: 'exact' | 'randomized' | 'failed';
}

export function svdMetric(
  backend: KernelBackend,
  rows: number,
  cols: number,
  data: Float32Array,
  rng: Rng,
  rank = SVD_RANK,
  /** Whether every value is finite, when the caller already knows. */
  finite?: boolean,
): SvdResult {
  const exact = Math.min(rows, cols) <= 2 * rank;
  const failed: SvdResult = { concentration: NaN, score: 0.5, values: new Float64Array(0), method: 'failed' };
  // torch's SVD raises on non-finite input, and the reference scores any exception as 0.5.
  if (!(finite ?? allFinite(data))) return failed;
  try {
    const values = exact
      ? singularValues(data, rows, cols, backend)
      : randomizedSingularValues(backend, rows, cols, data, Math.min(rank, rows, cols), SVD_NITER, rng);
    const concentration = energyConcentration(values);
    return { concentration, score: svdScore(concentration), values, method: exact ? 'exact' : 'randomized' };
  } catch (e) {
    // Numerical failures (no convergence) score 0.5 like the reference; programming errors propagate.
    if (e instanceof RangeError || e instanceof TypeError) throw e;
    return failed;
  }
}

/** Top-10% energy share of descending values; 0 when the total energy is below 1e-12. */
export function energyConcentration(values: ArrayLike<number>): number {
  const t = Math.max(1, Math.floor(values.length / 10));
  let top = 0, total = 0;
  for (let i = 0; i < values.length; i++) {
    const e = values[i]! * values[i]!;
    total += e;
    if (i < t) top += e;
  }
  return total < 1e-12 ? 0 : top / total;
}

export function svdScore(concentration: number): number {
  return clip01((concentration - 0.1) / 0.8);
}

/**
 * torch.svd_lowrank's singular values (see the file comment), q values descending. Requires
 * min(rows, cols) ≥ q; W is row-major rows×cols float32.
 */
export function randomizedSingularValues(
  backend: KernelBackend,
  rows: number,
  cols: number,
  data: Float32Array,
  q: number,
  niter: number,
  rng: Rng,
): Float64Array {
  const m = rows, n = cols;
  if (Math.min(m, n) < q) throw new RangeError(`randomizedSingularValues: ${m}×${n} has fewer than ${q} values`);
  const sc = new Scratch(backend);
  try {
    const r = rng.fillNormal(sc.f32(m * q), 1, backend.normalPairs?.bind(backend));
    const xn = sc.f32(n * q); // Wᵀ·(m×q)
    const xm = sc.f32(m * q); // W·(n×q)
    // Only the last basis has to be orthonormal (B_t = W·Q); the ones between power iterations only
    // have to span the right subspace, so they take one Cholesky-QR pass instead of two.
    const basis = { basisOnly: true, scratch: sc };
    const final = { scratch: sc };
    backend.gemm(true, false, n, q, m, data, r, xn);
    sc.free(r);
    let qn = orthonormalize(backend, xn, n, q, niter > 0 ? basis : final).q;
    for (let it = 0; it < niter; it++) {
      backend.gemm(false, false, m, q, n, data, qn, xm);
      sc.free(qn);
      const qm = orthonormalize(backend, xm, m, q, basis).q;
      backend.gemm(true, false, n, q, m, data, qm, xn);
      sc.free(qm);
      qn = orthonormalize(backend, xn, n, q, it === niter - 1 ? final : basis).q;
    }
    backend.gemm(false, false, m, q, n, data, qn, xm); // B_t = W·Q
    // BᵀB by the backend's GEMM (float32): its rounding (~1e-7·σ₁² per entry) moves only the
    // eigenvalues far below σ₁², which carry no weight in the energy concentration.
    const g32 = sc.f32(q * q);
    backend.gemm(true, false, q, q, m, xm, xm, g32);
    const g = new Float64Array(q * q);
    for (let i = 0; i < q; i++) {
      for (let j = 0; j <= i; j++) {
        const v = (g32[i * q + j]! + g32[j * q + i]!) / 2;
        g[i * q + j] = v;
        g[j * q + i] = v;
      }
    }
    const ev = symmetricEigenvaluesOn(backend, g, q);
    const s = new Float64Array(q);
    for (let i = 0; i < q; i++) s[i] = Math.sqrt(Math.max(0, ev[q - 1 - i]!));
    return s;
  } finally {
    sc.releaseAll();
  }
}
