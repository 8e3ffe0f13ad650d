/**
 * Kurtosis metric (reference §1.3): excess kurtosis of all entries with population moments,
 * κ = mean(((w−μ)/σ)⁴) − 3, computed in float64 in two passes (mean, then centred moments).
 */
import { clip01 } from '../kernels/linalg.js';

export interface KurtosisResult {
  /** Excess kurtosis; 0 when it is undefined (n < 4 or variance < 1e-12). */
  kurtosis: number;
  score: number;
}

/**
 * `sum`: Σdata in index order when the caller already has it (linalg.sumMinMax), saving a pass.
 * `moments`: the second pass [Σd², Σd⁴] done elsewhere (a backend's centralMoments: the same doubles).
 */
export function kurtosisMetric(data: ArrayLike<number>, sum?: number, moments?: (mean: number) => [number, number]): KurtosisResult {
  const n = data.length;
  if (n < 4) return { kurtosis: 0, score: 0 };
  if (sum === undefined) {
    sum = 0;
    for (let i = 0; i < n; i++) sum += data[i]!;
  }
  const mean = sum / n;
  let m2 = 0, m4 = 0;
  if (moments) [m2, m4] = moments(mean);
  else {
    for (let i = 0; i < n; i++) {
      const d = data[i]! - mean;
      const d2 = d * d;
      m2 += d2;
      m4 += d2 * d2;
    }
  }
  const variance = m2 / n;
  if (!(variance >= 1e-12)) return { kurtosis: 0, score: 0 };
  const kurtosis = m4 / n / (variance * variance) - 3;
  return { kurtosis, score: clip01(kurtosis / 10) };
}
