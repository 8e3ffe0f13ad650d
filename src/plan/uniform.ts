/**
 * The uniform strategy: what `mlx_lm.convert -q --q-bits B --q-group-size G [--q-mode M]` does.
 * Every tensor MLX can quantize at that group gets that format; no SWAN rule applies (convert
 * quantizes embeddings and the head too) — except the model's own `quant_predicate` in mlx-lm
 * (`rule`: e.g. qwen3_moe's router at 8-bit g64), which convert applies to a module its group size
 * lets it quantize. With a recipe (`--quant-predicate mixed_3_6`, …) the bits per layer follow
 * convert's mixed_quant_predicate_builder (mlx_lm/convert.py) exactly; a recipe replaces the
 * model's own rule, as in convert (`quant_predicate or model.quant_predicate`). A `--formats` list
 * that excludes the format keeps tensors float.
 */
import type { MlxQuantRule, TensorRecord } from '../arch/types.js';
import type { FloatDType } from '../io/float.js';
import type { QuantRecipe } from '../options.js';
import type { QuantMode } from '../format.js';
import { eligibleFormats, pickFormat, type EligibilityRules } from './eligibility.js';
import { planEntry, type Plan } from './plan.js';

export interface UniformOptions {
  bits: number;
  groupSize: number;
  /** convert's `--quant-predicate`: low bits for most layers, high bits for some. */
  recipe?: QuantRecipe;
  /** Whether `--q-group-size` was given: convert records `group_size: null` per layer otherwise. */
  groupSizeGiven?: boolean;
  /** Layers of the model (convert's `len(model.layers)`), for the recipe. */
  totalLayers?: number;
  /** Per-tensor pins (`--tensor-type`) and `--formats`. */
  eligibility?: EligibilityRules;
  /** Default affine; an fp mode takes only its own bits and group (resolveQuantizeOptions checks). */
  mode?: QuantMode;
}

/** [low, high] bits of each recipe, as mixed_quant_predicate_builder sets them. */
const RECIPE_BITS: Record<QuantRecipe, [number, number]> = { mixed_2_6: [2, 6], mixed_3_4: [3, 4], mixed_3_6: [3, 6], mixed_4_6: [4, 6] };

/**
 * convert's mixed predicate on an MLX module path: the high bits for v_proj (and v_a/v_b) and
 * down_proj in the first and last eighth of the layers and every third layer between, and for
 * lm_head; the low bits elsewhere. A path without a layer index counts as layer 0, as in convert.
 */
export function recipeBits(recipe: QuantRecipe, modulePath: string, totalLayers: number): number {
  const [low, high] = RECIPE_BITS[recipe];
  const parts = modulePath.split('.');
  // convert finds the index at the position of the first numeric part of a down_proj path (model.layers.N).
  const index = parts.length > 2 ? Number.parseInt(parts[2]!, 10) : 0;
  const eighth = Math.floor(totalLayers / 8);
  const moreBits = index < eighth || index >= Math.floor((7 * totalLayers) / 8) || pyMod(index - eighth, 3) === 2;
  if (/v_proj|v_a_proj|v_b_proj/.test(modulePath) && moreBits) return high;
  if (modulePath.includes('down_proj') && moreBits) return high;
  if (modulePath.includes('lm_head')) return high;
  return low;
}

/** Python's % (the sign of the divisor). */
function pyMod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

export function planUniform(items: { record: TensorRecord; shape: number[]; rule?: MlxQuantRule }[], dtype: FloatDType, opts: UniformOptions): Plan {
  const { recipe } = opts;
  if (recipe && !items.some((i) => i.record.modulePath?.includes('down_proj'))) {
    throw new Error(`--quant-predicate ${recipe}: the model has no down_proj layers (mlx_lm.convert refuses it too)`);
  }
  const entries = items.map(({ record, shape, rule }) => {
    const eligible = eligibleFormats(record, shape, opts.eligibility ?? {});
    const bits = recipe && record.modulePath ? recipeBits(recipe, record.modulePath, opts.totalLayers ?? 0) : opts.bits;
    const p = pickFormat(eligible, shape, bits, opts.groupSize, opts.mode);
    if (!recipe && rule && !eligible.pinned && p.format.kind === 'affine') {
      const forced = pickFormat(eligible, shape, rule.bits, rule.groupSize);
      if (forced.format.kind === 'affine') return { ...planEntry(record, shape, forced.format, 'mlx_lm_rule', dtype), mlxRule: true };
    }
    return planEntry(record, shape, p.format, p.floatReason ?? (eligible.pinned ? 'user_pin' : recipe ? recipe : 'uniform'), dtype);
  });
  const mode = opts.mode ?? 'affine';
  return {
    strategy: 'uniform',
    dtype,
    defaultBits: opts.bits,
    defaultGroupSize: opts.groupSize,
    ...(mode !== 'affine' ? { defaultMode: mode } : {}),
    entries,
    ...(recipe ? { recipe: { name: recipe, configGroupSize: opts.groupSizeGiven ? opts.groupSize : null } } : {}),
  };
}
