/**
 * The four SWAN metrics of one weight matrix (reference §1.2–1.3). Pure functions of the matrix and
 * a seed; the heavy algebra goes through the active kernel backend (getBackend()).
 */
import { getBackend } from '../kernels/index.js';
import { Scratch, sumMinMax } from '../kernels/linalg.js';
import { Rng } from '../rng.js';
import { errorProxyMetric } from './error-proxy.js';
import { kurtosisMetric } from './kurtosis.js';
import { outputSensitivityMetric, type OutputSensitivityResult } from './output-sensitivity.js';
import { svdMetric, type SvdResult } from './svd.js';

export { energyConcentration, randomizedSingularValues, svdMetric, svdScore, SVD_NITER, SVD_RANK } from './svd.js';
export type { SvdResult } from './svd.js';
export { kurtosisMetric } from './kurtosis.js';
export type { KurtosisResult } from './kurtosis.js';
export { outputDelta, outputSensitivityMetric, outputSensitivityScore } from './output-sensitivity.js';
export type { OutputSensitivityResult } from './output-sensitivity.js';
export { errorProxyMetric, rtnNrmse } from './error-proxy.js';
export { roundHalfEven } from '../round.js';
export type { ErrorProxyResult } from './error-proxy.js';

export interface MetricScores {
  svd: number;
  kurtosis: number;
  output_sensitivity: number;
  error_proxy: number;
}

export interface RawMetrics {
  svd_concentration: number;
  kurtosis: number;
  output_delta: number;
  error_nrmse: number;
}

export interface Matrix2D {
  rows: number;
  cols: number;
  /** Row-major float32. */
  data: Float32Array;
}

export interface MetricSeconds {
  svd: number;
  kurtosis: number;
  output_sensitivity: number;
  error_proxy: number;
}

/** Indices of the expert slices sampled from E > 4 experts: trunc(linspace(0, E−1, 4)). */
export function expertSampleIndices(e: number): number[] {
  // torch.linspace in float32 gives i·(E−1)/3 up to rounding that cannot cross an integer (the
  // fraction is 0, 1/3 or 2/3), so integer arithmetic reproduces .long() exactly.
  return [0, 1, 2, 3].map((i) => Math.floor((i * (e - 1)) / 3));
}

/**
 * The reference's 2-D view of a tensor: 2-D as is; 3-D [E, r, c] → (E·r, c) when E ≤ 4, else the
 * four slices at expertSampleIndices(E) stacked → (4r, c); ≥ 4-D → (shape[0], rest); ≤ 1-D → (1, n).
 * Returns the input array itself when no copy is needed.
 */
export function reduceTo2D(shape: number[], data: Float32Array): Matrix2D {
  if (shape.length <= 1) return { rows: 1, cols: shape[0] ?? data.length, data };
  if (shape.length === 2) return { rows: shape[0]!, cols: shape[1]!, data };
  if (shape.length === 3) {
    const [e, r, c] = shape as [number, number, number];
    if (e <= 4) return { rows: e * r, cols: c, data };
    const slice = r * c;
    const out = new Float32Array(4 * slice);
    expertSampleIndices(e).forEach((idx, k) => out.set(data.subarray(idx * slice, (idx + 1) * slice), k * slice));
    return { rows: 4 * r, cols: c, data: out };
  }
  const rows = shape[0]!;
  return { rows, cols: rows === 0 ? 0 : data.length / rows, data };
}

/**
 * The four SWAN metrics of one matrix. The cheap, deterministic ones (kurtosis, error proxy) come
 * first; `needSpectral` may then say that the randomized SVD and the output-noise probe cannot change
 * the outcome (the caller knows the thresholds), in which case they are skipped and reported as NaN
 * (null in JSON). Each random metric draws from its own stream keyed by the tensor name, so skipping
 * one changes nothing else.
 */
export function computeMetrics(
  m: Matrix2D,
  seed: number,
  key: string,
  needSpectral?: (cheap: { kurtosis: number; error_proxy: number }) => boolean,
): { scores: MetricScores; raw: RawMetrics; seconds: MetricSeconds; skipped: boolean } {
  const backend = getBackend();
  const { rows, cols, data } = m;
  let t0 = performance.now();
  // One pass gives the kurtosis its sum, the SVD its finiteness check and the noise its range.
  const stats = backend.sumMinMax ? backend.sumMinMax(data) : sumMinMax(data);
  const kurt = kurtosisMetric(data, stats.sum, backend.centralMoments && ((mean) => backend.centralMoments!(data, mean)));
  let t1 = performance.now();
  const kurtSec = (t1 - t0) / 1000;

  t0 = t1;
  const err = errorProxyMetric(rows, cols, data, 4, 128, backend);
  t1 = performance.now();
  const errSec = (t1 - t0) / 1000;

  let svd: SvdResult = { score: NaN, concentration: NaN, values: new Float64Array(0), method: 'failed' };
  let out: OutputSensitivityResult = { score: NaN, delta: NaN };
  let svdSec = 0, outSec = 0;
  const skipped = needSpectral !== undefined && !needSpectral({ kurtosis: kurt.score, error_proxy: err.score });
  if (!skipped) {
    // One copy of W into the backend's memory (when it has its own) serves all of the GEMMs below,
    // instead of the backend staging W on each of them.
    const sc = new Scratch(backend);
    try {
      t0 = performance.now();
      const w = sc.place(data);
      svd = svdMetric(backend, rows, cols, w, Rng.forKey(seed, key + '/svd'), undefined, Number.isFinite(stats.sum));
      t1 = performance.now();
      svdSec = (t1 - t0) / 1000;

      t0 = t1;
      out = outputSensitivityMetric(backend, rows, cols, w, Rng.forKey(seed, key + '/output_sensitivity'), undefined, stats);
      t1 = performance.now();
      outSec = (t1 - t0) / 1000;
    } finally {
      sc.releaseAll();
    }
  }

  return {
    scores: { svd: svd.score, kurtosis: kurt.score, output_sensitivity: out.score, error_proxy: err.score },
    raw: {
      svd_concentration: svd.concentration,
      kurtosis: kurt.kurtosis,
      output_delta: out.delta,
      error_nrmse: err.nrmse,
    },
    seconds: { svd: svdSec, kurtosis: kurtSec, output_sensitivity: outSec, error_proxy: errSec },
    skipped,
  };
}
