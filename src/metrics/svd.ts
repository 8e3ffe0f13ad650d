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
 * When min(m, n) is small against q (SmolLM2's 576-wide matrices, an embedding), the same subspaces
 * come cheaper from the smaller Gram, WᵀW or W·Wᵀ, formed once (gramSketchValues; sketchRoute
 * decides by flop count): the same values for the same sketch up to float32 rounding.
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
  choleskyOn,
  clip01,
  gramF32On,
  orthonormalize,
  Scratch,
  singularValues,
  solveUpperRightOn,
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
 * How randomizedSingularValues reaches its values: 'direct' follows torch's sequence of products
 * with W; 'gram' iterates in the space of the smaller Gram (see gramSketchValues), the same values
 * in exact arithmetic for the same sketch, in fewer flops when min(m, n) is small against q.
 */
export type SketchRoute = 'direct' | 'gram';

/**
 * The cheaper route by a flop count (a GEMM is 2·m·n·k, a Cholesky-QR pass on a rows×q panel
 * 3·rows·q²: its Gram and the triangular product). The Gram route pays min²·max for the Gram (half
 * a GEMM) to save the 2·(1 + niter) products with W of 2·m·n·q each; it wins while min(m, n) is
 * below ~6q (SmolLM2's 576-wide shapes, an embedding), not on 4096-wide 8B shapes.
 */
export function sketchRoute(m: number, n: number, q: number, niter: number): SketchRoute {
  const s = Math.min(m, n), l = Math.max(m, n);
  const pass = (rows: number): number => 3 * rows * q * q;
  const direct = 2 * (2 + 2 * niter) * m * n * q + niter * (pass(m) + pass(n)) + 2 * pass(n) + 2 * m * q * q;
  const iterations = niter * (2 * s * s * q + pass(s));
  const gram = n <= m
    ? s * s * l + 2 * m * n * q + pass(s) + iterations + pass(s) + 2 * s * s * q + 2 * s * q * q
    : s * s * l + iterations + 2 * s * s * q + 5 * s * q * q;
  return gram < direct ? 'gram' : 'direct';
}

/**
 * torch.svd_lowrank's singular values (see the file comment), q values descending. Requires
 * min(rows, cols) ≥ q; W is row-major rows×cols float32. route: sketchRoute's choice unless given
 * (the tests compare the two).
 */
export function randomizedSingularValues(
  backend: KernelBackend,
  rows: number,
  cols: number,
  data: Float32Array,
  q: number,
  niter: number,
  rng: Rng,
  route: SketchRoute = sketchRoute(rows, cols, q, niter),
): Float64Array {
  const m = rows, n = cols;
  if (Math.min(m, n) < q) throw new RangeError(`randomizedSingularValues: ${m}×${n} has fewer than ${q} values`);
  const sc = new Scratch(backend);
  try {
    const r = rng.fillNormal(sc.f32(m * q), 1, backend.normalPairs?.bind(backend));
    return (route === 'gram' && gramSketchValues(backend, m, n, data, r, q, niter, sc)) || directSketchValues(backend, m, n, data, r, q, niter, sc);
  } finally {
    sc.releaseAll();
  }
}

/** torch's sequence (the file comment) on the sketch r (m×q, in sc; freed here). */
function directSketchValues(backend: KernelBackend, m: number, n: number, data: Float32Array, r: Float32Array, q: number, niter: number, sc: Scratch): Float64Array {
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
  return valuesOfPanel(backend, xm, m, q, sc);
}

/**
 * The same values by iterating in the space of the smaller Gram (float32, formed once):
 *   n ≤ m, G = WᵀW (n×n): Q = orth(Wᵀ·R), then niter times Q = orth(G·Q) — the span torch reaches
 *     with orth(Wᵀ·orth(W·Q)) — and s = √eig(Qᵀ·G·Q) = the singular values of B_t = W·Q.
 *   m < n, H = W·Wᵀ (m×m): P = R, niter times P = orth(H·P) (torch's m-side bases); torch's final
 *     basis Q = orth(Wᵀ·P) = Wᵀ·P·C⁻¹ with CᵀC = Pᵀ·H·P, so B_t = W·Q = Y·C⁻¹ with Y = H·P, and s
 *     are its singular values: no product with W after H.
 * The bases between iterations take one Cholesky-QR pass as in the direct route. The price of the
 * Gram is a squared condition number: float32 rounding of G reaches the values as ~u·σ₁² (direct:
 * ~u·σ₁·σᵢ), far below what the concentration resolves. Returns null when Pᵀ·H·P is not positive
 * definite to working precision (W numerically of rank < q on the sketch): the direct route then
 * takes over with its safeguards, on the same sketch (r is kept for it).
 */
function gramSketchValues(backend: KernelBackend, m: number, n: number, data: Float32Array, r: Float32Array, q: number, niter: number, sc: Scratch): Float64Array | null {
  const basis = { basisOnly: true, scratch: sc };
  const final = { scratch: sc };
  const s = Math.min(m, n);
  const g = sc.f32(s * s);
  gramF32On(backend, data, m, n, n <= m ? 'cols' : 'rows', g);
  const y = sc.f32(s * q);
  if (n <= m) {
    backend.gemm(true, false, n, q, m, data, r, y);
    sc.free(r);
    let qn = orthonormalize(backend, y, n, q, niter > 0 ? basis : final).q;
    for (let it = 0; it < niter; it++) {
      backend.gemm(false, false, n, q, n, g, qn, y);
      sc.free(qn);
      qn = orthonormalize(backend, y, n, q, it === niter - 1 ? final : basis).q;
    }
    backend.gemm(false, false, n, q, n, g, qn, y); // G·Q
    const b = sc.f32(q * q);
    backend.gemm(true, false, q, q, n, qn, y, b); // Qᵀ·G·Q = B_tᵀ·B_t
    return eigenSingularValues(backend, b, q);
  }
  let p = r;
  for (let it = 0; it < niter; it++) {
    backend.gemm(false, false, m, q, m, g, p, y);
    if (p !== r) sc.free(p);
    p = orthonormalize(backend, y, m, q, basis).q;
  }
  backend.gemm(false, false, m, q, m, g, p, y); // Y = H·P
  const k32 = sc.f32(q * q);
  backend.gemm(true, false, q, q, m, p, y, k32); // Pᵀ·H·P
  const c = choleskyOn(backend, symmetricF64(k32, q), q);
  if (c === null) return null;
  const bt = sc.f32(m * q);
  solveUpperRightOn(backend, y, m, q, c, sc.f32(q * q), bt); // B_t = Y·C⁻¹
  return valuesOfPanel(backend, bt, m, q, sc);
}

/** Singular values of a rows×q float32 panel B, descending: √eig(BᵀB). */
function valuesOfPanel(backend: KernelBackend, b: Float32Array, rows: number, q: number, sc: Scratch): Float64Array {
  // BᵀB by the backend's GEMM (float32): its rounding (~1e-7·σ₁² per entry) moves only the
  // eigenvalues far below σ₁², which carry no weight in the energy concentration.
  const g32 = sc.f32(q * q);
  backend.gemm(true, false, q, q, rows, b, b, g32);
  return eigenSingularValues(backend, g32, q);
}

/** Both triangles of a float32 q×q matrix averaged into a symmetric float64 one. */
function symmetricF64(a: Float32Array, q: number): Float64Array {
  const g = new Float64Array(q * q);
  for (let i = 0; i < q; i++) {
    for (let j = 0; j <= i; j++) {
      const v = (a[i * q + j]! + a[j * q + i]!) / 2;
      g[i * q + j] = v;
      g[j * q + i] = v;
    }
  }
  return g;
}

/** √eig of the (near-)symmetric float32 q×q Gram, descending. */
function eigenSingularValues(backend: KernelBackend, g32: Float32Array, q: number): Float64Array {
  const ev = symmetricEigenvaluesOn(backend, symmetricF64(g32, q), q);
  const s = new Float64Array(q);
  for (let i = 0; i < q; i++) s[i] = Math.sqrt(Math.max(0, ev[q - 1 - i]!));
  return s;
}
