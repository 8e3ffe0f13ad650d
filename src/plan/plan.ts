/**
 * The plan: one format per source tensor, plain data. Strategies make it (thresholds.ts,
 * uniform.ts, budget.ts), the writer follows it (src/pipeline/write-mlx.ts), the manifest records
 * it with its evidence (src/manifest/build.ts).
 */
import type { TensorRecord } from '../arch/types.js';
import type { FloatDType } from '../io/float.js';
import type { QuantRecipe, Rounding, Strategy } from '../options.js';
import type { DamageKnobs } from './damage.js';
import { formatBytes, formatLabel, formatOfMode, nominalBits, numel, quantMode, sameFormat, type QuantMode, type TensorFormat } from '../format.js';

/** The format chosen for one source tensor. Plain data: the manifest is the plan plus its evidence. */
export interface PlanEntry {
  hfName: string;
  record: TensorRecord;
  shape: number[];
  format: TensorFormat;
  bytes: number;
  /** Why this format: the eligibility rule that kept it float (eligibility.ts), or the strategy's reason. */
  reason: string;
  /** Budget plans: expected damage of the chosen format (relError × importance). */
  damage?: number;
  /** Budget plans: the tensor's weight in the damage model. */
  importance?: number;
  /**
   * The format is the one the model's mlx-lm `quant_predicate` forces (uniform plans): config.json
   * lists it as convert does, `{group_size, bits}` without `mode`, even when equal to the top level.
   */
  mlxRule?: boolean;
}

/** What a budget plan was solved for. */
export interface BudgetInfo {
  targetBytes: number;
  /** Whose measured errors the damage counted: RTN's or the rounding search's. */
  rounding: Rounding;
  /** Total expected damage of the plan. */
  damage: number;
  knobs: DamageKnobs;
  /** Where the target came from: the user (`--target-*`) or, by default, the bytes of SWAN's thresholds plan. */
  targetFrom: 'user' | 'thresholds';
  /**
   * The same damage model applied to uniform 4-bit g64 (mlx_lm.convert -q, round-to-nearest) of
   * the same model: a yardstick that gives the plan's damage a meaning (damage / reference.damage).
   */
  reference?: { label: string; bytes: number; damage: number };
}

export interface Plan {
  strategy: Strategy;
  budget?: BudgetInfo;
  dtype: FloatDType;
  /** Top-level `quantization` of config.json; layers that differ get their own entry. */
  defaultBits: number;
  defaultGroupSize: number;
  /** The top level's `mode` (absent: affine). */
  defaultMode?: QuantMode;
  entries: PlanEntry[];
  /**
   * A convert recipe (`--quant-predicate`): config.json then lists every quantized layer, with
   * `group_size` null when `--q-group-size` was not given, as mlx_lm.convert writes it.
   */
  recipe?: { name: QuantRecipe; configGroupSize: number | null };
}

/** A plan entry; bytes are 0 for a tensor the MLX model does not have. */
export function planEntry(record: TensorRecord, shape: number[], format: TensorFormat, reason: string, dtype: FloatDType): PlanEntry {
  return { hfName: record.hfName, record, shape, format, bytes: record.mlxName === null ? 0 : formatBytes(format, shape, dtype), reason };
}

/** Entries that exist in the MLX model. */
export function writtenEntries(plan: Plan): PlanEntry[] {
  return plan.entries.filter((e) => e.record.mlxName !== null);
}

/**
 * config.json `quantization`: top-level group_size/bits/mode, then one dict per quantized layer
 * whose format differs from the top level, in MLX module order (as mlx-lm writes it).
 */
export function quantizationConfig(plan: Plan, orderKey: (mlxName: string) => string): Record<string, unknown> {
  const mode = plan.defaultMode ?? 'affine';
  const q: Record<string, unknown> = { group_size: plan.defaultGroupSize, bits: plan.defaultBits, mode };
  const top: TensorFormat = formatOfMode(mode, plan.defaultBits, plan.defaultGroupSize);
  const layers = writtenEntries(plan)
    .filter((e) => e.format.kind !== 'float' && (plan.recipe !== undefined || e.mlxRule || !sameFormat(e.format, top)))
    .sort((a, b) => cmp(orderKey(a.record.mlxName!), orderKey(b.record.mlxName!)));
  for (const e of layers) {
    if (e.format.kind === 'float') continue;
    // A model's own mlx-lm rule writes {group_size, bits} without a mode, as convert does.
    if (e.mlxRule) {
      q[e.record.modulePath!] = { group_size: e.format.groupSize, bits: e.format.bits };
      continue;
    }
    // convert writes the group it was given (null without --q-group-size); a --tensor-type pin writes its own.
    const groupSize = plan.recipe && e.format.groupSize === plan.defaultGroupSize ? plan.recipe.configGroupSize : e.format.groupSize;
    q[e.record.modulePath!] = { group_size: groupSize, bits: e.format.bits, mode: quantMode(e.format) };
  }
  return q;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface PlanTotals {
  bytes: number;
  params: number;
  trueBpw: number;
  nominalBits: number;
  byFormat: Map<string, { tensors: number; params: number; bytes: number }>;
}

/** Sizes of what is written: true bits per weight counts scales and biases (mlx-lm's bpw). */
export function planTotals(plan: Plan): PlanTotals {
  let bytes = 0;
  let params = 0;
  let nominal = 0;
  const byFormat = new Map<string, { tensors: number; params: number; bytes: number }>();
  for (const e of writtenEntries(plan)) {
    const n = numel(e.shape);
    bytes += e.bytes;
    params += n;
    nominal += nominalBits(e.format, plan.dtype) * n;
    const label = formatLabel(e.format, plan.dtype);
    const row = byFormat.get(label) ?? { tensors: 0, params: 0, bytes: 0 };
    row.tensors++;
    row.params += n;
    row.bytes += e.bytes;
    byFormat.set(label, row);
  }
  return { bytes, params, trueBpw: params ? (8 * bytes) / params : 0, nominalBits: params ? nominal / params : 0, byFormat };
}
