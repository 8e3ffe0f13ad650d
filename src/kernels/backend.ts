import type { FloatDType } from '../io/float.js';
import type { AffineQuantized, QuantRules } from '../mlx/affine.js';
import type { SearchOutput, SearchQuantizeOptions } from '../mlx/rounding-search.js';

/**
 * The one small interface between the metrics and the heavy linear algebra. Backends (plain JS,
 * WebAssembly SIMD, native) implement it; the metrics never know which one runs.
 *
 * All matrices are dense, row-major float32.
 */
export interface KernelBackend {
  readonly name: string;
  /**
   * C[m×n] = op(A)·op(B), where op(A) is m×k and op(B) is k×n.
   * With transA, `a` holds A as k×m (row-major) and op(A) = Aᵀ; likewise transB: `b` is n×k.
   * `c` is overwritten.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
  ): void;
  /**
   * Optional: a float32 array of `length` elements living in the backend's own memory, so that
   * gemm on it needs no copy. Callers must release() it when done. Backends without their own
   * memory return a plain Float32Array.
   */
  alloc?(length: number): Float32Array;
  release?(array: Float32Array): void;
  /**
   * Optional: [Σerr², Σw²] of the error proxy's min-max RTN (src/metrics/error-proxy.ts rtnNrmse),
   * the same doubles as the TypeScript computes, only faster. Backends without it leave it out.
   */
  rtnErrorSums?(data: Float32Array, rows: number, cols: number, bits: number, groupSize: number): [number, number];
  /**
   * Optional: src/kernels/linalg.ts sumMinMax (Σx in index order, Math.min/Math.max semantics) and
   * the kurtosis metric's second pass [Σd², Σd⁴], d = x − mean (src/metrics/kurtosis.ts): the same
   * doubles, only faster.
   */
  sumMinMax?(x: Float32Array): { sum: number; min: number; max: number };
  centralMoments?(x: Float32Array, mean: number): [number, number];
  /**
   * Optional: out[0..len) = (2u − 1)·half for the next len draws of the xoshiro128** stream whose
   * state is `state` (src/rng.ts; advanced in place), u = (draw >>> 8)·2⁻²⁴ — the same float32 values
   * src/metrics/output-sensitivity.ts computes, only faster.
   */
  uniformNoise?(state: Uint32Array, out: Float32Array, len: number, half: number): void;
  /**
   * Optional: Gaussian pairs of src/rng.ts fillNormal, continuing the xoshiro128** stream `state`
   * (advanced in place); the contract is rng.ts NormalPairsKernel (pass it as Rng.fillNormal's
   * kernel). Pairs it cannot compute to the same float32 values it hands back in redo.
   */
  normalPairs?(state: Uint32Array, out: Float32Array, offset: number, pairs: number, scale: number, redo: Float64Array): [number, number];
  /**
   * Optional: MLX affine quantization, the same bits as src/mlx/affine.ts quantizeAffine (which
   * checks the arguments; call it through quantizeAffineOn), only faster.
   */
  quantizeAffine?(w: Float32Array, rows: number, cols: number, bits: number, groupSize: number, rules: QuantRules): AffineQuantized;
  /**
   * Optional: the two sums of src/mlx/affine.ts affineRelativeError (Σ (w − decoded)², Σ w²), the same
   * doubles as the TypeScript adds them (call it through affineRelativeErrorOn, which checks the
   * arguments), only faster.
   */
  affineErrorSums?(w: Float32Array, rows: number, cols: number, bits: number, groupSize: number, rules: QuantRules, dtype: FloatDType): [number, number];
  /**
   * Optional: `--rounding search`, the same codes, scales, biases, SearchStats sums and group errors
   * as src/mlx/rounding-search.ts computes in TypeScript (which checks the arguments; pass the
   * backend to quantizeAffineSearch or searchRelativeError there), only faster; the same for any
   * thread count.
   */
  quantizeAffineSearch?(w: Float32Array, rows: number, cols: number, opts: SearchQuantizeOptions): SearchOutput;
  /**
   * Optional: the small float64 linear algebra of src/kernels/linalg.ts (call it through the
   * *On(backend, …) functions there, which fall back to the TypeScript), with the same contracts:
   * cholesky → upper R with RᵀR = G + shift·I from G's upper triangle, or null when not positive
   * definite; invertUpper → R⁻¹; mulUpper → A·B of upper-triangular matrices; symmetricEigenvalues →
   * ascending, throwing an Error when the iteration does not converge; gramF64 → the float64 Gram
   * of a rows×cols float32 matrix. n×n, row-major. Results may
   * differ from the TypeScript's in the last bits (another summation order), never with the thread count.
   */
  cholesky?(g: Float32Array | Float64Array, n: number, shift: number): Float64Array | null;
  invertUpper?(r: Float64Array, n: number): Float64Array;
  mulUpper?(a: Float64Array, b: Float64Array, n: number): Float64Array;
  symmetricEigenvalues?(a: Float64Array, n: number): Float64Array;
  gramF64?(data: Float32Array, rows: number, cols: number, which: 'rows' | 'cols'): Float64Array;
  /**
   * Optional: out = Y·U in float32 for a rows×n Y and an upper-triangular n×n U (its lower triangle
   * is ignored), what gemm(false, false, rows, n, n, y, u, out) gives for a U with zeros below the
   * diagonal, in half the flops; the same bytes for any thread count. out must not be y.
   */
  mulUpperRight?(y: Float32Array, rows: number, n: number, u: Float32Array, out: Float32Array): void;
  /**
   * Optional: out = Y·U⁻¹ in float32 (U as for mulUpperRight, with a non-zero diagonal) by a
   * triangular solve, the same flops as mulUpperRight and no inverse; the same bytes for any thread
   * count. Call it through linalg.ts solveUpperRightOn, which falls back on invertUpper + mulUpperRight.
   */
  solveUpperRight?(y: Float32Array, rows: number, n: number, u: Float32Array, out: Float32Array): void;
  /**
   * Optional: out = the float32 Gram of a row-major rows×cols matrix, A·Aᵀ (which 'rows', s = rows)
   * or Aᵀ·A ('cols', s = cols), full and symmetric s×s, in about half a GEMM's flops; the same bytes
   * for any thread count. Call it through linalg.ts gramF32On, which falls back on gramF64.
   */
  gramF32?(data: Float32Array, rows: number, cols: number, which: 'rows' | 'cols', out: Float32Array): void;
}
