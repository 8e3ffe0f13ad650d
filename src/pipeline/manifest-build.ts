import { readFileSync } from 'node:fs';
import { SwanError } from '../errors.js';
import { manifestConfig, manifestTensors, type Manifest, type ManifestCandidate, type ManifestFormat, type ManifestTensor } from '../manifest.js';
import { INPUT_WEIGHTINGS, type Candidate, type InputWeighting } from '../plan/candidates.js';
import { DEFAULT_DAMAGE_KNOBS, importance } from '../plan/damage.js';
import { affine, DTYPE_NAMES, dtypeFromName, formatBytes, numel, type TensorFormat } from '../plan/format.js';
import { planTotals, type Plan } from '../plan/plan.js';
import type { Decision } from '../plan/swan-rules.js';
import { displayPath, type ModelAnalysis } from './analyze.js';
import { kvShare } from './source.js';
import type { FloatDType } from '../io/float.js';

export const SWAN_VERSION = '0.1.0';

const TORCH_DTYPE: Record<string, string> = { BF16: 'torch.bfloat16', F16: 'torch.float16', F32: 'torch.float32' };

function manifestFormat(f: TensorFormat, dtype: FloatDType, dropped: boolean): ManifestFormat {
  if (dropped) return { dropped: 'tied to model.embed_tokens' };
  return f.kind === 'float' ? { float: DTYPE_NAMES[dtype] } : { bits: f.bits, group_size: f.groupSize, mode: 'affine' };
}

/** The manifest's `plan` section: strategy, rounding and, for budget plans, what was solved for. */
function manifestPlan(plan: Plan): NonNullable<Manifest['plan']> {
  return {
    strategy: plan.strategy,
    rounding: plan.rounding ?? 'rtn',
    input_weighting: plan.weighting ?? 'none',
    ...(plan.budget ? { target_bytes: plan.budget.targetBytes, expected_damage: plan.budget.damage, damage_knobs: { ...plan.budget.knobs } } : {}),
  };
}

/** The manifest: analysis evidence plus the plan, with the reference summary and true output sizes. */
export function buildManifest(analysis: ModelAnalysis, plan: Plan): Manifest {
  const { source } = analysis;
  const byName = new Map(plan.entries.map((e) => [e.hfName, e]));
  const knobs = plan.budget?.knobs ?? DEFAULT_DAMAGE_KNOBS;
  const shards: Manifest['shards'] = {};
  for (const a of analysis.tensors) {
    const p = byName.get(a.name)!;
    const t: ManifestTensor = {
      shape: a.shape,
      dtype: TORCH_DTYPE[a.sourceDType] ?? a.sourceDType,
      num_params: numel(a.shape),
      classification: a.classification,
      scores: a.scores,
      composite_score: a.composite,
      decision: a.decision,
      raw_metrics: a.raw,
      mlx_name: a.record.mlxName,
      role: a.record.role,
      layer: a.record.layer,
      format: manifestFormat(p.format, plan.dtype, a.record.mlxName === null),
      bytes: p.bytes,
    };
    if (a.candidates.length > 0) {
      t.candidates = a.candidates.map(manifestCandidate);
      t.importance = p.importance ?? importance({ role: a.record.role, layer: a.record.layer, composite: a.composite, tiedHead: source.tied, params: numel(a.shape), kvShare: kvShare(source) }, source.totalLayers, knobs);
    }
    if (p.damage !== undefined) t.damage = p.damage;
    (shards[a.file] ??= { file: a.file, tensors: {} }).tensors[a.name] = t;
  }
  return {
    swan_version: SWAN_VERSION,
    model: displayPath(source.hf.dir),
    model_type: source.modelType,
    seed: analysis.seed,
    dtype: DTYPE_NAMES[plan.dtype],
    q_group_size: plan.defaultGroupSize,
    config: manifestConfig(analysis.swan),
    total_layers: source.totalLayers,
    total_tensors: analysis.tensors.length,
    ...(analysis.measure
      ? {
          measurement: {
            dtype: DTYPE_NAMES[analysis.measure.dtype],
            mlx_rules: analysis.measure.rules,
            rounding_search: analysis.measure.search,
            input_weighting: analysis.measure.weighting ?? 'none',
          },
        }
      : {}),
    plan: manifestPlan(plan),
    shards,
    summary: summarize(analysis.tensors.map((a) => ({ decision: a.decision, params: numel(a.shape) })), plan),
  };
}

/** Reference summary (nominal decision bits, its GiB estimate) plus swan's true sizes. */
function summarize(items: { decision: Decision; params: number }[], plan: Plan): Manifest['summary'] {
  const total = items.reduce((s, i) => s + i.params, 0);
  const byBits: Record<string, number> = { '2': 0, '4': 0, '8': 0, '16': 0 };
  for (const i of items) byBits[String(i.decision.bits)] = (byBits[String(i.decision.bits)] ?? 0) + i.params;
  const bits_distribution: Manifest['summary']['bits_distribution'] = {};
  for (const [b, params] of Object.entries(byBits)) {
    bits_distribution[b] = { params, percentage: total ? round((100 * params) / total, 2) : 0 };
  }
  const avg = total ? items.reduce((s, i) => s + i.decision.bits * i.params, 0) / total : 0;
  // The reference's estimate (GiB, one fp16 scale per group, 2-bit at g32): kept for comparison only.
  const est =
    (2 * byBits['16']! + byBits['8']! * (1 + 2 / 64) + byBits['4']! * (0.5 + 2 / 128) + byBits['2']! * (0.25 + 2 / 32)) /
    1024 ** 3;
  const totals = planTotals(plan);
  const format_distribution: Manifest['summary']['format_distribution'] = {};
  for (const [label, row] of totals.byFormat) format_distribution[label] = row;
  return {
    total_params: total,
    bits_distribution,
    estimated_size_gb: round(est, 4),
    average_bits: round(avg, 4),
    analysis_time_seconds: null,
    tensor_count: items.length,
    output_bytes: totals.bytes,
    output_params: totals.params,
    true_bpw: round(totals.trueBpw, 4),
    nominal_average_bits: round(totals.nominalBits, 4),
    format_distribution,
  };
}

function manifestCandidate(c: Candidate): ManifestCandidate {
  if (c.format.kind !== 'affine') throw new Error('internal: float candidates are implicit in the manifest');
  const m: ManifestCandidate = { bits: c.format.bits, group_size: c.format.groupSize, bytes: c.bytes, rel_error: c.relError };
  if (c.relErrorSearch !== undefined) m.rel_error_search = c.relErrorSearch;
  return m;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A manifest file, parsed and checked to have shards (swan's or the reference tool's). */
export function readManifestFile(file: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SwanError(file, `cannot read manifest: ${(e as Error).message.split('\n')[0]}`);
  }
  const shards = (parsed as { shards?: unknown }).shards;
  if (!shards || typeof shards !== 'object') throw new SwanError(file, 'not a SWAN manifest (no "shards" object)');
  return parsed as Manifest;
}

/**
 * The manifest of a plan made from another manifest's measurements: the same evidence, with the
 * new formats, bytes, damages, plan section and summary (`stored` itself is not changed).
 */
export function replanManifest(stored: Manifest, plan: Plan): Manifest {
  const m = structuredClone(stored);
  const byName = new Map(plan.entries.map((e) => [e.hfName, e]));
  const items: { decision: Decision; params: number }[] = [];
  for (const shard of Object.values(m.shards)) {
    for (const [name, t] of Object.entries(shard.tensors)) {
      const p = byName.get(name);
      if (!p) continue;
      t.format = manifestFormat(p.format, plan.dtype, p.record.mlxName === null);
      t.bytes = p.bytes;
      if (p.importance !== undefined) t.importance = p.importance;
      if (p.damage !== undefined) t.damage = p.damage;
      else delete t.damage;
      items.push({ decision: t.decision, params: numel(t.shape) });
    }
  }
  m.plan = manifestPlan(plan);
  m.summary = summarize(items, plan);
  return m;
}

/** What re-planning under a budget reads back from a manifest: no second pass over the weights. */
export interface ManifestMeasurements {
  dtype: FloatDType;
  rules: string;
  search: boolean;
  weighting: InputWeighting;
  tensors: Map<string, { composite: number; candidates: Candidate[] | undefined }>;
}

/** The stored candidate measurements of a swan manifest (written by `swan analyze` or `swan quantize`). */
export function readManifestMeasurements(file: string): ManifestMeasurements {
  return manifestMeasurements(readManifestFile(file), file);
}

/** readManifestMeasurements of a manifest already read from `file` (named in errors). */
export function manifestMeasurements(m: Manifest, file: string): ManifestMeasurements {
  const dtype = m.measurement ? dtypeFromName(m.measurement.dtype) : undefined;
  if (!m.measurement || !dtype) {
    throw new SwanError(file, 'has no candidate measurements (a reference-tool or older manifest); run `swan analyze` to make one');
  }
  const tensors: ManifestMeasurements['tensors'] = new Map();
  for (const [name, t] of manifestTensors(m)) {
    const candidates = t.candidates?.map((c): Candidate => {
      const format = affine(c.bits, c.group_size);
      const out: Candidate = { format, bytes: formatBytes(format, t.shape, dtype), relError: c.rel_error };
      if (c.rel_error_search !== undefined) out.relErrorSearch = c.rel_error_search;
      return out;
    });
    tensors.set(name, { composite: Number(t.composite_score ?? 0), candidates });
  }
  const weighting = (m.measurement.input_weighting ?? 'none') as InputWeighting;
  if (!INPUT_WEIGHTINGS.includes(weighting)) throw new SwanError(file, `has an unknown input_weighting ${JSON.stringify(weighting)}`);
  return { dtype, rules: m.measurement.mlx_rules, search: m.measurement.rounding_search, weighting, tensors };
}

/** A decision per HF tensor name, from a swan manifest or one written by the reference Python tool. */
export function readManifestDecisions(file: string): Map<string, Decision> {
  const { shards } = readManifestFile(file);
  const out = new Map<string, Decision>();
  for (const shard of Object.values(shards as Record<string, { tensors?: Record<string, { decision?: Decision }> }>)) {
    for (const [name, t] of Object.entries(shard?.tensors ?? {})) {
      const bits = t?.decision?.bits;
      if (bits !== 2 && bits !== 4 && bits !== 8 && bits !== 16) {
        throw new SwanError(file, `tensor ${name} has no valid decision.bits (2, 4, 8 or 16)`);
      }
      out.set(name, { bits, reason: String(t.decision!.reason ?? 'manifest') });
    }
  }
  return out;
}

