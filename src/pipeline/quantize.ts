import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { withAtomicDir } from '../io/atomic-dir.js';
import type { FloatDType } from '../io/float.js';
import type { Manifest } from '../manifest.js';
import type { QuantRules } from '../mlx/affine.js';
import { makeBudgetPlan, type BudgetItem } from '../plan/budget-plan.js';
import { affineCandidateFormats, type InputWeighting, type Rounding } from '../plan/candidates.js';
import type { DamageKnobs } from '../plan/damage.js';
import { DTYPE_NAMES } from '../plan/format.js';
import { makePlan, type Plan, type StrategyOptions } from '../plan/plan.js';
import type { SizeTarget } from '../plan/target.js';
import type { PlanItem } from '../plan/strategies.js';
import { DEFAULT_SWAN_CONFIG, type SwanConfig } from '../plan/swan-rules.js';
import { modelCard } from '../report/model-card.js';
import { DEFAULT_SEED } from '../rng.js';
import { analyzeModel, type AnalyzeOptions, type ModelAnalysis } from './analyze.js';
import { buildManifest, manifestMeasurements, readManifestDecisions, readManifestFile, replanManifest } from './manifest-build.js';
import { kvShare, openModel, type ModelSource } from './source.js';
import { writeMlxModel } from './write-mlx.js';

export const MANIFEST_FILE = 'swan-manifest.json';

export interface QuantizeOptions {
  /** thresholds: SWAN as published; uniform: mlx_lm.convert -q; budget: least expected damage within `target`. */
  strategy: 'thresholds' | 'uniform' | 'budget';
  /** Size target of the budget strategy (`--target-bpw` / `--target-size`). */
  target?: SizeTarget;
  /** rtn (default): bit-exact MLX round-to-nearest; search: per-group scale search (src/mlx/rounding-search.ts). */
  rounding?: Rounding;
  /** What `--rounding search` minimises across input channels (default norm; src/plan/candidates.ts InputWeighting). */
  weighting?: InputWeighting;
  /** Damage-model knobs of the budget strategy (docs/allocation.md). */
  knobs?: DamageKnobs;
  /** Budget strategy: name patterns kept in float / given at least 8 bits (`--protect` / `--sensitive`). */
  keepFloat?: string[];
  atLeast8?: string[];
  /** Uniform bits (`--q-bits`). */
  bits?: number;
  /** `--q-group-size`: uniform group, and SWAN's 4-bit group. */
  groupSize?: number;
  dtype?: FloatDType;
  rules?: QuantRules;
  /** Use decisions from this manifest (swan's or the reference tool's) instead of analysing. */
  manifestFile?: string;
  seed?: number;
  swan?: SwanConfig;
  /** Score protected tensors too (reference behaviour; they stay 16-bit either way). */
  scoreProtected?: boolean;
  /** Thresholds strategy: skip the SVD/output metrics of tensors whose bits the cheap metrics decide. */
  skipDecided?: boolean;
  overwrite?: boolean;
  maxShardBytes?: number;
  onAnalyze?: AnalyzeOptions['onTensor'];
  onWrite?: (done: number, total: number, name: string) => void;
}

export interface QuantizeResult {
  outDir: string;
  plan: Plan;
  manifest?: Manifest;
  source: ModelSource;
  bytes: number;
  shards: string[];
}

/** Plan the formats of a model (analysing it unless a manifest or the uniform strategy is given). */
export function planModel(
  dir: string,
  opts: QuantizeOptions,
): { source: ModelSource; plan: Plan; analysis?: ModelAnalysis; manifest?: Manifest } {
  const groupSize = opts.groupSize ?? 64;
  const rounding = opts.rounding ?? 'rtn';
  const weighting = opts.weighting ?? 'norm';
  const withRounding = <T extends { plan: Plan }>(r: T): T => ((r.plan.rounding = rounding), (r.plan.weighting = weighting), r);
  if (opts.strategy === 'budget' && !opts.target) throw new Error('the budget strategy needs a target (--target-bpw or --target-size)');
  if (opts.strategy !== 'budget' && opts.target) throw new Error(`a size target needs the budget strategy (got --strategy ${opts.strategy})`);
  if (opts.strategy === 'uniform') {
    const source = openModel(dir, { dtype: opts.dtype });
    const items: PlanItem[] = source.entries.map(({ info, record }) => ({
      record,
      shape: info.shape,
      decision: { bits: 4, reason: 'uniform' },
    }));
    const strategy: StrategyOptions = { strategy: 'uniform', bits: opts.bits ?? 4, groupSize };
    return withRounding({ source, plan: makePlan(items, source.dtype, strategy) });
  }
  if (opts.strategy === 'budget' && opts.manifestFile) return replanFromManifest(dir, opts.manifestFile, opts, rounding);
  const strategy: StrategyOptions = { strategy: 'thresholds', groupSize };
  if (opts.manifestFile) {
    const decisions = readManifestDecisions(opts.manifestFile);
    const source = openModel(dir, { dtype: opts.dtype });
    const items: PlanItem[] = source.entries.map(({ info, record }) => {
      const decision = decisions.get(info.name);
      if (!decision) throw new SwanError(opts.manifestFile!, `has no decision for tensor ${info.name} of the model`);
      return { record, shape: info.shape, decision };
    });
    return withRounding({ source, plan: makePlan(items, source.dtype, strategy) });
  }
  const analysis = analyzeModel(dir, {
    seed: opts.seed ?? DEFAULT_SEED,
    swan: opts.swan ?? DEFAULT_SWAN_CONFIG,
    dtype: opts.dtype,
    rules: opts.rules ?? 'metal',
    // Only the budget strategy uses the candidate measurements, and only --rounding search its error.
    measureCandidates: opts.strategy === 'budget',
    measureSearch: rounding === 'search',
    weighting,
    scoreProtected: opts.scoreProtected,
    // The budget strategy weighs every tensor by its composite, so only thresholds may skip.
    skipDecided: opts.strategy === 'thresholds' && (opts.skipDecided ?? false),
    onTensor: opts.onAnalyze,
  });
  const { source } = analysis;
  let plan: Plan;
  if (opts.strategy === 'budget') {
    const items: BudgetItem[] = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, composite: a.composite, candidates: a.candidates }));
    plan = makeBudgetPlan(items, source.dtype, budgetOptions(opts, source, rounding));
  } else {
    const items = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, decision: a.decision }));
    plan = makePlan(items, source.dtype, strategy);
  }
  plan.rounding = rounding;
  plan.weighting = weighting;
  return { source, plan, analysis, manifest: buildManifest(analysis, plan) };
}

function budgetOptions(opts: QuantizeOptions, source: ModelSource, rounding: Rounding) {
  return {
    target: opts.target!,
    rounding,
    totalLayers: source.totalLayers,
    tied: source.tied,
    kvShare: kvShare(source),
    knobs: opts.knobs,
    keepFloat: opts.keepFloat,
    atLeast8: opts.atLeast8,
  };
}

/** Budget plan from a manifest's stored measurements: seconds, no pass over the weights. */
function replanFromManifest(dir: string, file: string, opts: QuantizeOptions, rounding: Rounding): { source: ModelSource; plan: Plan; manifest: Manifest } {
  const stored = readManifestFile(file);
  const meas = manifestMeasurements(stored, file);
  const source = openModel(dir, { dtype: opts.dtype });
  if (meas.dtype !== source.dtype) {
    throw new SwanError(file, `was measured in ${DTYPE_NAMES[meas.dtype]} but the model is written in ${DTYPE_NAMES[source.dtype]}; pass --dtype ${DTYPE_NAMES[meas.dtype]} or analyse again`);
  }
  const rules = opts.rules ?? 'metal';
  if (meas.rules !== rules) throw new SwanError(file, `was measured with --mlx-rules ${meas.rules}, not ${rules}; pass --mlx-rules ${meas.rules} or analyse again`);
  if (rounding === 'search' && !meas.search) throw new SwanError(file, 'has no --rounding search measurements; analyse again with --rounding search');
  const weighting = opts.weighting ?? 'norm';
  // The weighting changes only the search's measured errors; an RTN plan does not depend on it.
  if (rounding === 'search' && meas.weighting !== weighting) throw new SwanError(file, `was measured with --weighting ${meas.weighting}, not ${weighting}; pass --weighting ${meas.weighting} or analyse again`);
  const items: BudgetItem[] = source.entries.map(({ info, record }) => {
    const m = meas.tensors.get(info.name);
    if (!m) throw new SwanError(file, `has no entry for tensor ${info.name} of the model`);
    if (!m.candidates && affineCandidateFormats(record, info.shape).length > 0) throw new SwanError(file, `has no candidate measurements for tensor ${info.name}`);
    return { record, shape: info.shape, composite: m.composite, candidates: m.candidates ?? [] };
  });
  const plan = makeBudgetPlan(items, source.dtype, budgetOptions(opts, source, rounding));
  plan.weighting = weighting;
  return { source, plan, manifest: replanManifest(stored, plan) };
}

function baseModelId(config: Record<string, unknown>): string | undefined {
  const id = config._name_or_path;
  return typeof id === 'string' && /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(id) ? id : undefined;
}

/** `swan quantize`: plan, then write the MLX directory atomically. */
export function quantizeModel(dir: string, outDir: string, opts: QuantizeOptions): QuantizeResult {
  const target = resolve(outDir);
  const { source, plan, manifest } = planModel(dir, opts);
  return withAtomicDir(target, { overwrite: opts.overwrite }, (tmp) => {
    const { bytes, shards } = writeMlxModel(source, plan, tmp, {
      rules: opts.rules ?? 'metal',
      maxShardBytes: opts.maxShardBytes,
      onTensor: opts.onWrite,
    });
    if (manifest) writeFileSync(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    const card = modelCard({
      plan,
      manifest,
      modelType: source.modelType,
      baseModel: baseModelId(source.hf.config),
      outputName: basename(target),
      seed: manifest?.seed,
    });
    writeFileSync(join(tmp, 'README.md'), card);
    return { outDir: target, plan, manifest, source, bytes, shards };
  });
}
