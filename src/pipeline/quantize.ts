/**
 * The library's entry points: analyse, plan, write. Options are resolved once here (DEFAULTS in
 * src/options.ts) and each stage gets explicit values.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { kvShare, openModel, type ModelSource } from '../arch/source.js';
import { SwanError } from '../errors.js';
import { claimOutputDir } from '../io/atomic-dir.js';
import type { Notice } from '../io/cleanup.js';
import { DTYPE_NAMES, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import { writePrettyJsonFd } from '../io/json-stream.js';
import { buildManifest, recordNonFinite, replanManifest, type ManifestExecution } from '../manifest/build.js';
import { checkManifestMatches, manifestDecisions, manifestMeasurements, readManifestFile } from '../manifest/read.js';
import { MANIFEST_FILE, type Manifest } from '../manifest/schema.js';
import { analyzeModel, type AnalyzeOptions, type ModelAnalysis } from '../measure/analyze.js';
import { readImatrix } from '../measure/imatrix.js';
import { AFFINE_GROUP_SIZES, ALL_QUANT_FORMATS, DEFAULT_FORMATS, FP_MODE_SPEC, type QuantFormat, type QuantMode } from '../format.js';
import { DEFAULTS, type InputWeighting, type QuantRules, type Rounding, type Strategy } from '../options.js';
import { planBudget, type BudgetItem, type BudgetOptions } from '../plan/budget.js';
import type { DamageKnobs } from '../plan/damage.js';
import { measurableFormats } from '../plan/eligibility.js';
import type { Plan } from '../plan/plan.js';
import { DEFAULT_SWAN_CONFIG, swanDecision, validateSwanConfig, type SwanConfig } from '../plan/swan-rules.js';
import type { SizeTarget } from '../plan/target.js';
import { planThresholds } from '../plan/thresholds.js';
import { planUniform } from '../plan/uniform.js';
import { modelCard } from '../report/model-card.js';
import { writeMlxModel } from './write-mlx.js';

export { MANIFEST_FILE };

export interface QuantizeOptions {
  /** thresholds: SWAN as published; uniform: mlx_lm.convert -q; budget: least expected damage within `target`. Default: budget with a target, else thresholds. */
  strategy?: Strategy;
  /** Size target of the budget strategy (`--target-bpw` / `--target-size`). */
  target?: SizeTarget;
  /** rtn: bit-exact MLX round-to-nearest; search: per-group scale search (src/mlx/rounding-search.ts). */
  rounding?: Rounding;
  /** What `--rounding search` minimises across input channels (src/options.ts INPUT_WEIGHTINGS). */
  weighting?: InputWeighting;
  /** Damage-model knobs of the budget strategy (docs/allocation.md). */
  knobs?: DamageKnobs;
  /** Name patterns kept in float / given at least 8 bits (`--protect` / `--sensitive`), in every strategy but uniform. */
  keepFloat?: string[];
  atLeast8?: string[];
  /** Budget strategy: also keep SWAN's built-in protected names (embeddings, head, norms) in float. */
  budgetKeepsProtected?: boolean;
  /** Uniform bits (`--q-bits`; with an fp `mode`, default and only value the mode's). */
  bits?: number;
  /** `--q-group-size`: uniform group, and SWAN's 4-bit group (with an fp `mode`, the mode's). */
  groupSize?: number;
  /** `--q-mode` of the uniform strategy: affine (default) or an MLX fp mode (mxfp4, nvfp4, mxfp8). */
  mode?: QuantMode;
  /** `--formats`: the only quantized formats any strategy may use (parseFormats; default DEFAULT_FORMATS, the affine ones). */
  formats?: readonly QuantFormat[];
  /**
   * `--imatrix` (swan imatrix): per-input-channel E[x²] of the model's layers. It replaces the
   * norm-gain prior in the budget's measured errors (weighted by it) and in `--rounding search`.
   */
  imatrix?: string;
  dtype?: FloatDType;
  rules?: QuantRules;
  /** Use decisions from this manifest (swan's or the reference tool's) instead of analysing; with budget, its measurements. */
  manifestFile?: string;
  seed?: number;
  swan?: SwanConfig;
  /** Score protected tensors too (reference behaviour; they stay 16-bit either way). */
  scoreProtected?: boolean;
  /** Thresholds strategy: skip the SVD/output metrics of tensors whose bits the cheap metrics decide. */
  skipDecided?: boolean;
  /** Keep going when a tensor holds NaN/±Inf or overflows the dtype, and record it (default false: refuse). */
  allowNonFinite?: boolean;
  overwrite?: boolean;
  maxShardBytes?: number;
  onAnalyze?: AnalyzeOptions['onTensor'];
  onWrite?: (done: number, total: number, name: string) => void;
  /** What quantizeModel removed or took over beside the output (a killed run's leftovers); default: stderr. */
  onNotice?: Notice;
}

/** QuantizeOptions with every default filled in: what the stages below receive. */
export type ResolvedOptions = Required<Omit<QuantizeOptions, 'target' | 'knobs' | 'dtype' | 'manifestFile' | 'imatrix' | 'onAnalyze' | 'onWrite' | 'onNotice'>> &
  Pick<QuantizeOptions, 'target' | 'knobs' | 'dtype' | 'manifestFile' | 'imatrix' | 'onAnalyze' | 'onWrite' | 'onNotice'>;

/** Fill in the defaults and check the combination; called once per library call. */
export function resolveQuantizeOptions(o: QuantizeOptions): ResolvedOptions {
  const strategy = o.strategy ?? (o.target ? 'budget' : DEFAULTS.strategy);
  if (strategy === 'budget' && !o.target) throw new Error('the budget strategy needs a target (--target-bpw or --target-size)');
  if (strategy !== 'budget' && o.target) throw new Error(`a size target needs the budget strategy (got --strategy ${strategy})`);
  const swan = o.swan ?? DEFAULT_SWAN_CONFIG;
  validateSwanConfig(swan);
  const mode = o.mode ?? 'affine';
  let bits = o.bits ?? DEFAULTS.bits;
  let groupSize = o.groupSize ?? DEFAULTS.groupSize;
  if (mode !== 'affine') {
    // As mx.quantize: each fp mode has one bits and one group size (mlx_lm.convert's defaults for it).
    if (strategy !== 'uniform') throw new Error(`--q-mode ${mode} applies to --uniform; the other strategies choose fp formats through --formats`);
    const spec = FP_MODE_SPEC[mode];
    if (!spec) throw new Error(`unknown --q-mode ${String(mode)}`);
    if (o.bits !== undefined && o.bits !== spec.bits) throw new Error(`--q-mode ${mode} quantizes to ${spec.bits} bits (got --q-bits ${o.bits})`);
    if (o.groupSize !== undefined && o.groupSize !== spec.groupSize) throw new Error(`--q-mode ${mode} requires group size ${spec.groupSize} (got --q-group-size ${o.groupSize})`);
    bits = spec.bits;
    groupSize = spec.groupSize;
  }
  else if (!AFFINE_GROUP_SIZES.includes(groupSize)) throw new Error(`affine quantization takes group size ${AFFINE_GROUP_SIZES.join(', ')} (got ${groupSize}; 16 is nvfp4's)`);
  if (o.formats !== undefined && o.formats.length === 0) throw new Error('--formats allows no format');
  return {
    ...o,
    strategy,
    mode,
    // The budget's default candidates are the affine ones; uniform/thresholds name their format themselves.
    formats: o.formats ?? (strategy === 'budget' ? DEFAULT_FORMATS : ALL_QUANT_FORMATS),
    rounding: o.rounding ?? DEFAULTS.rounding,
    weighting: o.weighting ?? DEFAULTS.weighting,
    keepFloat: o.keepFloat ?? [],
    atLeast8: o.atLeast8 ?? [],
    budgetKeepsProtected: o.budgetKeepsProtected ?? DEFAULTS.budgetKeepsProtected,
    bits,
    groupSize,
    rules: o.rules ?? DEFAULTS.rules,
    seed: o.seed ?? DEFAULTS.seed,
    swan,
    scoreProtected: o.scoreProtected ?? DEFAULTS.scoreProtected,
    skipDecided: o.skipDecided ?? DEFAULTS.skipDecided,
    allowNonFinite: o.allowNonFinite ?? DEFAULTS.allowNonFinite,
    overwrite: o.overwrite ?? false,
    maxShardBytes: o.maxShardBytes ?? DEFAULTS.maxShardBytes,
  };
}

export interface PlanResult {
  source: ModelSource;
  plan: Plan;
  analysis?: ModelAnalysis;
  manifest?: Manifest;
  /** How the plan is written (rounding, weighting, rules). */
  exec: ManifestExecution & { rules: QuantRules };
}

/** Plan the formats of a model (analysing it unless a manifest or the uniform strategy is given). */
export function planModel(dir: string, options: QuantizeOptions): PlanResult {
  return planResolved(dir, resolveQuantizeOptions(options));
}

function planResolved(dir: string, o: ResolvedOptions): PlanResult {
  const exec = { rounding: o.rounding, weighting: o.weighting, rules: o.rules, imatrix: o.imatrix };
  if (o.strategy === 'uniform') {
    const source = openModel(dir, { dtype: o.dtype });
    const items = source.entries.map(({ info, record }) => ({ record, shape: info.shape }));
    if (o.imatrix !== undefined) readImatrix(o.imatrix, source); // refuse another model's before writing
    return { source, plan: planUniform(items, source.dtype, { bits: o.bits, groupSize: o.groupSize, mode: o.mode, allowedFormats: o.formats }), exec };
  }
  if (o.imatrix !== undefined && o.manifestFile) throw new Error('--imatrix changes the measurements: give it to `swan analyze` or quantize without --manifest');
  if (o.strategy === 'budget' && o.manifestFile) return { ...replanFromManifest(dir, o.manifestFile, o), exec };
  if (o.manifestFile) {
    const file = o.manifestFile;
    const stored = readManifestFile(file);
    const source = openModel(dir, { dtype: o.dtype });
    checkManifestMatches(stored, file, modelTensors(source));
    const decisions = manifestDecisions(stored, file);
    const items = source.entries.map(({ info, record }) => ({ record, shape: info.shape, decision: decisions.get(info.name)! }));
    return { source, plan: planThresholds(items, source.dtype, thresholdsOptions(o)), exec };
  }
  const analysis = analyzeModel(dir, {
    seed: o.seed,
    swan: o.swan,
    dtype: o.dtype,
    rules: o.rules,
    // Only the budget strategy uses the candidate measurements, and only --rounding search its error.
    measureCandidates: o.strategy === 'budget',
    measureSearch: o.rounding === 'search',
    weighting: o.weighting,
    imatrix: o.imatrix,
    scoreProtected: o.scoreProtected,
    // The budget strategy weighs every tensor by its composite, so only thresholds may skip.
    skipDecided: o.strategy === 'thresholds' && o.skipDecided,
    allowNonFinite: o.allowNonFinite,
    onTensor: o.onAnalyze,
  });
  const plan = planFromAnalysis(analysis, o);
  return { source: analysis.source, plan, analysis, manifest: buildManifest(analysis, plan, exec), exec };
}

/** The plan of an analysis under the thresholds or budget strategy. */
function planFromAnalysis(analysis: ModelAnalysis, o: ResolvedOptions): Plan {
  const { source } = analysis;
  if (o.strategy === 'budget') {
    const items: BudgetItem[] = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, composite: a.composite, candidates: a.candidates }));
    return planBudget(items, source.dtype, budgetOptions(o, source));
  }
  const items = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, decision: swanDecision(a, analysis.swan) }));
  return planThresholds(items, source.dtype, thresholdsOptions(o));
}

function modelTensors(source: ModelSource): { name: string; shape: number[] }[] {
  return source.entries.map((e) => ({ name: e.info.name, shape: e.info.shape }));
}

function thresholdsOptions(o: ResolvedOptions) {
  return { groupSize: o.groupSize, swan: o.swan, keepFloat: o.keepFloat, atLeast8: o.atLeast8, allowedFormats: o.formats };
}

function budgetOptions(o: ResolvedOptions, source: ModelSource): BudgetOptions {
  return {
    target: o.target!,
    rounding: o.rounding,
    totalLayers: source.totalLayers,
    tied: source.tied,
    kvShare: kvShare(source),
    knobs: o.knobs,
    eligibility: { swanRules: o.budgetKeepsProtected ? o.swan : undefined, keepFloat: o.keepFloat, atLeast8: o.atLeast8, allowedFormats: o.formats },
  };
}

/** Budget plan from a manifest's stored measurements: seconds, no pass over the weights. */
function replanFromManifest(dir: string, file: string, o: ResolvedOptions): { source: ModelSource; plan: Plan; manifest: Manifest } {
  const stored = readManifestFile(file);
  const meas = manifestMeasurements(stored, file);
  const source = openModel(dir, { dtype: o.dtype });
  checkManifestMatches(stored, file, modelTensors(source));
  if (meas.dtype !== source.dtype) {
    throw new SwanError(file, `was measured in ${DTYPE_NAMES[meas.dtype]} but the model is written in ${DTYPE_NAMES[source.dtype]}; pass --dtype ${DTYPE_NAMES[meas.dtype]} or analyse again`);
  }
  if (meas.rules !== o.rules) throw new SwanError(file, `was measured with --mlx-rules ${meas.rules}, not ${o.rules}; pass --mlx-rules ${meas.rules} or analyse again`);
  if (o.rounding === 'search' && !meas.search) throw new SwanError(file, 'has no --rounding search measurements; run `swan analyze` again without --no-search-errors');
  // The weighting changes only the search's measured errors; an RTN plan does not depend on it.
  if (o.rounding === 'search' && meas.weighting !== o.weighting) {
    throw new SwanError(file, `was measured with --weighting ${meas.weighting}, not ${o.weighting}; pass --weighting ${meas.weighting} or analyse again`);
  }
  const items: BudgetItem[] = source.entries.map(({ info, record }) => {
    // checkManifestMatches above: every tensor of the model is in the manifest.
    const m = meas.tensors.get(info.name)!;
    if (!m.candidates && measurableFormats(record, info.shape).length > 0) throw new SwanError(file, `has no candidate measurements for tensor ${info.name}`);
    return { record, shape: info.shape, composite: m.composite, candidates: m.candidates ?? [] };
  });
  const plan = planBudget(items, source.dtype, budgetOptions(o, source));
  return { source, plan, manifest: replanManifest(stored, plan, { rounding: o.rounding, weighting: o.weighting }) };
}

/**
 * `swan analyze`: every score and every candidate measurement, with SWAN's thresholds plan as the
 * manifest's formats. Never skips metrics (the manifest is the full evidence).
 */
export function analyzeToManifest(
  dir: string,
  options: QuantizeOptions & { measureSearch?: boolean } = {},
): { analysis: ModelAnalysis; plan: Plan; manifest: Manifest } {
  const o = resolveQuantizeOptions({ ...options, strategy: 'thresholds', target: undefined });
  const analysis = analyzeModel(dir, {
    seed: o.seed,
    swan: o.swan,
    dtype: o.dtype,
    rules: o.rules,
    measureSearch: options.measureSearch ?? true,
    weighting: o.weighting,
    imatrix: o.imatrix,
    scoreProtected: o.scoreProtected,
    allowNonFinite: o.allowNonFinite,
    // Nothing writes after `swan analyze`: it reads what it does not score, to count non-finite values.
    checkEveryTensor: true,
    onTensor: o.onAnalyze,
  });
  const plan = planFromAnalysis(analysis, o);
  return { analysis, plan, manifest: buildManifest(analysis, plan, { rounding: o.rounding, weighting: o.weighting, imatrix: o.imatrix }) };
}

function baseModelId(config: Record<string, unknown>): string | undefined {
  const id = config._name_or_path;
  return typeof id === 'string' && /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(id) ? id : undefined;
}

export interface QuantizeResult extends PlanResult {
  outDir: string;
  bytes: number;
  shards: string[];
  /** Written tensors holding NaN/±Inf or overflowing the dtype (only with allowNonFinite), by HF name. */
  nonfinite: Map<string, NonFiniteCounts>;
  /** Files of the model directory not copied (writeMlxModel), one line each. */
  warnings: string[];
}

/** The manifest as JSON.stringify(m, null, 2) + '\n', streamed: no single string of it. */
function writeManifestFile(file: string, manifest: Manifest): void {
  const fd = openSync(file, 'w');
  try {
    writePrettyJsonFd(fd, manifest);
  } finally {
    closeSync(fd);
  }
}

/**
 * `swan quantize`: claim the output (checked and locked before any analysis), plan, then write the
 * MLX directory atomically.
 */
export function quantizeModel(dir: string, outDir: string, options: QuantizeOptions): QuantizeResult {
  const target = resolve(outDir);
  const o = resolveQuantizeOptions(options);
  const out = claimOutputDir(target, { overwrite: o.overwrite, input: dir, onNotice: o.onNotice });
  try {
    const planned = planResolved(dir, o);
    const { source, plan, manifest, exec } = planned;
    return out.write((tmp) => {
      const { bytes, shards, nonfinite, warnings } = writeMlxModel(source, plan, tmp, {
        ...exec,
        maxShardBytes: o.maxShardBytes,
        allowNonFinite: o.allowNonFinite,
        onTensor: o.onWrite,
      });
      // The writer read every written tensor: its counts are the complete ones.
      if (manifest) recordNonFinite(manifest, nonfinite);
      if (manifest) writeManifestFile(join(tmp, MANIFEST_FILE), manifest);
      const card = modelCard({
        plan,
        rounding: exec.rounding,
        manifest,
        modelType: source.modelType,
        baseModel: baseModelId(source.hf.config),
        outputName: basename(target),
        seed: manifest?.seed,
        nonfinite,
      });
      writeFileSync(join(tmp, 'README.md'), card);
      return { ...planned, outDir: target, bytes, shards, nonfinite, warnings };
    });
  } finally {
    out.release();
  }
}
