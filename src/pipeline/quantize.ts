/**
 * The library's entry points: analyse, plan, write. Options are resolved once here (DEFAULTS in
 * src/options.ts) and each stage gets explicit values.
 */
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { kvShare, openModel, type ModelSource } from '../arch/source.js';
import { SwanError } from '../errors.js';
import { claimOutputDir } from '../io/atomic-dir.js';
import { allowedRoots, modelFileProblem, readRegularText } from '../io/input-file.js';
import type { Notice } from '../io/cleanup.js';
import { DTYPE_NAMES, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import { writePrettyJsonFd } from '../io/json-stream.js';
import { buildManifest, recordGptq, recordNonFinite, replanManifest, type GptqChoice, type ManifestExecution } from '../manifest/build.js';
import { checkManifestMatches, manifestDecisions, manifestMeasurements, readManifestFile } from '../manifest/read.js';
import { MANIFEST_FILE, type Manifest } from '../manifest/schema.js';
import type { AnalyzeOptions, ModelAnalysis } from '../measure/analyze.js';
import { checkGptqImatrix, imatrixHasCovariance, readImatrix } from '../measure/imatrix.js';
import { AFFINE_GROUP_SIZES, ALL_QUANT_FORMATS, DEFAULT_FORMATS, FP_MODE_SPEC, type QuantFormat, type QuantMode } from '../format.js';
import { DEFAULTS, roundsWithSearch, type InputWeighting, type QuantRecipe, type QuantRules, type Rounding, type Strategy } from '../options.js';
import { planBudget, type BudgetItem, type BudgetOptions } from '../plan/budget.js';
import { damageKnobsFor, type DamageKnobs } from '../plan/damage.js';
import { measurableFormats, unmatchedPins, type TensorPin } from '../plan/eligibility.js';
import { fragileWarnings } from '../plan/fragile.js';
import { planTotals, type Plan } from '../plan/plan.js';
import { DEFAULT_SWAN_CONFIG, swanDecision, validateSwanConfig, type SwanConfig } from '../plan/swan-rules.js';
import type { SizeTarget } from '../plan/target.js';
import { planThresholds } from '../plan/thresholds.js';
import { planUniform } from '../plan/uniform.js';
import { cardLicense, modelCard } from '../report/model-card.js';
import { analyzeModelJobs, type EarlyEncoding } from './parallel-analysis.js';
import { EARLY_ENCODE_MAX_BYTES, type EarlyEncoded } from './early-encode.js';
import { modelSize, WorkerPool, workerJobs } from './worker-pool.js';
import { writeMlxModel } from './write-mlx.js';

export { MANIFEST_FILE };

export interface QuantizeOptions {
  /**
   * thresholds: SWAN as published; uniform: mlx_lm.convert -q; budget: least expected damage within
   * `target`. Default: budget (without a target: at the bytes SWAN's thresholds would write), except
   * with `manifestFile` and no target: thresholds, from the manifest's decisions.
   */
  strategy?: Strategy;
  /** Size target of the budget strategy (`--target-bpw` / `--target-size`); bytes count tensors only (weights, scales, biases, float tensors). Default: the thresholds plan's bytes. */
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
  /** `--tensor-type PATTERN=FORMAT` pins, honoured by every strategy (src/plan/eligibility.ts). */
  pins?: TensorPin[];
  /** Budget strategy: also keep SWAN's built-in protected names (embeddings, head, norms) in float. */
  budgetKeepsProtected?: boolean;
  /** Uniform bits (`--q-bits`; with an fp `mode`, default and only value the mode's). */
  bits?: number;
  /** Uniform strategy: mlx_lm.convert's `--quant-predicate` recipe (bits per layer). */
  recipe?: QuantRecipe;
  /** `--q-group-size`: uniform group, and SWAN's 4-bit group (with an fp `mode`, the mode's). */
  groupSize?: number;
  /** `--q-mode` of the uniform strategy: affine (default) or an MLX fp mode (mxfp4, nvfp4, mxfp8). */
  mode?: QuantMode;
  /** `--formats`: the only quantized formats any strategy may use (parseFormats; default DEFAULT_FORMATS, the affine ones). */
  formats?: readonly QuantFormat[];
  /**
   * `--imatrix` (swan imatrix): per-input-channel E[x²] of the model's layers. It replaces the
   * norm-gain prior in `--rounding search` (how each group is rounded); the plan is the data-free
   * one (docs/allocation.md §8: weighting the budget's measurements by it made the model worse).
   */
  imatrix?: string;
  dtype?: FloatDType;
  rules?: QuantRules;
  /** Use decisions from this manifest (swan's or the reference tool's) instead of analysing; with budget, its measurements. */
  manifestFile?: string;
  /**
   * Plan from this analysis of the same model (analyzeModel / analyzeModelAsync) instead of
   * analysing again; its seed and SWAN configuration are the ones used.
   */
  analysis?: ModelAnalysis;
  seed?: number;
  swan?: SwanConfig;
  /** Score protected tensors too (reference behaviour; they stay 16-bit either way). */
  scoreProtected?: boolean;
  /**
   * Tensors analysed, then encoded, at once, each in a worker thread on the installed backend's kind
   * (`--jobs`; src/pipeline/parallel-analysis.ts, src/pipeline/parallel-encode.ts). Default: 2 within
   * the backend's threads (1 for toy models: workerJobs); 1: in this thread. The result is the same for any value.
   */
  jobs?: number;
  /** Thresholds strategy: skip the SVD/output metrics of tensors whose bits the cheap metrics decide. */
  skipDecided?: boolean;
  /** Keep going when a tensor holds NaN/±Inf or overflows the dtype, and record it (default false: refuse). */
  allowNonFinite?: boolean;
  overwrite?: boolean;
  /** The card's `base_model` (a Hub id); default: config.json's `_name_or_path` when it looks like one. */
  baseModel?: string;
  /** The Hub repo the output is meant for (`--upload-repo`): the card's usage snippet loads it. */
  repoId?: string;
  maxShardBytes?: number;
  onAnalyze?: AnalyzeOptions['onTensor'];
  onWrite?: (done: number, total: number, name: string) => void;
  /** What quantizeModel removed or took over beside the output (a killed run's leftovers); default: stderr. */
  onNotice?: Notice;
}

/** QuantizeOptions with every default filled in: what the stages below receive. */
type Unresolved =
  | 'target' | 'knobs' | 'dtype' | 'manifestFile' | 'analysis' | 'imatrix' | 'onAnalyze' | 'onWrite' | 'onNotice'
  | 'baseModel' | 'repoId' | 'recipe' | 'jobs';
export type ResolvedOptions = Required<Omit<QuantizeOptions, Unresolved>> &
  Pick<QuantizeOptions, Unresolved> & {
    /** Whether the caller chose the group size (a recipe's config.json records null otherwise, as convert does). */
    groupSizeGiven: boolean;
  };

/** Fill in the defaults and check the combination; called once per library call. */
export function resolveQuantizeOptions(o: QuantizeOptions): ResolvedOptions {
  const strategy = o.strategy ?? (o.target ? 'budget' : o.manifestFile ? 'thresholds' : DEFAULTS.strategy);
  if (strategy !== 'budget' && o.target) throw new Error(`a size target needs the budget strategy (got --strategy ${strategy})`);
  if (o.analysis && o.manifestFile) throw new Error('give an analysis or a manifest to plan from, not both');
  if (o.recipe && strategy !== 'uniform') throw new Error(`a --quant-predicate recipe needs the uniform strategy (-q), not ${strategy}`);
  const swan = o.swan ?? o.analysis?.swan ?? DEFAULT_SWAN_CONFIG;
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
    rounding: o.rounding ?? defaultRounding(strategy, o.imatrix),
    weighting: o.weighting ?? DEFAULTS.weighting,
    keepFloat: o.keepFloat ?? [],
    atLeast8: o.atLeast8 ?? [],
    pins: o.pins ?? [],
    budgetKeepsProtected: o.budgetKeepsProtected ?? DEFAULTS.budgetKeepsProtected,
    bits,
    groupSize,
    groupSizeGiven: o.groupSize !== undefined,
    rules: o.rules ?? DEFAULTS.rules,
    seed: o.seed ?? o.analysis?.seed ?? DEFAULTS.seed,
    swan,
    scoreProtected: o.scoreProtected ?? DEFAULTS.scoreProtected,
    skipDecided: o.skipDecided ?? DEFAULTS.skipDecided,
    allowNonFinite: o.allowNonFinite ?? DEFAULTS.allowNonFinite,
    overwrite: o.overwrite ?? false,
    maxShardBytes: o.maxShardBytes ?? DEFAULTS.maxShardBytes,
  };
}

/**
 * The rounding when `--rounding` is not given: the budget's is the search, or GPTQ when the
 * `--imatrix` file has covariances; the other strategies' is MLX's own (bit-exact with mlx_lm.convert).
 */
function defaultRounding(strategy: Strategy, imatrix: string | undefined): Rounding {
  if (strategy !== 'budget') return DEFAULTS.rounding;
  return imatrix !== undefined && imatrixHasCovariance(imatrix) ? DEFAULTS.covarianceRounding : DEFAULTS.budgetRounding;
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
export function planModel(dir: string, options: QuantizeOptions = {}): PlanResult {
  return planResolved(dir, resolveQuantizeOptions(options));
}

function planResolved(dir: string, o: ResolvedOptions, pool?: WorkerPool, early?: EarlyEncoding): PlanResult {
  const planned = planUnchecked(dir, o, pool, early);
  const bad = unmatchedPins(planned.plan.entries.map((e) => e.hfName), o.pins);
  if (bad.length) throw new Error(`--tensor-type ${bad[0]!.pattern}: matches no tensor of the model`);
  return planned;
}

/**
 * `pool`: workers for the analysis, if any (else analyzeModelJobs starts its own when o.jobs asks);
 * `early`: encode entries in the analysis (thresholds strategy only; early-encode.ts).
 */
function planUnchecked(dir: string, o: ResolvedOptions, pool?: WorkerPool, early?: EarlyEncoding): PlanResult {
  const exec = { rounding: o.rounding, weighting: o.weighting, rules: o.rules, imatrix: o.imatrix };
  // Refuse another model's imatrix, or gptq without covariances, before any work.
  const imatrix = o.imatrix === undefined ? undefined : readImatrix(o.imatrix, openModel(dir, { dtype: o.dtype }));
  checkGptqImatrix(o.rounding, imatrix);
  if (o.strategy === 'uniform') {
    const source = openModel(dir, { dtype: o.dtype });
    const items = source.entries.map(({ info, record }) => ({ record, shape: info.shape, rule: record.modulePath ? source.arch.quantRule(record.modulePath) : undefined }));
    return { source, plan: planUniform(items, source.dtype, {
      bits: o.bits,
      groupSize: o.groupSize,
      mode: o.mode,
      recipe: o.recipe,
      groupSizeGiven: o.groupSizeGiven,
      totalLayers: source.totalLayers,
      eligibility: { pins: o.pins, allowedFormats: o.formats },
    }), exec };
  }
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
  if (o.analysis) {
    const analysis = checkedAnalysis(dir, o.analysis, o);
    const plan = planFromAnalysis(analysis, o);
    return { source: analysis.source, plan, analysis, manifest: buildManifest(analysis, plan, exec), exec };
  }
  const analysis = analyzeModelJobs(dir, {
    seed: o.seed,
    swan: o.swan,
    dtype: o.dtype,
    rules: o.rules,
    // Only the budget strategy uses the candidate measurements, and only --rounding search its error.
    measureCandidates: o.strategy === 'budget',
    measureSearch: roundsWithSearch(o.rounding),
    // Only the formats the plan may take (measuring MLX's fp modes costs a fifth of a small model's run).
    measureFormats: o.formats,
    // The plan stays data-free: an imatrix only weighs the search that writes (QuantizeOptions.imatrix).
    weighting: o.weighting,
    scoreProtected: o.scoreProtected,
    // The budget strategy weighs every tensor by its composite, so only thresholds may skip.
    skipDecided: o.strategy === 'thresholds' && o.skipDecided,
    allowNonFinite: o.allowNonFinite,
    onTensor: o.onAnalyze,
  }, o.jobs, pool, o.strategy === 'thresholds' ? early : undefined);
  const plan = planFromAnalysis(analysis, o);
  return { source: analysis.source, plan, analysis, manifest: buildManifest(analysis, plan, exec), exec };
}

/** An analysis given to plan from: of this model, with what the strategy and rounding need. */
function checkedAnalysis(dir: string, analysis: ModelAnalysis, o: ResolvedOptions): ModelAnalysis {
  const where = `analysis of ${analysis.source.hf.dir}`;
  if (resolve(analysis.source.hf.dir) !== resolve(dir)) throw new SwanError(where, `is not of ${dir}`);
  if (o.dtype !== undefined && o.dtype !== analysis.source.dtype) throw new SwanError(where, `was made in ${DTYPE_NAMES[analysis.source.dtype]}, not ${DTYPE_NAMES[o.dtype]}`);
  if (o.strategy === 'budget') {
    const m = analysis.measure;
    if (!m) throw new SwanError(where, 'has no candidate measurements (analyse with measureCandidates)');
    if (m.rules !== o.rules) throw new SwanError(where, `was measured with rules ${m.rules}, not ${o.rules}`);
    if (roundsWithSearch(o.rounding) && !m.search) throw new SwanError(where, 'has no rounding-search measurements (analyse with measureSearch)');
    if (roundsWithSearch(o.rounding) && m.weighting !== o.weighting) throw new SwanError(where, `was measured with weighting ${m.weighting}, not ${o.weighting}`);
  }
  return analysis;
}

/** The plan of an analysis under the thresholds or budget strategy. */
function planFromAnalysis(analysis: ModelAnalysis, o: ResolvedOptions): Plan {
  const { source } = analysis;
  const decided = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, decision: swanDecision(a, analysis.swan) }));
  if (o.strategy === 'budget') {
    const items: BudgetItem[] = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, composite: a.composite, candidates: a.candidates }));
    return planBudget(items, source.dtype, budgetOptions(o, source, decided));
  }
  return planThresholds(decided, source.dtype, thresholdsOptions(o));
}

/**
 * The budget's target: the user's, or by default the bytes of the thresholds plan of the same
 * decisions and options. Why that size: it is what SWAN as published writes (users of the method
 * get no bigger files), and at exactly those bytes the budget's allocation lost +1.1% perplexity
 * on SmolLM2-135M where the thresholds output lost +27.5% (docs/quality.md).
 */
function defaultTarget(o: ResolvedOptions, dtype: FloatDType, decided: Parameters<typeof planThresholds>[0]): { target: SizeTarget; targetFrom: 'user' | 'thresholds' } {
  if (o.target) return { target: o.target, targetFrom: 'user' };
  return { target: { bytes: planTotals(planThresholds(decided, dtype, thresholdsOptions(o))).bytes }, targetFrom: 'thresholds' };
}

function modelTensors(source: ModelSource): { name: string; shape: number[] }[] {
  return source.entries.map((e) => ({ name: e.info.name, shape: e.info.shape }));
}

function thresholdsOptions(o: ResolvedOptions) {
  return { groupSize: o.groupSize, swan: o.swan, keepFloat: o.keepFloat, atLeast8: o.atLeast8, pins: o.pins, allowedFormats: o.formats };
}

function budgetOptions(o: ResolvedOptions, source: ModelSource, decided: Parameters<typeof planThresholds>[0]): BudgetOptions {
  return {
    ...defaultTarget(o, source.dtype, decided),
    rounding: o.rounding,
    totalLayers: source.totalLayers,
    tied: source.tied,
    kvShare: kvShare(source),
    knobs: o.knobs ?? damageKnobsFor(source.modelType),
    eligibility: { swanRules: o.budgetKeepsProtected ? o.swan : undefined, keepFloat: o.keepFloat, atLeast8: o.atLeast8, pins: o.pins, protectRouters: true, allowedFormats: o.formats },
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
  if (roundsWithSearch(o.rounding) && !meas.search) throw new SwanError(file, 'has no --rounding search measurements; run `swan analyze` again without --no-search-errors');
  // The weighting changes only the search's measured errors; an RTN plan does not depend on it.
  if (roundsWithSearch(o.rounding) && meas.weighting !== o.weighting) {
    throw new SwanError(file, `was measured with --weighting ${meas.weighting}, not ${o.weighting}; pass --weighting ${meas.weighting} or analyse again`);
  }
  const decisions = manifestDecisions(stored, file);
  const decided = source.entries.map(({ info, record }) => ({ record, shape: info.shape, decision: decisions.get(info.name)! }));
  const items: BudgetItem[] = source.entries.map(({ info, record }) => {
    // checkManifestMatches above: every tensor of the model is in the manifest.
    const m = meas.tensors.get(info.name)!;
    if (!m.candidates && measurableFormats(record, info.shape).length > 0) throw new SwanError(file, `has no candidate measurements for tensor ${info.name}`);
    return { record, shape: info.shape, composite: m.composite, candidates: m.candidates ?? [] };
  });
  const plan = planBudget(items, source.dtype, budgetOptions(o, source, decided));
  return { source, plan, manifest: replanManifest(stored, plan, { rounding: o.rounding, weighting: o.weighting, imatrix: o.imatrix }) };
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
  const analysis = analyzeModelJobs(dir, {
    seed: o.seed,
    swan: o.swan,
    dtype: o.dtype,
    rules: o.rules,
    measureSearch: options.measureSearch ?? true,
    weighting: o.weighting,
    scoreProtected: o.scoreProtected,
    allowNonFinite: o.allowNonFinite,
    // Nothing writes after `swan analyze`: it reads what it does not score, to count non-finite values.
    checkEveryTensor: true,
    onTensor: o.onAnalyze,
  }, o.jobs);
  const plan = planFromAnalysis(analysis, o);
  const manifest = buildManifest(analysis, plan, { rounding: o.rounding, weighting: o.weighting });
  manifest.plan!.written = false;
  return { analysis, plan, manifest };
}

function baseModelId(config: Record<string, unknown>): string | undefined {
  const id = config._name_or_path;
  return typeof id === 'string' && /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(id) ? id : undefined;
}

/** The license of the source's model card (README.md front matter), read as any model file (inside the directory, regular). */
function sourceLicense(dir: string): string | undefined {
  const readme = join(dir, 'README.md');
  if (!existsSync(readme) || modelFileProblem(readme, allowedRoots(dir))) return undefined;
  try {
    return cardLicense(readRegularText(readme, 'README.md', 1 << 20));
  } catch {
    return undefined; // an oversized or vanished card: no license to copy, not a reason to stop
  }
}

export interface QuantizeResult extends PlanResult {
  outDir: string;
  bytes: number;
  shards: string[];
  /** Written tensors holding NaN/±Inf or overflowing the dtype (only with allowNonFinite), by HF name. */
  nonfinite: Map<string, NonFiniteCounts>;
  /** `--rounding gptq`: what GPTQ did with each tensor it rounded, by HF name (src/mlx/gptq.ts). */
  gptq: Map<string, GptqChoice>;
  /** Files of the model directory not copied (writeMlxModel), one line each. */
  warnings: string[];
}

/**
 * Encoding in the analysis (early-encode.ts) for a thresholds plan rounded as MLX does, when the
 * source's tensors take at most EARLY_ENCODE_MAX_BYTES: their output then waits in memory
 * for the writer instead of being read and decoded again.
 */
function earlyEncoding(o: ResolvedOptions, source: ModelSource): (EarlyEncoding & { byName: Map<string, EarlyEncoded> }) | undefined {
  if (o.strategy !== 'thresholds' || o.rounding !== 'rtn' || o.manifestFile || o.analysis) return undefined;
  if (source.entries.reduce((s, e) => s + e.info.byteLength, 0) > EARLY_ENCODE_MAX_BYTES) return undefined;
  const byName = new Map<string, EarlyEncoded>();
  const exec = { dtype: source.dtype, rules: o.rules, rounding: o.rounding, allow: o.allowNonFinite };
  return { spec: { exec, thresholds: thresholdsOptions(o) }, onEncoded: (name, e) => byName.set(name, e), byName };
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
 * `swan quantize`: claim the output (checked and locked before any analysis), plan (or take
 * `planned`, a planModel result of the same model: nothing is analysed again), then write the MLX
 * directory atomically.
 */
export function quantizeModel(dir: string, outDir: string, options: QuantizeOptions & { planned?: PlanResult } = {}): QuantizeResult {
  const target = resolve(outDir);
  const { planned: given, ...rest } = options;
  if (given && resolve(given.source.hf.dir) !== resolve(dir)) throw new SwanError(`plan of ${given.source.hf.dir}`, `is not of ${dir}`);
  const o = resolveQuantizeOptions(given ? { ...rest, strategy: given.plan.strategy, target: undefined } : rest);
  const out = claimOutputDir(target, { overwrite: o.overwrite, input: dir, onNotice: o.onNotice });
  // One set of workers for the analysis and then the encoding: the second stage does not start them again.
  let pool: WorkerPool | undefined;
  try {
    const opened = given?.source ?? openModel(dir, { dtype: o.dtype });
    const jobs = workerJobs(o.jobs, modelSize(opened));
    if (jobs > 1) pool = new WorkerPool(jobs);
    const early = given ? undefined : earlyEncoding(o, opened);
    const planned = given ?? planResolved(dir, o, pool, early);
    const { source, plan, manifest, exec } = planned;
    return out.write((tmp) => {
      const { bytes, shards, nonfinite, gptq, warnings } = writeMlxModel(source, plan, tmp, {
        ...exec,
        maxShardBytes: o.maxShardBytes,
        allowNonFinite: o.allowNonFinite,
        pool,
        early: early && { exec: early.spec.exec, byName: early.byName },
        onTensor: o.onWrite,
      });
      // The writer read every written tensor: its counts are the complete ones.
      if (manifest) recordNonFinite(manifest, nonfinite);
      if (manifest) recordGptq(manifest, gptq);
      if (manifest) writeManifestFile(join(tmp, MANIFEST_FILE), manifest);
      const card = modelCard({
        plan,
        rounding: exec.rounding,
        manifest,
        modelType: source.modelType,
        baseModel: o.baseModel ?? baseModelId(source.hf.config),
        license: sourceLicense(source.hf.dir),
        repoId: o.repoId,
        outputName: basename(target),
        seed: manifest?.seed,
        nonfinite,
        warnings: fragileWarnings(plan, source.tied),
      });
      writeFileSync(join(tmp, 'README.md'), card);
      return { ...planned, outDir: target, bytes, shards, nonfinite, gptq, warnings };
    });
  } finally {
    pool?.close();
    out.release();
  }
}
