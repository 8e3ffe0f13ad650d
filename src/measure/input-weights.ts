import type { TensorRecord } from '../arch/types.js';
import { readTensorF32 } from '../io/safetensors.js';
import type { InputWeighting } from '../options.js';
import type { ModelSource } from '../arch/source.js';
import type { Imatrix } from './imatrix.js';

/**
 * Per-column weights of each tensor under `weighting` (undefined: unweighted). Norm vectors are read
 * once. An importance matrix (`--imatrix`, imatrix.ts) takes the place of the weighting for every
 * tensor it covers.
 */
export function inputWeightsFor(source: ModelSource, weighting: InputWeighting, imatrix?: Imatrix): (record: TensorRecord, cols: number) => Float64Array | undefined {
  const prior = normPrior(source, weighting);
  if (!imatrix) return prior;
  return (record, cols) => {
    const m = imatrix.byTensor.get(record.hfName);
    return m && m.length === cols && m.some((x) => x > 0) ? m : prior(record, cols);
  };
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
