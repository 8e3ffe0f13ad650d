/**
 * Plain-JavaScript kernel backend: a GotoBLAS-style SGEMM.
 *
 * - op(A) and op(B) are packed block by block into float64 panels (MR rows / NR columns interleaved),
 *   so every transpose combination runs the same inner loop over contiguous memory.
 * - The 4×4 micro-kernel keeps its 16 accumulators in locals. JS arithmetic is float64 anyway, so packing
 *   to float64 saves a float32→float64 conversion per load in the hot loop (measured: slightly faster
 *   than float32 packs), and the products are summed in float64 within each KC block. C is rounded to
 *   float32 once per KC block, so |error| ≤ ~(k/KC + 1)·2⁻²⁴·Σ|a||b|.
 * - Blocking: KC×NC of B (≈1 MiB of float64) stays in L2, an MC×KC panel of A (128 KiB) in L1/L2.
 *
 * Measured ≈5.5–6 GFLOP/s on one core of the build machine (Node 20); the WebAssembly and native
 * backends are the fast paths (`npm run bench:gemm` compares them).
 */
import type { KernelBackend } from './backend.js';

const MR = 4;
const NR = 4;
const KC = 256;
const MC = 64;
const NC = 512;
/** Below this many multiply-adds the packing overhead dominates: use a simple loop. */
const SMALL = 4096;

export class JsBackend implements KernelBackend {
  readonly name = 'js';
  // Packing buffers are reused across calls (a backend instance is used by one thread).
  private readonly ap = new Float64Array(MC * KC);
  private readonly bp = new Float64Array(KC * NC);
  private readonly tile = new Float64Array(MR * NR);

  readonly gemm: KernelBackend['gemm'] = (transA, transB, m, n, k, a, b, c) => {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
      c.fill(0, 0, m * n);
      return;
    }
    if (a.length < m * k || b.length < k * n || c.length < m * n) {
      throw new RangeError(`gemm: buffers too small for ${m}×${k}·${k}×${n}`);
    }
    if (m * n * k <= SMALL) {
      gemmSmall(transA, transB, m, n, k, a, b, c);
      return;
    }
    const ap = this.ap;
    const bp = this.bp;
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      for (let pc = 0; pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        packPanels(NR, !transB, b, n, k, jc, nc, pc, kc, bp);
        const first = pc === 0;
        for (let ic = 0; ic < m; ic += MC) {
          const mc = Math.min(MC, m - ic);
          packPanels(MR, transA, a, m, k, ic, mc, pc, kc, ap);
          for (let jr = 0; jr < nc; jr += NR) {
            const nr = Math.min(NR, nc - jr);
            for (let ir = 0; ir < mc; ir += MR) {
              const mr = Math.min(MR, mc - ir);
              const cOff = (ic + ir) * n + jc + jr;
              if (mr === MR && nr === NR) kernel4x4(kc, ap, ir * kc, bp, jr * kc, c, cOff, n, first);
              else kernelEdge(kc, ap, ir * kc, bp, jr * kc, c, cOff, n, first, mr, nr, this.tile);
            }
          }
        }
      }
    }
  };
}

/**
 * Pack rows r0..r0+rc, columns p0..p0+kc of a rows×cols matrix M into R-row panels:
 * out[panel·kc·R + p·R + i], rows past rc zero. `x` holds M row-major, or Mᵀ with `transposed`.
 * op(A) packs as M = op(A) in MR-row panels; op(B) as M = op(B)ᵀ in NR-row panels (its columns).
 */
function packPanels(
  R: number,
  transposed: boolean,
  x: Float32Array,
  rows: number,
  cols: number,
  r0: number,
  rc: number,
  p0: number,
  kc: number,
  out: Float64Array,
): void {
  for (let ir = 0; ir < rc; ir += R) {
    const base = ir * kc;
    const r = Math.min(R, rc - ir);
    if (transposed) {
      // x is cols×rows: the R values of one p are contiguous.
      for (let p = 0; p < kc; p++) {
        const src = (p0 + p) * rows + r0 + ir;
        const dst = base + p * R;
        for (let i = 0; i < r; i++) out[dst + i] = x[src + i];
        for (let i = r; i < R; i++) out[dst + i] = 0;
      }
    } else {
      // x is rows×cols: walk each row contiguously.
      for (let i = 0; i < R; i++) {
        if (i < r) {
          const src = (r0 + ir + i) * cols + p0;
          for (let p = 0; p < kc; p++) out[base + p * R + i] = x[src + p];
        } else {
          for (let p = 0; p < kc; p++) out[base + p * R + i] = 0;
        }
      }
    }
  }
}

function kernel4x4(
  kc: number,
  ap: Float64Array,
  ia: number,
  bp: Float64Array,
  ib: number,
  c: Float32Array,
  o: number,
  ldc: number,
  first: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < kc; p++) {
    const a0 = ap[ia], a1 = ap[ia + 1], a2 = ap[ia + 2], a3 = ap[ia + 3];
    const b0 = bp[ib], b1 = bp[ib + 1], b2 = bp[ib + 2], b3 = bp[ib + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    ia += 4;
    ib += 4;
  }
  if (first) {
    c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03; o += ldc;
    c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13; o += ldc;
    c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23; o += ldc;
    c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
  } else {
    c[o] += c00; c[o + 1] += c01; c[o + 2] += c02; c[o + 3] += c03; o += ldc;
    c[o] += c10; c[o + 1] += c11; c[o + 2] += c12; c[o + 3] += c13; o += ldc;
    c[o] += c20; c[o + 1] += c21; c[o + 2] += c22; c[o + 3] += c23; o += ldc;
    c[o] += c30; c[o + 1] += c31; c[o + 2] += c32; c[o + 3] += c33;
  }
}

/** A partial tile at the right/bottom edge: same sums into a scratch tile, then a bounded write. */
function kernelEdge(
  kc: number,
  ap: Float64Array,
  ia: number,
  bp: Float64Array,
  ib: number,
  c: Float32Array,
  o: number,
  ldc: number,
  first: boolean,
  mr: number,
  nr: number,
  t: Float64Array,
): void {
  t.fill(0);
  for (let p = 0; p < kc; p++) {
    for (let i = 0; i < MR; i++) {
      const av = ap[ia + i];
      for (let j = 0; j < NR; j++) t[i * NR + j] += av * bp[ib + j];
    }
    ia += MR;
    ib += NR;
  }
  for (let i = 0; i < mr; i++) {
    const row = o + i * ldc;
    for (let j = 0; j < nr; j++) c[row + j] = first ? t[i * NR + j] : c[row + j] + t[i * NR + j];
  }
}

const gemmSmall: KernelBackend['gemm'] = (transA, transB, m, n, k, a, b, c) => {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      }
      c[i * n + j] = s;
    }
  }
};

export const jsBackend: KernelBackend = new JsBackend();
