import type { TensorRecord } from '../arch/types.js';
import { readTensorF32 } from '../io/safetensors.js';
import type { InputWeighting } from '../options.js';
import type { ModelSource } from '../arch/source.js';
import type { Imatrix } from './imatrix.js';

/**
 * An imatrix column's weight is capped at this multiple of its tensor's mean E[x²]. Massive
 * activations put up to 88% of a tensor's E[x²] on one channel (SmolLM2); a cap of 100× the mean
 * lowered own-sample KL at u4g64 bytes (0.145 → 0.144, paired z ≈ 5), while 30× or less, square
 * roots and floors raised it: docs/allocation.md §8 ("Self-calibrated") has every attempt.
 */
export const IMATRIX_CLIP = 100;

/**
 * Per-column weights of each tensor under `weighting` (undefined: unweighted). Norm vectors are read
 * once. An importance matrix (`--imatrix`, imatrix.ts), capped at IMATRIX_CLIP times its mean,
 * takes the place of the weighting for every tensor it covers.
 */
export function inputWeightsFor(source: ModelSource, weighting: InputWeighting, imatrix?: Imatrix): (record: TensorRecord, cols: number) => Float64Array | undefined {
  const prior = normPrior(source, weighting);
  if (!imatrix) return prior;
  const capped = new Map<string, Float64Array>();
  return (record, cols) => {
    const m = imatrix.byTensor.get(record.hfName);
    if (!m || m.length !== cols || !m.some((x) => x > 0)) return prior(record, cols);
    if (!capped.has(record.hfName)) capped.set(record.hfName, capAtMeanMultiple(m, IMATRIX_CLIP));
    return capped.get(record.hfName);
  };
}

/** min(c_j, k · mean_j c), a new array. */
function capAtMeanMultiple(c: Float64Array, k: number): Float64Array {
  let sum = 0;
  for (const x of c) sum += x;
  const cap = (k * sum) / c.length;
  return Float64Array.from(c, (x) => Math.min(x, cap));
}

function normPrior(source: ModelSource, weighting: InputWeighting): (record: TensorRecord, cols: number) => Float64Array | undefined {
  if (weighting === 'none') return () => undefined;
  const infos = new Map(source.entries.map((e) => [e.info.name, e.info]));
  const cache = new Map<string, Float64Array | undefined>();
  return (record, cols) => {
    const name = source.arch.inputNorm(record, source.tied);
    const info = name === null ? undefined : infos.get(name);
    if (!info || info.shape.length !== 1 || info.shape[0] !== cols) return undefined;
    if (!cache.has(info.name)) cache.set(info.name, squaredGains(readTensorF32(info)));
    return cache.get(info.name);
  };
}

/** g², or undefined when every gain is zero (nothing to weigh by). */
function squaredGains(g: Float32Array): Float64Array | undefined {
  const w = new Float64Array(g.length);
  let any = false;
  for (let j = 0; j < g.length; j++) {
    w[j] = g[j]! * g[j]!;
    if (w[j]! > 0) any = true;
  }
  return any ? w : undefined;
}
