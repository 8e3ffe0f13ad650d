import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { withAtomicDir } from '../io/atomic-dir.js';
import type { FloatDType } from '../io/float.js';
import type { Manifest } from '../manifest.js';
import type { QuantRules } from '../mlx/affine.js';
import { makePlan, type Plan, type StrategyOptions } from '../plan/plan.js';
import type { PlanItem } from '../plan/strategies.js';
import { DEFAULT_SWAN_CONFIG, type SwanConfig } from '../plan/swan-rules.js';
import { modelCard } from '../report/model-card.js';
import { DEFAULT_SEED } from '../rng.js';
import { analyzeModel, type AnalyzeOptions, type ModelAnalysis } from './analyze.js';
import { buildManifest, readManifestDecisions } from './manifest-build.js';
import { openModel, type ModelSource } from './source.js';
import { writeMlxModel } from './write-mlx.js';

export const MANIFEST_FILE = 'swan-manifest.json';

export interface QuantizeOptions {
  strategy: 'thresholds' | 'uniform';
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
  if (opts.strategy === 'uniform') {
    const source = openModel(dir, { dtype: opts.dtype });
    const items: PlanItem[] = source.entries.map(({ info, record }) => ({
      record,
      shape: info.shape,
      decision: { bits: 4, reason: 'uniform' },
    }));
    const strategy: StrategyOptions = { strategy: 'uniform', bits: opts.bits ?? 4, groupSize };
    return { source, plan: makePlan(items, source.dtype, strategy) };
  }
  const strategy: StrategyOptions = { strategy: 'thresholds', groupSize };
  if (opts.manifestFile) {
    const decisions = readManifestDecisions(opts.manifestFile);
    const source = openModel(dir, { dtype: opts.dtype });
    const items: PlanItem[] = source.entries.map(({ info, record }) => {
      const decision = decisions.get(info.name);
      if (!decision) throw new SwanError(opts.manifestFile!, `has no decision for tensor ${info.name} of the model`);
      return { record, shape: info.shape, decision };
    });
    return { source, plan: makePlan(items, source.dtype, strategy) };
  }
  const analysis = analyzeModel(dir, { seed: opts.seed ?? DEFAULT_SEED, swan: opts.swan ?? DEFAULT_SWAN_CONFIG, dtype: opts.dtype, onTensor: opts.onAnalyze });
  const items = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, decision: a.decision }));
  const plan = makePlan(items, analysis.source.dtype, strategy);
  return { source: analysis.source, plan, analysis, manifest: buildManifest(analysis, plan) };
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
