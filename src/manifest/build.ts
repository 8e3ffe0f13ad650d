/**
 * Building manifests: the analysis evidence plus the plan (buildManifest), or a stored manifest
 * with a new plan from its measurements (replanManifest). Both compute the summary the same way.
 */
import { basename } from 'node:path';
import { kvShare } from '../arch/source.js';
import { nominalBits, numel, quantMode, type Candidate, type TensorFormat } from '../format.js';
import { displayPath } from '../io/hf-model.js';
import { DTYPE_NAMES, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import type { ModelAnalysis } from '../measure/analyze.js';
import { SWAN_VERSION, type InputWeighting, type Rounding } from '../options.js';
import { DEFAULT_DAMAGE_KNOBS, importance } from '../plan/damage.js';
import { planTotals, writtenEntries, type Plan } from '../plan/plan.js';
import { swanDecision, type Decision } from '../plan/swan-rules.js';
import { manifestConfig, type Manifest, type ManifestCandidate, type ManifestFormat, type ManifestSummary, type ManifestTensor } from './schema.js';

/** How the plan is executed when written (QuantizeOptions rounding/weighting), as the manifest records it. */
export interface ManifestExecution {
  rounding: Rounding;
  weighting: InputWeighting;
  /** `--imatrix` file, when one replaced the weighting (recorded by its file name). */
  imatrix?: string;
}

const TORCH_DTYPE: Record<string, string> = { BF16: 'torch.bfloat16', F16: 'torch.float16', F32: 'torch.float32' };

function manifestFormat(f: TensorFormat, dtype: FloatDType, dropped: boolean): ManifestFormat {
  if (dropped) return { dropped: 'tied to model.embed_tokens' };
  return f.kind === 'float' ? { float: DTYPE_NAMES[dtype] } : { bits: f.bits, group_size: f.groupSize, mode: quantMode(f) };
}

/** The manifest's `plan` section: strategy, rounding and, for budget plans, what was solved for. */
function manifestPlan(plan: Plan, exec: ManifestExecution): NonNullable<Manifest['plan']> {
  return {
    strategy: plan.strategy,
    rounding: exec.rounding,
    input_weighting: exec.weighting,
    ...(exec.imatrix !== undefined ? { imatrix: basename(exec.imatrix) } : {}),
    ...(plan.budget
      ? {
          target_bytes: plan.budget.targetBytes,
          target_from: plan.budget.targetFrom,
          expected_damage: plan.budget.damage,
          ...(plan.budget.reference ? { reference: { format: plan.budget.reference.label, bytes: plan.budget.reference.bytes, expected_damage: plan.budget.reference.damage } } : {}),
          damage_knobs: { ...plan.budget.knobs },
        }
      : {}),
  };
}

/** The manifest: analysis evidence plus the plan, with the reference summary and true output sizes. */
export function buildManifest(analysis: ModelAnalysis, plan: Plan, exec: ManifestExecution): Manifest {
  const { source } = analysis;
  const decisions = new Map(analysis.tensors.map((a) => [a.name, swanDecision(a, analysis.swan)]));
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
      decision: decisions.get(a.name)!,
      raw_metrics: a.raw,
      mlx_name: a.record.mlxName,
      role: a.record.role,
      layer: a.record.layer,
      format: manifestFormat(p.format, plan.dtype, a.record.mlxName === null),
      reason: p.reason,
      bytes: p.bytes,
    };
    if (a.candidates.length > 0) {
      t.candidates = a.candidates.map(manifestCandidate);
      t.importance = p.importance ?? importance({ role: a.record.role, layer: a.record.layer, composite: a.composite, tiedHead: source.tied, params: numel(a.shape), kvShare: kvShare(source) }, source.totalLayers, knobs);
    }
    if (p.damage !== undefined) t.damage = p.damage;
    if (a.experts) t.experts = a.experts.map((x) => ({ name: x.name, scores: x.scores, composite_score: x.composite }));
    (shards[a.file] ??= { file: a.file, tensors: {} }).tensors[a.name] = t;
  }
  const manifest: Manifest = {
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
            input_weighting: analysis.measure.weighting,
          },
        }
      : {}),
    plan: manifestPlan(plan, exec),
    shards,
    summary: summarize(analysis.tensors.length, analysis.tensors.reduce((n, a) => n + numel(a.shape), 0), plan),
  };
  return recordNonFinite(manifest, analysis.nonfinite);
}

/**
 * Sets each tensor's `nonfinite` from `counts` (HF names; a tensor not in it has none) and the
 * summary's total, in place. The writer's counts cover every written tensor, so they replace what
 * the analysis (which may skip unscored tensors) or a stored manifest said.
 */
export function recordNonFinite(m: Manifest, counts: ReadonlyMap<string, NonFiniteCounts>): Manifest {
  const total = { nan: 0, inf: 0, overflow: 0, tensors: 0 };
  for (const shard of Object.values(m.shards)) {
    for (const [name, t] of Object.entries(shard.tensors)) {
      const c = counts.get(name);
      if (!c) {
        delete t.nonfinite;
        continue;
      }
      t.nonfinite = { nan: c.nan, inf: c.inf, overflow: c.overflow };
      total.nan += c.nan;
      total.inf += c.inf;
      total.overflow += c.overflow;
      total.tensors++;
    }
  }
  if (total.tensors > 0) m.summary.nonfinite = total;
  else delete m.summary.nonfinite;
  return m;
}

/** What `--rounding gptq` did with one tensor (src/mlx/gptq.ts): whether GPTQ's codes were kept, and both output errors tr(E H Eᵀ). */
export interface GptqChoice {
  kept: boolean;
  outputError: number;
  searchOutputError: number;
}

/** The manifest summary's `gptq`: how many tensors GPTQ rounded and kept, and their output errors summed. */
export function gptqTotals(choices: Iterable<GptqChoice>): NonNullable<ManifestSummary['gptq']> {
  const total = { tensors: 0, kept: 0, output_error: 0, search_output_error: 0 };
  for (const c of choices) {
    total.tensors++;
    if (c.kept) total.kept++;
    total.output_error += c.outputError;
    total.search_output_error += c.searchOutputError;
  }
  return total;
}

/** Record `--rounding gptq`'s per-tensor choices (writeMlxModel's `gptq`, by HF name) and their sums in the summary. */
export function recordGptq(m: Manifest, choices: ReadonlyMap<string, GptqChoice>): Manifest {
  for (const shard of Object.values(m.shards)) {
    for (const [name, t] of Object.entries(shard.tensors)) {
      const c = choices.get(name);
      if (c) t.gptq = { kept: c.kept, output_error: c.outputError, search_output_error: c.searchOutputError };
    }
  }
  if (choices.size > 0) m.summary.gptq = gptqTotals(choices.values());
  return m;
}

/**
 * The summary, every figure of it from the plan that is written (issue 13: a summary of the SWAN
 * decisions contradicted a budget output): bits_distribution and average_bits are the written
 * formats' nominal bits (float = its dtype's bits), estimated_size_gb is output_bytes / 1e9, true_bpw
 * is 8 · output_bytes / output_params as mlx-lm counts them. Bytes count tensors only (weights,
 * scales, biases, float tensors: the index's total_size), not safetensors headers or the tokenizer.
 */
function summarize(tensorCount: number, totalParams: number, plan: Plan): Manifest['summary'] {
  const totals = planTotals(plan);
  const byBits = new Map<number, number>();
  for (const e of writtenEntries(plan)) {
    const b = nominalBits(e.format, plan.dtype);
    byBits.set(b, (byBits.get(b) ?? 0) + numel(e.shape));
  }
  const bits_distribution: Manifest['summary']['bits_distribution'] = {};
  for (const [b, params] of [...byBits].sort((x, y) => x[0] - y[0])) {
    bits_distribution[String(b)] = { params, percentage: totals.params ? round((100 * params) / totals.params, 2) : 0 };
  }
  const format_distribution: Manifest['summary']['format_distribution'] = {};
  for (const [label, row] of totals.byFormat) format_distribution[label] = row;
  return {
    total_params: totalParams,
    bits_distribution,
    estimated_size_gb: round(totals.bytes / 1e9, 4),
    average_bits: round(totals.nominalBits, 4),
    analysis_time_seconds: null,
    tensor_count: tensorCount,
    output_bytes: totals.bytes,
    output_params: totals.params,
    true_bpw: round(totals.trueBpw, 4),
    nominal_average_bits: round(totals.nominalBits, 4),
    format_distribution,
  };
}

function manifestCandidate(c: Candidate): ManifestCandidate {
  if (c.format.kind === 'float') throw new Error('internal: float candidates are implicit in the manifest');
  const m: ManifestCandidate = { bits: c.format.bits, group_size: c.format.groupSize, bytes: c.bytes, rel_error: c.relError };
  if (c.format.kind === 'fp') m.mode = c.format.mode;
  if (c.relErrorSearch !== undefined) m.rel_error_search = c.relErrorSearch;
  return m;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * The manifest of a plan made from another manifest's measurements: the same evidence, with the
 * new formats, bytes, damages, plan section and summary (`stored` itself is not changed).
 */
export function replanManifest(stored: Manifest, plan: Plan, exec: ManifestExecution): Manifest {
  const m = structuredClone(stored);
  const byName = new Map(plan.entries.map((e) => [e.hfName, e]));
  let count = 0;
  let params = 0;
  for (const shard of Object.values(m.shards)) {
    for (const [name, t] of Object.entries(shard.tensors)) {
      const p = byName.get(name);
      if (!p) continue;
      t.format = manifestFormat(p.format, plan.dtype, p.record.mlxName === null);
      t.reason = p.reason;
      t.bytes = p.bytes;
      if (p.importance !== undefined) t.importance = p.importance;
      if (p.damage !== undefined) t.damage = p.damage;
      else delete t.damage;
      count++;
      params += numel(t.shape);
    }
  }
  m.plan = manifestPlan(plan, exec);
  m.summary = { ...summarize(count, params, plan), ...(m.summary.nonfinite ? { nonfinite: m.summary.nonfinite } : {}) };
  return m;
}

