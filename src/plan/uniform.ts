/**
 * The uniform strategy: what `mlx_lm.convert -q --q-bits B --q-group-size G [--q-mode M]` does.
 * Every tensor MLX can quantize at that group gets that format; no SWAN rule applies (convert
 * quantizes embeddings and the head too). A `--formats` list that excludes it keeps tensors float.
 */
import type { TensorRecord } from '../arch/types.js';
import type { FloatDType } from '../io/float.js';
import type { QuantFormat, QuantMode } from '../format.js';
import { eligibleFormats, pickFormat } from './eligibility.js';
import { planEntry, type Plan } from './plan.js';

export interface UniformOptions {
  bits: number;
  groupSize: number;
  /** Default affine; an fp mode takes only its own bits and group (resolveQuantizeOptions checks). */
  mode?: QuantMode;
  allowedFormats?: readonly QuantFormat[];
}

export function planUniform(items: { record: TensorRecord; shape: number[] }[], dtype: FloatDType, opts: UniformOptions): Plan {
  const entries = items.map(({ record, shape }) => {
    const p = pickFormat(eligibleFormats(record, shape, { allowedFormats: opts.allowedFormats }), shape, opts.bits, opts.groupSize, opts.mode);
    return planEntry(record, shape, p.format, p.floatReason ?? 'uniform', dtype);
  });
  const mode = opts.mode ?? 'affine';
  return { strategy: 'uniform', dtype, defaultBits: opts.bits, defaultGroupSize: opts.groupSize, ...(mode !== 'affine' ? { defaultMode: mode } : {}), entries };
}
