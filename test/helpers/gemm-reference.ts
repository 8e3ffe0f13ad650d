/** float64 reference for the GEMM tests of every kernel backend. */

/** float32 unit roundoff. */
export const U = 2 ** -24;

/**
 * float64 op(A)·op(B) and Σ|op(A)ᵢₚ·op(B)ₚⱼ| per entry (for the rounding bound). Row-major; with
 * ta, `a` holds A as k×m (op(A) = Aᵀ), with tb `b` holds B as n×k.
 */
export function referenceGemm(
  ta: boolean, tb: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array,
): { c: Float64Array; abs: Float64Array } {
  const c = new Float64Array(m * n);
  const abs = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0, t = 0;
      for (let p = 0; p < k; p++) {
        const x = (ta ? a[p * m + i]! : a[i * k + p]!) * (tb ? b[j * k + p]! : b[p * n + j]!);
        s += x;
        t += Math.abs(x);
      }
      c[i * n + j] = s;
      abs[i * n + j] = t;
    }
  }
  return { c, abs };
}

/** γ_{k+2} = (k+2)·u / (1 − (k+2)·u): |C − exact| ≤ γ·Σ|a||b| for any summation order of k terms. */
export function gemmGamma(k: number): number {
  return ((k + 2) * U) / (1 - (k + 2) * U);
}
