/**
 * The thresholds strategy: SWAN as published. Each tensor's SWAN decision (swan-rules.ts) picks
 * its bits; 8-bit uses g64 and 2-bit g32 (the reference's bridge to MLX), 4-bit the user's group
 * size. A tensor eligibility keeps float, or whose decided format it does not allow, stays float.
 */
import type { TensorRecord } from '../arch/types.js';
import { FLOAT, type QuantFormat } from '../format.js';
import type { FloatDType } from '../io/float.js';
import { eligibleFormats, pickFormat, type TensorPin } from './eligibility.js';
import { planEntry, type Plan } from './plan.js';
import type { Decision, SwanConfig } from './swan-rules.js';

export interface ThresholdsItem {
  record: TensorRecord;
  shape: number[];
  /** SWAN's decision (swanDecision of the analysis, or read from a manifest). */
  decision: Decision;
}

export interface ThresholdsOptions {
  /** Group size of the default (4-bit) tier: `--q-group-size`. */
  groupSize: number;
  /** Whose float rules (1-D, small, protected names) apply. */
  swan: SwanConfig;
  /** User `--protect` / `--sensitive` patterns. */
  keepFloat?: readonly string[];
  atLeast8?: readonly string[];
  /** User `--tensor-type` pins. */
  pins?: readonly TensorPin[];
  /** User `--formats`: a tier's format outside it stays float. */
  allowedFormats?: readonly QuantFormat[];
}

/** Group size of each SWAN tier. */
export function thresholdsGroup(bits: number, groupSize: number): number {
  return bits === 8 ? 64 : bits === 2 ? 32 : groupSize;
}

export function planThresholds(items: ThresholdsItem[], dtype: FloatDType, opts: ThresholdsOptions): Plan {
  const rules = { swanRules: opts.swan, keepFloat: opts.keepFloat, atLeast8: opts.atLeast8, pins: opts.pins, protectRouters: true, allowedFormats: opts.allowedFormats };
  const entries = items.map(({ record, shape, decision: decided }) => {
    const el = eligibleFormats(record, shape, rules);
    if (el.pinned && !el.floatRule) return planEntry(record, shape, el.formats[0]!, 'user_pin', dtype);
    // A protected router SWAN would give fewer bits takes the 8-bit tier instead.
    const raise = record.role === 'router' && decided.bits < 8;
    const decision: Decision = raise ? { bits: 8, reason: `router_protected (SWAN: ${decided.bits}-bit, ${decided.reason})` } : decided;
    if (!el.floatRule && decision.bits === 16) return planEntry(record, shape, FLOAT, decision.reason, dtype);
    const p = pickFormat(el, shape, decision.bits, thresholdsGroup(decision.bits, opts.groupSize));
    return planEntry(record, shape, p.format, p.floatReason ?? decision.reason, dtype);
  });
  return { strategy: 'thresholds', dtype, defaultBits: 4, defaultGroupSize: opts.groupSize, entries };
}
