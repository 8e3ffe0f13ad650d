/**
 * SWAN's output-sensitivity metric: relative change of W·X under uniform weight noise.
 *
 *   p = min(32, n) probes X ~ N(0,1)^{n×p}, each column divided by (its norm + 1e-8);
 *   r = max(W) − min(W); E ~ U(−r/32, r/32) elementwise (m×n);
 *   δ = ‖(W+E)·X − W·X‖_F / (‖W·X‖_F + 1e-8).
 *
 * We compute the numerator as ‖E·X‖_F: mathematically identical, and it avoids the cancellation of
 * forming W+E in float32 (the reference's float32 W+E loses ~2⁻²⁴·|W| of each noise entry, far
 * below the noise itself). E is drawn and multiplied row block by row block, so there is never a
 * second m×n array; the draw order is row-major whatever the block size, so the result does not
 * depend on it.
 *
 * Draws: X first (row-major n×p normals), then E (row-major, one 24-bit uniform per entry, like
 * torch.rand's float32 uniforms), both from the Rng the caller passes.
 *
 * Closed form (used by the tests): for unit-norm probes, E‖E·x‖² = m·σ_E² with σ_E² = (r/16)²/12, and
 * E‖W·x‖² = ‖W‖_F²/n, so δ ≈ σ_E/RMS(W) = r/(16·√12·RMS(W)): a crest-factor measure, scale-free.
 */
import type { KernelBackend } from '../kernels/backend.js';
import { clip01, minMax, Scratch, sumSquares } from '../kernels/linalg.js';
import type { Rng } from '../rng.js';

export interface OutputSensitivityResult {
  delta: number;
  score: number;
}

export function outputSensitivityScore(delta: number): number {
  if (!(delta >= 1e-6)) return 0;
  return clip01((Math.log10(Math.max(delta, 0.01)) + 2) / 3);
}

/** outputDelta and its score. */
export function outputSensitivityMetric(...args: Parameters<typeof outputDelta>): OutputSensitivityResult {
  const delta = outputDelta(...args);
  return { delta, score: outputSensitivityScore(delta) };
}

export function outputDelta(
  backend: KernelBackend,
  rows: number,
  cols: number,
  data: Float32Array,
  rng: Rng,
  maxProbes = 32,
  /** min and max of data, when the caller already has them. */
  range?: { min: number; max: number },
): number {
  const m = rows, n = cols;
  const p = Math.min(maxProbes, n);
  const fr = Math.fround;
  const sc = new Scratch(backend); // GEMM operands in backend memory where it has its own
  try {
    // Probes, columns normalised in float32 as torch does (norm in float64 then rounded).
    const x = rng.fillNormal(sc.f32(n * p), 1, backend.normalPairs?.bind(backend)); // = normal() per entry
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[i * p + j]! * x[i * p + j]!;
      const denom = fr(fr(Math.sqrt(s)) + 1e-8);
      for (let i = 0; i < n; i++) x[i * p + j] = fr(x[i * p + j]! / denom);
    }

    const { min, max } = range ?? minMax(data);
    const half = fr(fr(max - min) / 32);

    const wx = sc.f32(m * p);
    backend.gemm(false, false, m, p, n, data, x, wx);
    const wxNorm = Math.sqrt(sumSquares(wx, 0, m * p));
    sc.free(wx);

    // ≤ 4 MiB of noise at a time.
    const blockRows = Math.max(1, Math.min(m, Math.floor((1 << 20) / n)));
    const e = sc.f32(blockRows * n);
    const ex = sc.f32(blockRows * p);
    const bits = backend.uniformNoise ? undefined : new Uint32Array(blockRows * n);
    const state = backend.uniformNoise ? rng.getState() : undefined;
    let exSq = 0;
    for (let r0 = 0; r0 < m; r0 += blockRows) {
      const br = Math.min(blockRows, m - r0);
      const len = br * n;
      if (state) backend.uniformNoise!(state, e, len, half); // the same values, natively
      else {
        rng.fillU32(bits!, 0, len); // the same draws as nextU32() per entry, in bulk
        for (let i = 0; i < len; i++) {
          const u = (bits![i]! >>> 8) * (1 / 16777216); // [0, 1), exact in float32
          e[i] = (2 * u - 1) * half;
        }
      }
      backend.gemm(false, false, br, p, n, e, x, ex);
      exSq += sumSquares(ex, 0, br * p);
    }
    if (state) rng.setState(state);
    return Math.sqrt(exSq) / (wxNorm + 1e-8);
  } finally {
    sc.releaseAll();
  }
}
