/**
 * The uniform strategy: what `mlx_lm.convert -q --q-bits B --q-group-size G` does. Every tensor
 * MLX can quantize at that group gets B bits; no SWAN rule applies (convert quantizes embeddings
 * and the head too) — except the model's own `quant_predicate` in mlx-lm (`rule`: e.g. qwen3_moe's
 * router at 8-bit g64), which convert applies to a module its group size lets it quantize.
 */
import type { MlxQuantRule, TensorRecord } from '../arch/types.js';
import type { FloatDType } from '../io/float.js';
import { eligibleFormats, pickFormat } from './eligibility.js';
import { planEntry, type Plan } from './plan.js';

export interface UniformOptions {
  bits: number;
  groupSize: number;
}

export function planUniform(items: { record: TensorRecord; shape: number[]; rule?: MlxQuantRule }[], dtype: FloatDType, opts: UniformOptions): Plan {
  const entries = items.map(({ record, shape, rule }) => {
    const eligible = eligibleFormats(record, shape, {});
    const p = pickFormat(eligible, shape, opts.bits, opts.groupSize);
    if (rule && p.format.kind === 'affine') {
      const forced = pickFormat(eligible, shape, rule.bits, rule.groupSize);
      if (forced.format.kind === 'affine') return { ...planEntry(record, shape, forced.format, 'mlx_lm_rule', dtype), mlxRule: true };
    }
    return planEntry(record, shape, p.format, p.floatReason ?? 'uniform', dtype);
  });
  return { strategy: 'uniform', dtype, defaultBits: opts.bits, defaultGroupSize: opts.groupSize, entries };
}
