/**
 * Optional native backend: SGEMM and the small float64 LAPACK/BLAS routines (Cholesky, triangular
 * inverse and product, symmetric eigenvalues, float64 Gram matrices; a float32 Gram by SGEMMs) from the platform BLAS (OpenBLAS on Linux, Accelerate on macOS)
 * (plus vectorised C for the per-weight passes: the error proxy, MLX's RTN, the kurtosis sums, the
 * BF16 conversions) through the small N-API addon native/swan_blas.c, which scripts/build-native.mjs compiles into
 * dist/native/swan_blas.node when a C compiler and the BLAS are there. When it is not built (or
 * SWAN_NO_NATIVE is set) loadNativeAddon() says why and swan uses the WebAssembly backend.
 *
 * Results are the same bytes for any thread count: the addon runs the BLAS single-threaded on
 * chunks of C laid out by the shape alone, threads only share out the chunks (see the C file).
 * They differ from the other backends' by float rounding.
 *
 * OpenBLAS picks its kernels for the CPU when it loads (e.g. SkylakeX/Cooperlake AVX-512 ones on
 * AMD Zen 4 with Debian 12's 0.3.21) unless OPENBLAS_CORETYPE names others; that variable is left
 * as the user set it. The kernel set in use is in info().corename.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import type { Bf16Codec } from '../io/float.js';
import { dtypeKind } from '../mlx/affine.js';
import { packedWordsPerRow } from '../mlx/pack.js';
import type { KernelBackend } from './backend.js';
import { invertUpper } from './linalg.js';

/** What the addon exports. */
export interface NativeAddon {
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, b: Float32Array, c: Float32Array,
  ): void;
  setThreads(n: number): void;
  getThreads(): number;
  info(): NativeInfo;
  rtnErrorSums(data: Float32Array, rows: number, cols: number, bits: number, group: number): [number, number];
  uniformNoise(state: Uint32Array, out: Float32Array, len: number, half: number): void;
  sumMinMax(x: Float32Array): [number, number, number];
  centralMoments(x: Float32Array, mean: number): [number, number];
  /** src/io/float.ts Bf16Codec. */
  decodeBf16(src: Uint8Array, dst: Float32Array, lim: number): number;
  encodeBf16(src: Float32Array, dst: Uint8Array): void;
  quantizeAffine(
    w: Float32Array, rows: number, cols: number, bits: number, group: number, metal: boolean,
    wq: Uint32Array, scales: Float32Array, biases: Float32Array,
  ): void;
  /** [Σ (w − decoded)², Σ w²] of MLX's RTN, kind = dtypeKind of the storage dtype. */
  affineErrorSums(w: Float32Array, rows: number, cols: number, bits: number, group: number, metal: boolean, kind: number): [number, number];
  /** stats: Float64Array(7) ← searchErr, rtnErr, energy, the plain three, improvedGroups. */
  quantizeSearch(
    w: Float32Array, rows: number, cols: number, bits: number, group: number, metal: boolean, kind: number,
    colWeights: Float64Array | null, wq: Uint32Array, scales: Float32Array, biases: Float32Array,
    groupSearch: Float64Array | null, groupRtn: Float64Array | null, stats: Float64Array,
  ): void;
  cholesky(g: Float32Array | Float64Array, n: number, shift: number, r: Float64Array): boolean;
  invertUpper(r: Float64Array, n: number, x: Float64Array): boolean;
  mulUpper(a: Float64Array, b: Float64Array, n: number, c: Float64Array): void;
  symmetricEigenvalues(a: Float64Array, n: number, w: Float64Array): void;
  gram(data: Float32Array, rows: number, cols: number, byRows: boolean, g: Float64Array): void;
  normalPairs(state: Uint32Array, out: Float32Array, offset: number, pairs: number, scale: number, redo: Float64Array): [number, number];
  mulUpperRight(y: Float32Array, rows: number, n: number, u: Float32Array, out: Float32Array): void;
  gram32(data: Float32Array, rows: number, cols: number, byRows: boolean, out: Float32Array): void;
  solveUpperRight(y: Float32Array, rows: number, n: number, u: Float32Array, out: Float32Array): void;
}

export interface NativeInfo {
  /** "openblas" or "accelerate". */
  blas: string;
  /** openblas_get_config(), e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64". */
  config: string;
  /** OpenBLAS's kernel set, e.g. "SkylakeX"; "" for Accelerate. */
  corename: string;
}

export interface NativeBackend extends KernelBackend {
  readonly threads: number;
  readonly info: NativeInfo;
  /** The BF16 conversions src/kernels/select.ts hands to src/io/float.ts (setBf16Codec). */
  readonly bf16: Bf16Codec;
}

/** dist/native/swan_blas.node, from this module's place in dist/src/kernels. */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../native/swan_blas.node', import.meta.url));

let loaded: { addon: NativeAddon } | { reason: string } | undefined;

/** The addon, loaded once; or why it is not there. */
export function loadNativeAddon(): { addon: NativeAddon } | { reason: string } {
  if (loaded) return loaded;
  if (process.env.SWAN_NO_NATIVE) return (loaded = { reason: 'SWAN_NO_NATIVE is set' });
  try {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
    loaded = { addon };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    loaded = {
      reason: err.code === 'MODULE_NOT_FOUND'
        ? `${NATIVE_ADDON_PATH} is not built (it needs a C compiler and OpenBLAS or Accelerate at build time)`
        : `${NATIVE_ADDON_PATH} does not load: ${err.message.split('\n')[0]}`,
    };
  }
  return loaded;
}

/**
 * The native backend with `threads` threads (default: os.availableParallelism()). Throws when the
 * addon is not built or does not load. There is one addon per process: the thread count set last
 * applies to every backend object.
 */
export function createNativeBackend(opts: { threads?: number } = {}): NativeBackend {
  const l = loadNativeAddon();
  if (!('addon' in l)) throw new Error(`native backend unavailable: ${l.reason}`);
  const addon = l.addon;
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  addon.setThreads(threads);
  const info = addon.info();
  return {
    name: `native-${info.blas}`,
    threads,
    info,
    bf16: { decode: (src, dst, lim) => addon.decodeBf16(src, dst, lim), encode: (src, dst) => addon.encodeBf16(src, dst) },
    gemm(transA, transB, m, n, k, a, b, c) {
      addon.gemm(transA, transB, m, n, k, a, b, c);
    },
    rtnErrorSums(data, rows, cols, bits, groupSize) {
      return addon.rtnErrorSums(data, rows, cols, bits, groupSize);
    },
    sumMinMax(x) {
      const [sum, min, max] = addon.sumMinMax(x);
      return { sum, min, max };
    },
    centralMoments(x, mean) {
      return addon.centralMoments(x, mean);
    },
    uniformNoise(state, out, len, half) {
      addon.uniformNoise(state, out, len, half);
    },
    normalPairs(state, out, offset, pairs, scale, redo) {
      return addon.normalPairs(state, out, offset, pairs, scale, redo);
    },
    quantizeAffine(w, rows, cols, bits, groupSize, rules) {
      const groups = (rows * cols) / groupSize;
      const out = { wq: new Uint32Array(packedWordsPerRow(cols, bits) * rows), scales: new Float32Array(groups), biases: new Float32Array(groups) };
      addon.quantizeAffine(w, rows, cols, bits, groupSize, rules === 'metal', out.wq, out.scales, out.biases);
      return out;
    },
    affineErrorSums(w, rows, cols, bits, groupSize, rules, dtype) {
      return addon.affineErrorSums(w, rows, cols, bits, groupSize, rules === 'metal', dtypeKind(dtype));
    },
    quantizeAffineSearch(w, rows, cols, opts) {
      const { bits, groupSize } = opts;
      const groups = (rows * cols) / groupSize;
      const out = { wq: new Uint32Array(packedWordsPerRow(cols, bits) * rows), scales: new Float32Array(groups), biases: new Float32Array(groups) };
      const groupErr = opts.groupErrors ? { search: new Float64Array(groups), rtn: new Float64Array(groups) } : undefined;
      const cw = opts.colWeights ? Float64Array.from(opts.colWeights) : null;
      const s = new Float64Array(7);
      addon.quantizeSearch(w, rows, cols, bits, groupSize, (opts.rules ?? 'metal') === 'metal', dtypeKind(opts.dtype), cw,
        out.wq, out.scales, out.biases, groupErr?.search ?? null, groupErr?.rtn ?? null, s);
      const stats = { searchErr: s[0]!, rtnErr: s[1]!, energy: s[2]!, plain: { searchErr: s[3]!, rtnErr: s[4]!, energy: s[5]! }, improvedGroups: s[6]!, groups };
      return { ...out, stats, groupErr };
    },
    cholesky(g, n, shift) {
      const r = new Float64Array(n * n);
      return addon.cholesky(g, n, shift, r) ? r : null;
    },
    invertUpper(r, n) {
      const x = new Float64Array(n * n);
      // A zero pivot gives ±Inf in the TypeScript; LAPACK stops instead. Keep the TypeScript's answer.
      return addon.invertUpper(r, n, x) ? x : invertUpper(r, n);
    },
    mulUpper(a, b, n) {
      const c = new Float64Array(n * n);
      addon.mulUpper(a, b, n, c);
      return c;
    },
    symmetricEigenvalues(a, n) {
      const w = new Float64Array(n);
      addon.symmetricEigenvalues(a, n, w);
      return w;
    },
    mulUpperRight(y, rows, n, u, out) {
      addon.mulUpperRight(y, rows, n, u, out);
    },
    solveUpperRight(y, rows, n, u, out) {
      addon.solveUpperRight(y, rows, n, u, out);
    },
    gramF32(data, rows, cols, which, out) {
      addon.gram32(data, rows, cols, which === 'rows', out);
    },
    gramF64(data, rows, cols, which) {
      const s = which === 'rows' ? rows : cols;
      const g = new Float64Array(s * s);
      addon.gram(data, rows, cols, which === 'rows', g);
      return g;
    },
  };
}
