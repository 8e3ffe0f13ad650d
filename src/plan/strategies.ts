import type { TensorRecord } from '../arch/types.js';
import { affine, FLOAT, groupDivides, type TensorFormat } from './format.js';
import type { Decision } from './swan-rules.js';

/** What a strategy knows about one tensor. */
export interface PlanItem {
  record: TensorRecord;
  shape: number[];
  decision: Decision;
}

export interface PlanChoice {
  format: TensorFormat;
  /** Why the written format differs from the decision, when it does. */
  note?: string;
}

export interface ThresholdOptions {
  /** Group size of the default (4-bit) tier: `--q-group-size`. */
  groupSize: number;
}

/**
 * SWAN as published: the decision's bits pick the format; 8-bit uses g64 and 2-bit g32 (the
 * reference bridge), 4-bit the user's group size. A tensor MLX cannot quantize (not a Linear or
 * Embedding, or its last dim not divisible by the group) stays float.
 */
export function thresholdsChoice(item: PlanItem, opts: ThresholdOptions): PlanChoice {
  const { record, shape, decision } = item;
  if (decision.bits === 16 || !record.quantizable) return { format: FLOAT };
  const groupSize = decision.bits === 8 ? 64 : decision.bits === 2 ? 32 : opts.groupSize;
  if (!groupDivides(shape, groupSize)) {
    return { format: FLOAT, note: `last dim ${shape[shape.length - 1]} not divisible by group ${groupSize}` };
  }
  return { format: affine(decision.bits, groupSize) };
}

export interface UniformOptions {
  bits: number;
  groupSize: number;
}

/** mlx_lm.convert -q: every Linear/Embedding whose last dim the group divides, same bits. */
export function uniformChoice(item: PlanItem, opts: UniformOptions): PlanChoice {
  if (!item.record.quantizable) return { format: FLOAT };
  if (!groupDivides(item.shape, opts.groupSize)) {
    return { format: FLOAT, note: `last dim ${item.shape[item.shape.length - 1]} not divisible by group ${opts.groupSize}` };
  }
  return { format: affine(opts.bits, opts.groupSize) };
}
