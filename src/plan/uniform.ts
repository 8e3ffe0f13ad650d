/**
 * The uniform strategy: what `mlx_lm.convert -q --q-bits B --q-group-size G` does. Every tensor
 * MLX can quantize at that group gets B bits; no SWAN rule applies (convert quantizes embeddings
 * and the head too).
 */
import type { TensorRecord } from '../arch/types.js';
import type { FloatDType } from '../io/float.js';
import { eligibleFormats, pickFormat } from './eligibility.js';
import { planEntry, type Plan } from './plan.js';

export interface UniformOptions {
  bits: number;
  groupSize: number;
}

export function planUniform(items: { record: TensorRecord; shape: number[] }[], dtype: FloatDType, opts: UniformOptions): Plan {
  const entries = items.map(({ record, shape }) => {
    const p = pickFormat(eligibleFormats(record, shape, {}), shape, opts.bits, opts.groupSize);
    return planEntry(record, shape, p.format, p.floatReason ?? 'uniform', dtype);
  });
  return { strategy: 'uniform', dtype, defaultBits: opts.bits, defaultGroupSize: opts.groupSize, entries };
}
