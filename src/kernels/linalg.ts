/**
 * Dense linear-algebra helpers on top of a KernelBackend.
 *
 * Big products (a tall panel times anything) go through backend.gemm in float32; everything that is
 * only l×l (l ≤ ~512) runs in float64, where accuracy is cheap: Cholesky, triangular inverse,
 * symmetric eigenvalues (Householder tridiagonalisation + implicit QL), Gram matrices for exact
 * singular values. The l×l routines are written here in TypeScript; a backend that has them
 * natively (LAPACK, see backend.ts) runs them instead, through the *On(backend, …) functions.
 */
import type { KernelBackend } from './backend.js';

// ---------------------------------------------------------------------------------------------
// Reductions

/** Clip to [0, 1]; NaN maps to 0 (as Python's min(1, max(0, nan)) does). */
export function clip01(x: number): number {
  if (!(x > 0)) return 0;
  return x < 1 ? x : 1;
}

/** Σx² in float64. */
export function sumSquares(x: ArrayLike<number>, start = 0, end = x.length): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = start;
  for (; i + 3 < end; i += 4) {
    const a = x[i]!, b = x[i + 1]!, c = x[i + 2]!, d = x[i + 3]!;
    s0 += a * a; s1 += b * b; s2 += c * c; s3 += d * d;
  }
  for (; i < end; i++) s0 += x[i]! * x[i]!;
  return s0 + s1 + s2 + s3;
}

/** Minimum and maximum (NaN propagates into both: Math.min/max do that, and V8 compiles them to minsd/maxsd). */
export function minMax(x: ArrayLike<number>): { min: number; max: number } {
  let mn = Infinity, mx = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
  }
  return { min: mn, max: mx };
}

/**
 * Σx (float64, in index order), min and max in one pass. NaN propagates into all three; the sum of
 * float32 values cannot overflow a double, so Number.isFinite(sum) says whether every x is finite.
 */
export function sumMinMax(x: ArrayLike<number>): { sum: number; min: number; max: number } {
  let sum = 0, mn = Infinity, mx = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    sum += v;
    mn = Math.min(mn, v);
    mx = Math.max(mx, v);
  }
  return { sum, min: mn, max: mx };
}

export function allFinite(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Work arrays

/**
 * Plain work arrays given back by this thread's Scratches, by length, for the next ones: a model's
 * tensors repeat a few shapes, so most arrays are taken again instead of allocated (zero-filled) and
 * collected. At most SPARE_MAX_FLOATS are kept (when one more would not fit, all are let go), none
 * longer than SPARE_MAX_LENGTH (an embedding's sketch is not worth keeping).
 */
const spare = new Map<number, Float32Array[]>();
let spareFloats = 0;
const SPARE_MAX_FLOATS = 1 << 23;
const SPARE_MAX_LENGTH = 1 << 21;

function takeSpare(length: number): Float32Array | undefined {
  const a = spare.get(length)?.pop();
  if (a) spareFloats -= length;
  return a;
}

function keepSpare(a: Float32Array): void {
  if (a.length > SPARE_MAX_LENGTH) return;
  if (spareFloats + a.length > SPARE_MAX_FLOATS) {
    spare.clear();
    spareFloats = 0;
  }
  const list = spare.get(a.length);
  if (list) list.push(a);
  else spare.set(a.length, [a]);
  spareFloats += a.length;
}

/**
 * Float32 work arrays from the backend's own memory when it has one (its GEMM then reads them in
 * place instead of copying operands in and out on every call), else plain Float32Arrays (kept for
 * this thread's next Scratch when given back: takeSpare). Arrays may hold stale data. free() one
 * early, or releaseAll() when done (typically in a finally).
 */
export class Scratch {
  private readonly owned = new Set<Float32Array>();
  private readonly plain = new Set<Float32Array>();
  constructor(private readonly backend: KernelBackend | null) {}

  f32(length: number): Float32Array {
    const b = this.backend;
    if (!b?.alloc || !b.release) {
      const a = takeSpare(length) ?? new Float32Array(length);
      this.plain.add(a);
      return a;
    }
    const a = b.alloc(length);
    this.owned.add(a);
    return a;
  }

  /** src copied into backend memory, or src itself when the backend has no memory of its own. */
  place(src: Float32Array): Float32Array {
    const b = this.backend;
    if (!b?.alloc || !b.release) return src;
    const a = this.f32(src.length);
    a.set(src);
    return a;
  }

  /** Release one array from f32()/place(); anything else is ignored. */
  free(a: Float32Array): void {
    if (this.owned.delete(a)) this.backend!.release!(a);
    else if (this.plain.delete(a)) keepSpare(a);
  }

  releaseAll(): void {
    const all = [...this.owned].reverse();
    this.owned.clear();
    for (const a of all) this.backend!.release!(a);
    for (const a of this.plain) keepSpare(a);
    this.plain.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Gram matrices

/**
 * Float64 Gram matrix of a row-major rows×cols matrix: which='rows' gives A·Aᵀ (rows×rows),
 * which='cols' gives Aᵀ·A (cols×cols). Full symmetric result, row-major.
 *
 * The vectors are converted to float64 chunk by chunk (no full-size copy), and a 4×4 tile of dot
 * products keeps 16 sums in registers, so this runs at roughly GEMM speed while staying exact to
 * float64 rounding, which the exact-SVD path needs (small singular values survive).
 */
export function gramF64(
  data: ArrayLike<number>,
  rows: number,
  cols: number,
  which: 'rows' | 'cols',
): Float64Array {
  const s = which === 'rows' ? rows : cols; // number of vectors
  const len = which === 'rows' ? cols : rows; // their length
  const s4 = (s + 3) & ~3;
  const CH = 256;
  const v = new Float64Array(s4 * CH); // vectors × chunk, zero rows for padding
  const g = new Float64Array(s4 * s4);
  for (let k0 = 0; k0 < len; k0 += CH) {
    const kc = Math.min(CH, len - k0);
    if (which === 'rows') {
      for (let i = 0; i < s; i++) {
        const src = i * cols + k0;
        const dst = i * CH;
        for (let p = 0; p < kc; p++) v[dst + p] = data[src + p]!;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const src = (k0 + p) * cols;
        for (let i = 0; i < s; i++) v[i * CH + p] = data[src + i]!;
      }
    }
    for (let ib = 0; ib < s4; ib += 4) {
      const r0 = ib * CH, r1 = r0 + CH, r2 = r1 + CH, r3 = r2 + CH;
      for (let jb = 0; jb <= ib; jb += 4) {
        const q0 = jb * CH, q1 = q0 + CH, q2 = q1 + CH, q3 = q2 + CH;
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (let p = 0; p < kc; p++) {
          const a0 = v[r0 + p]!, a1 = v[r1 + p]!, a2 = v[r2 + p]!, a3 = v[r3 + p]!;
          const b0 = v[q0 + p]!, b1 = v[q1 + p]!, b2 = v[q2 + p]!, b3 = v[q3 + p]!;
          c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
          c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
          c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
          c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        }
        let o = ib * s4 + jb;
        g[o] += c00; g[o + 1] += c01; g[o + 2] += c02; g[o + 3] += c03; o += s4;
        g[o] += c10; g[o + 1] += c11; g[o + 2] += c12; g[o + 3] += c13; o += s4;
        g[o] += c20; g[o + 1] += c21; g[o + 2] += c22; g[o + 3] += c23; o += s4;
        g[o] += c30; g[o + 1] += c31; g[o + 2] += c32; g[o + 3] += c33;
      }
    }
  }
  // Tiles with jb ≤ ib cover the lower triangle; mirror it.
  const out = new Float64Array(s * s);
  for (let i = 0; i < s; i++) {
    for (let j = 0; j <= i; j++) {
      const x = g[i * s4 + j]!;
      out[i * s + j] = x;
      out[j * s + i] = x;
    }
  }
  return out;
}

/** gramF64() on the backend when it has it (and the data is float32), else in TypeScript. */
export function gramF64On(
  backend: KernelBackend | null | undefined,
  data: ArrayLike<number>,
  rows: number,
  cols: number,
  which: 'rows' | 'cols',
): Float64Array {
  return backend?.gramF64 && data instanceof Float32Array
    ? backend.gramF64(data, rows, cols, which)
    : gramF64(data, rows, cols, which);
}

/**
 * out = the Gram of a row-major rows×cols matrix in float32, A·Aᵀ (which 'rows') or Aᵀ·A ('cols'),
 * full and symmetric: by the backend's float32 half-GEMM kernel when it has one, else the float64
 * Gram (gramF64On, also half the flops) rounded. Not the backend's float32 GEMM: the wasm one sums
 * long dot products (an embedding's 49152 rows) in one float32 chain, which moved SmolLM2's embedding
 * concentration by 1e-5; BLAS blocks the sum and stays within ~1e-7.
 */
export function gramF32On(
  backend: KernelBackend,
  data: Float32Array,
  rows: number,
  cols: number,
  which: 'rows' | 'cols',
  out: Float32Array,
): void {
  if (backend.gramF32) {
    backend.gramF32(data, rows, cols, which, out);
    return;
  }
  const g = gramF64On(backend, data, rows, cols, which);
  for (let i = 0; i < g.length; i++) out[i] = g[i]!;
}

// ---------------------------------------------------------------------------------------------
// Cholesky and triangular helpers (float64, row-major n×n)

/**
 * Upper-triangular R with RᵀR = G + shift·I, or null when a pivot is not positive (G not positive
 * definite to working precision). Right-looking, so the inner loops run along rows.
 */
export function cholesky(g: ArrayLike<number>, n: number, shift = 0): Float64Array | null {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = g[i * n + j]!;
  for (let i = 0; i < n; i++) a[i * n + i] += shift;
  for (let j = 0; j < n; j++) {
    const piv = a[j * n + j]!;
    if (!(piv > 0) || !Number.isFinite(piv)) return null;
    const d = Math.sqrt(piv);
    const rj = j * n;
    a[rj + j] = d;
    const inv = 1 / d;
    for (let i = j + 1; i < n; i++) a[rj + i] *= inv;
    for (let k = j + 1; k < n; k++) {
      const f = a[rj + k]!;
      if (f === 0) continue;
      const rk = k * n;
      for (let i = k; i < n; i++) a[rk + i] -= f * a[rj + i]!;
    }
  }
  return a;
}

/** Inverse of an upper-triangular n×n matrix (float64). */
export function invertUpper(r: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  // Column j of X solves R·x = e_j; back substitution row by row.
  for (let j = 0; j < n; j++) {
    x[j * n + j] = 1 / r[j * n + j]!;
    for (let i = j - 1; i >= 0; i--) {
      let s = 0;
      const ri = i * n;
      for (let k = i + 1; k <= j; k++) s += r[ri + k]! * x[k * n + j]!;
      x[ri + j] = -s / r[ri + i]!;
    }
  }
  return x;
}

/** C = A·B for upper-triangular n×n float64 matrices. */
export function mulUpper(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = i; k < n; k++) {
      const f = a[i * n + k]!;
      if (f === 0) continue;
      for (let j = k; j < n; j++) c[i * n + j] += f * b[k * n + j]!;
    }
  }
  return c;
}

/** out = Y·U for a rows×n Y and an upper-triangular n×n U (float32): backend.mulUpperRight when it has it, else its GEMM. */
export function mulUpperRightOn(backend: KernelBackend, y: Float32Array, rows: number, n: number, u: Float32Array, out: Float32Array): void {
  if (backend.mulUpperRight) backend.mulUpperRight(y, rows, n, u, out);
  else backend.gemm(false, false, rows, n, n, y, u, out);
}

/**
 * out = Y·R⁻¹ for a rows×n float32 Y and an upper-triangular float64 R: backend.solveUpperRight on R
 * rounded to float32 when the backend has it, else R⁻¹ in float64 (invertUpperOn) rounded to
 * float32 times Y (mulUpperRightOn). u32 is an n×n work array.
 */
export function solveUpperRightOn(backend: KernelBackend, y: Float32Array, rows: number, n: number, r: Float64Array, u32: Float32Array, out: Float32Array): void {
  if (backend.solveUpperRight) {
    for (let i = 0; i < n * n; i++) u32[i] = r[i]!;
    backend.solveUpperRight(y, rows, n, u32, out);
    return;
  }
  const rinv = invertUpperOn(backend, r, n);
  for (let i = 0; i < n * n; i++) u32[i] = rinv[i]!;
  mulUpperRightOn(backend, y, rows, n, u32, out);
}

/** cholesky() on the backend when it has it, else in TypeScript. */
export function choleskyOn(
  backend: KernelBackend | null | undefined,
  g: Float32Array | Float64Array,
  n: number,
  shift = 0,
): Float64Array | null {
  return backend?.cholesky ? backend.cholesky(g, n, shift) : cholesky(g, n, shift);
}

/**
 * GPTQ's factor (src/mlx/gptq.ts): the upper-triangular U with UᵀU = (H + shift·I)⁻¹, shift = damp ·
 * mean(diag H), as float32; null when H has a non-finite value, no positive mean diagonal, or is not
 * positive definite after the shift. With P the order reversal, cholesky(P H P) = R (RᵀR) gives
 * H = A Aᵀ for the upper A = P Rᵀ P, so U = A⁻¹ = P R⁻ᵀ P: one Cholesky and one triangular inverse.
 */
export function inverseCholeskyUpperOn(backend: KernelBackend | null | undefined, h: ArrayLike<number>, n: number, damp: number): Float32Array | null {
  if (!allFinite(h)) return null;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i]!;
  mean /= n;
  if (!(mean > 0)) return null;
  const rev = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const src = (n - 1 - i) * n + (n - 1);
    for (let j = 0; j < n; j++) rev[i * n + j] = h[src - j]!;
  }
  const r = choleskyOn(backend, rev, n, damp * mean);
  if (!r) return null;
  const ri = invertUpperOn(backend, r, n);
  const u = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = ri[(n - 1 - j) * n + (n - 1 - i)]!;
  return u;
}

/** invertUpper() on the backend when it has it, else in TypeScript. */
export function invertUpperOn(backend: KernelBackend | null | undefined, r: Float64Array, n: number): Float64Array {
  return backend?.invertUpper ? backend.invertUpper(r, n) : invertUpper(r, n);
}

/** mulUpper() on the backend when it has it, else in TypeScript. */
export function mulUpperOn(backend: KernelBackend | null | undefined, a: Float64Array, b: Float64Array, n: number): Float64Array {
  return backend?.mulUpper ? backend.mulUpper(a, b, n) : mulUpper(a, b, n);
}

// ---------------------------------------------------------------------------------------------
// Orthonormalisation of a tall panel

export type OrthMethod = 'cholqr1' | 'cholqr2' | 'cholqr3' | 'shifted-cholqr3' | 'householder';

export interface QrResult {
  /** rows×cols, orthonormal columns, row-major float32. */
  q: Float32Array;
  /** cols×cols upper triangular, float64, with Q·R ≈ Y (orthonormalize forms it on first read: the SVD never reads it). */
  readonly r: Float64Array;
  method: OrthMethod;
}

/**
 * Q·R = Y for a tall rows×cols float32 panel (rows ≥ cols), by Cholesky-QR2:
 *   G = YᵀY (gramF32On), R₁ = chol(G) (float64), Q₁ = Y·R₁⁻¹ (solveUpperRightOn), then the same once
 *   more on Q₁, which repairs the orthogonality the first pass loses (≈ u·cond(Y)²).
 * It needs only GEMMs plus l×l work, so it runs at backend speed (about 2× faster than Householder
 * QR on the panels the randomized SVD makes). Safeguards, in order:
 *   - if the second Gram is far from I (first pass too inaccurate: cond(Y) ≳ 10³), one more pass;
 *   - if a Cholesky fails (Gram not positive definite: Y ill-conditioned), a shifted first pass
 *     (G + s·I, s = 1e-5·tr(G)), which always gives a well-conditioned Q₁, then plain passes;
 *   - if that fails too (Y numerically rank deficient), float64 Householder QR, which is always
 *     orthonormal (like LAPACK's, the extra columns span arbitrary directions of the complement).
 *
 * basisOnly: stop after one successful unshifted pass ('cholqr1'). Q then spans range(Y) but is
 * orthonormal only to ≈ u·cond(Y)²; enough between power iterations, whose next subspace depends only
 * on range(Q) (any well-conditioned basis gives the same result up to rounding).
 */
export function orthonormalize(
  backend: KernelBackend,
  y: Float32Array,
  rows: number,
  cols: number,
  opts: { basisOnly?: boolean; scratch?: Scratch } = {},
): QrResult {
  if (rows < cols) throw new RangeError(`orthonormalize: panel ${rows}×${cols} is not tall`);
  const n = cols;
  // Work arrays come from the caller's scratch (the returned Q too: it stays valid until the
  // caller frees it); temporaries are freed here.
  const sc = opts.scratch ?? new Scratch(null);
  const g = sc.f32(n * n);
  const r32 = sc.f32(n * n);
  let q = y;
  const factors: Float64Array[] = []; // each pass's R; R = R_k·…·R_1
  const done = (method: OrthMethod): QrResult => {
    sc.free(g);
    sc.free(r32);
    let r: Float64Array | undefined;
    return { q, method, get r() { return (r ??= factors.reduce((acc, f) => mulUpperOn(backend, f, acc, n))); } };
  };
  const fallback = (): QrResult => {
    if (q !== y) sc.free(q);
    q = y;
    sc.free(g);
    sc.free(r32);
    return householderQR(y, rows, cols);
  };
  let shifted = false;
  const maxPasses = 4;
  for (let pass = 0; pass < maxPasses; pass++) {
    gramF32On(backend, q, rows, n, 'cols', g);
    let dev = Infinity;
    if (pass > 0) {
      dev = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const d = Math.abs(g[i * n + j]! - (i === j ? 1 : 0));
          if (d > dev) dev = d;
        }
      }
    }
    let r = choleskyOn(backend, g, n);
    if (r === null) {
      if (pass > 0 || shifted) return fallback();
      let tr = 0;
      for (let i = 0; i < n; i++) tr += g[i * n + i]!;
      if (!(tr > 0) || !Number.isFinite(tr)) return fallback();
      r = choleskyOn(backend, g, n, 1e-5 * tr);
      if (r === null) return fallback();
      shifted = true;
    }
    const next = sc.f32(rows * n);
    solveUpperRightOn(backend, q, rows, n, r, r32, next);
    if (q !== y) sc.free(q);
    q = next;
    factors.push(r);
    if (opts.basisOnly && pass === 0 && !shifted) return done('cholqr1');
    // Stop after two passes when the second Gram showed pass one was good enough for pass two to
    // reach float32 orthogonality; a shifted start always takes two plain passes after it.
    if (pass >= 1 && dev < 0.1 && !(shifted && pass < 2)) {
      return done(shifted ? 'shifted-cholqr3' : pass === 1 ? 'cholqr2' : 'cholqr3');
    }
  }
  return fallback();
}

/** Householder QR in float64 with the explicit thin Q (rows ≥ cols). Robust fallback, ~4·rows·cols² flops. */
export function householderQR(y: ArrayLike<number>, rows: number, cols: number): QrResult {
  if (rows < cols) throw new RangeError(`householderQR: panel ${rows}×${cols} is not tall`);
  const m = rows, n = cols;
  // Column-major copy: each column contiguous.
  const a = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[j * m + i] = y[i * n + j]!;
  const betas = new Float64Array(n);
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const cj = j * m;
    let norm2 = 0;
    for (let i = j; i < m; i++) norm2 += a[cj + i]! * a[cj + i]!;
    const x0 = a[cj + j]!;
    const norm = Math.sqrt(norm2);
    if (norm === 0) {
      betas[j] = 0; // H = I
      r[j * n + j] = 0;
    } else {
      const alpha = x0 >= 0 ? -norm : norm;
      a[cj + j] = x0 - alpha; // v = x − αe₁ stored in place
      const vtv = norm2 - 2 * alpha * x0 + alpha * alpha;
      betas[j] = vtv > 0 ? 2 / vtv : 0;
      r[j * n + j] = alpha;
      for (let k = j + 1; k < n; k++) {
        const ck = k * m;
        let s = 0;
        for (let i = j; i < m; i++) s += a[cj + i]! * a[ck + i]!;
        s *= betas[j]!;
        for (let i = j; i < m; i++) a[ck + i] -= s * a[cj + i]!;
      }
    }
    for (let k = j + 1; k < n; k++) r[j * n + k] = a[k * m + j]!;
  }
  // Q = H₀·H₁·…·H_{n−1}·[I; 0], applied from the last reflector backwards.
  const q = new Float64Array(m * n);
  for (let j = 0; j < n; j++) q[j * m + j] = 1;
  for (let j = n - 1; j >= 0; j--) {
    const beta = betas[j]!;
    if (beta === 0) continue;
    const cj = j * m;
    for (let k = j; k < n; k++) {
      const ck = k * m;
      let s = 0;
      for (let i = j; i < m; i++) s += a[cj + i]! * q[ck + i]!;
      s *= beta;
      if (s === 0) continue;
      for (let i = j; i < m; i++) q[ck + i] -= s * a[cj + i]!;
    }
  }
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = q[j * m + i]!;
  return { q: out, r, method: 'householder' };
}

// ---------------------------------------------------------------------------------------------
// Symmetric eigenvalues and small singular values

/**
 * All eigenvalues of a symmetric n×n float64 matrix (row-major, both triangles used as given; it
 * should be symmetric), ascending like numpy.linalg.eigvalsh. Householder reduction to tridiagonal
 * form, then implicit QL with Wilkinson-type shifts. O(n³), fine up to n ≈ 1000.
 */
export function symmetricEigenvalues(input: ArrayLike<number>, n: number): Float64Array {
  if (n === 0) return new Float64Array(0);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) a[i] = input[i]!;
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] couples d[i] and d[i+1]
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    // Reflect x = A[k+1:, k] onto α·e₁; by symmetry read it from row k.
    const rk = k * n;
    let norm2 = 0;
    for (let i = k + 1; i < n; i++) norm2 += a[rk + i]! * a[rk + i]!;
    d[k] = a[rk + k]!;
    if (norm2 === 0) {
      e[k] = 0;
      continue;
    }
    const x0 = a[rk + k + 1]!;
    const norm = Math.sqrt(norm2);
    const alpha = x0 >= 0 ? -norm : norm;
    e[k] = alpha;
    for (let i = k + 1; i < n; i++) v[i] = a[rk + i]!;
    v[k + 1] = x0 - alpha;
    const beta = 2 / (norm2 - 2 * alpha * x0 + alpha * alpha);
    // A₂₂ ← H·A₂₂·H = A₂₂ − v·wᵀ − w·vᵀ with p = β·A₂₂·v, w = p − (β/2)(pᵀv)·v.
    let pv = 0;
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      let s = 0;
      for (let j = k + 1; j < n; j++) s += a[ri + j]! * v[j]!;
      s *= beta;
      p[i] = s;
      pv += s * v[i]!;
    }
    const kk = 0.5 * beta * pv;
    for (let i = k + 1; i < n; i++) p[i] = p[i]! - kk * v[i]!;
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      const vi = v[i]!, wi = p[i]!;
      for (let j = k + 1; j < n; j++) a[ri + j] -= vi * p[j]! + wi * v[j]!;
    }
  }
  if (n >= 2) {
    d[n - 2] = a[(n - 2) * n + n - 2]!;
    e[n - 2] = a[(n - 2) * n + n - 1]!;
  }
  d[n - 1] = a[(n - 1) * n + n - 1]!;
  e[n - 1] = 0;
  tridiagonalQL(d, e, n);
  d.sort();
  return d;
}

/** symmetricEigenvalues() on the backend when it has it, else in TypeScript. */
export function symmetricEigenvaluesOn(backend: KernelBackend | null | undefined, input: ArrayLike<number>, n: number): Float64Array {
  if (!backend?.symmetricEigenvalues) return symmetricEigenvalues(input, n);
  // Non-finite input: the TypeScript's iteration gives up (it throws); LAPACK may return anything.
  const a = input instanceof Float64Array ? input : Float64Array.from(input);
  const ev = allFinite(a) ? backend.symmetricEigenvalues(a, n) : null;
  if (ev === null || !allFinite(ev)) throw new Error('symmetricEigenvalues: the eigenvalue iteration did not converge');
  return ev;
}

function hyp(a: number, b: number): number {
  const r = Math.sqrt(a * a + b * b);
  return Number.isFinite(r) && r !== 0 ? r : Math.hypot(a, b);
}

/** Eigenvalues of the symmetric tridiagonal (d, e) in place (into d): implicit QL, values only. */
export function tridiagonalQL(d: Float64Array, e: Float64Array, n: number): void {
  const eps = Number.EPSILON;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= eps * dd) break;
      }
      if (m === l) break;
      if (++iter > 100) throw new Error('symmetricEigenvalues: QL did not converge');
      // Shift from the leading 2×2 block, then chase the bulge from m up to l with rotations.
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = hyp(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1, c = 1, pp = 0;
      let deflated = false;
      for (let i = m - 1; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        r = hyp(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] = d[i + 1]! - pp;
          e[m] = 0;
          deflated = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - pp;
        r = (d[i]! - g) * s + 2 * c * b;
        pp = s * r;
        d[i + 1] = g + pp;
        g = c * r - b;
      }
      if (deflated) continue;
      d[l] = d[l]! - pp;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/**
 * Singular values (descending, float64) of a rows×cols matrix as √eig of the Gram of the smaller
 * side, formed in float64. Values far below σ₁·1e-8 lose relative accuracy; for energy ratios that is
 * immaterial. The Gram and the eigenvalues come from the backend when it has them.
 */
export function singularValues(
  data: ArrayLike<number>,
  rows: number,
  cols: number,
  backend?: KernelBackend | null,
): Float64Array {
  const which = rows <= cols ? 'rows' : 'cols';
  const s = Math.min(rows, cols);
  const g = gramF64On(backend, data, rows, cols, which);
  const ev = symmetricEigenvaluesOn(backend, g, s);
  const out = new Float64Array(s);
  for (let i = 0; i < s; i++) out[i] = Math.sqrt(Math.max(0, ev[s - 1 - i]!));
  return out;
}
