import { readFileSync } from 'node:fs';
import { SwanError } from '../errors.js';
import { manifestConfig, type Manifest, type ManifestFormat, type ManifestTensor } from '../manifest.js';
import { DTYPE_NAMES, numel, type TensorFormat } from '../plan/format.js';
import { planTotals, type Plan } from '../plan/plan.js';
import type { Decision } from '../plan/swan-rules.js';
import { displayPath, type ModelAnalysis } from './analyze.js';
import type { FloatDType } from '../io/float.js';

export const SWAN_VERSION = '0.1.0';

const TORCH_DTYPE: Record<string, string> = { BF16: 'torch.bfloat16', F16: 'torch.float16', F32: 'torch.float32' };

function manifestFormat(f: TensorFormat, dtype: FloatDType, dropped: boolean): ManifestFormat {
  if (dropped) return { dropped: 'tied to model.embed_tokens' };
  return f.kind === 'float' ? { float: DTYPE_NAMES[dtype] } : { bits: f.bits, group_size: f.groupSize, mode: 'affine' };
}

/** The manifest: analysis evidence plus the plan, with the reference summary and true output sizes. */
export function buildManifest(analysis: ModelAnalysis, plan: Plan): Manifest {
  const { source } = analysis;
  const byName = new Map(plan.entries.map((e) => [e.hfName, e]));
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

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A decision per HF tensor name, from a swan manifest or one written by the reference Python tool. */
export function readManifestDecisions(file: string): Map<string, Decision> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SwanError(file, `cannot read manifest: ${(e as Error).message.split('\n')[0]}`);
  }
  const shards = (parsed as { shards?: unknown }).shards;
  if (!shards || typeof shards !== 'object') throw new SwanError(file, 'not a SWAN manifest (no "shards" object)');
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

