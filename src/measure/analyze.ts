/**
 * The analysis: evidence only. Every tensor's SWAN scores (src/metrics) and, for the budget
 * strategy, its candidate formats' measured errors (src/measure). What to score follows SWAN's
 * rules (swanFloatRule: 1-D, small and protected tensors need no scores); which formats to measure
 * follows eligibility (measurableFormats). Decisions are the strategies' (src/plan).
 */
import { basename } from 'node:path';
import { openModel, type ModelSource } from '../arch/source.js';
import type { TensorRecord } from '../arch/types.js';
import { formatBytes, type Candidate, type QuantFormat } from '../format.js';
import type { FloatDType, NonFiniteCounts } from '../io/float.js';
import { readTensorF32Checked, threadReadBuffers } from '../io/safetensors.js';
import { measureCandidates, type MeasureOptions } from './candidates.js';
import { inputWeightsFor } from './input-weights.js';
import { checkNonFinite } from './nonfinite.js';
import { computeMetrics, reduceTo2D, type MetricScores, type RawMetrics } from '../metrics/index.js';
import { DEFAULTS, type InputWeighting, type QuantRules } from '../options.js';
import { measurableFormats } from '../plan/eligibility.js';
import {
  classify,
  compositeRange,
  compositeScore,
  decidedWithout,
  DEFAULT_SWAN_CONFIG,
  swanFloatRule,
  validateSwanConfig,
  type Classification,
  type SwanConfig,
  type SwanEvidence,
} from '../plan/swan-rules.js';

/** The analysis of one tensor: pure evidence, no decision (swanDecision in src/plan/swan-rules.ts makes SWAN's). */
export interface TensorAnalysis extends SwanEvidence {
  name: string;
  file: string;
  shape: number[];
  sourceDType: string;
  record: TensorRecord;
  classification: Classification;
  scores: MetricScores;
  raw: RawMetrics | null;
  /** SWAN composite; 0 when not scored, NaN when svd/output sensitivity were skipped (see compositeRange). */
  composite: number;
  /** Measured affine candidates (bytes, relative error) for the budget strategy; [] when not quantizable. */
  candidates: Candidate[];
  /**
   * A stacked MoE tensor: each expert's own analysis (source name, scores, composite, candidates),
   * in expert order. The stack's composite and candidates are combined from them (stackedAnalysis).
   */
  experts?: ExpertAnalysis[];
  seconds: number;
}

/** One expert of a stacked tensor, scored on its own. */
export interface ExpertAnalysis {
  name: string;
  scores: MetricScores;
  composite: number;
  candidates: Candidate[];
}

/**
 * The expert whose composite decides a stacked tensor's format under the thresholds strategy: the
 * upper quartile of its experts' composites (nearest rank), so that the stack gets the precision
 * that at least a quarter of its experts ask for, without one outlier expert deciding for all.
 */
export const STACK_COMPOSITE_QUANTILE = 0.75;

export interface AnalyzeOptions {
  seed?: number;
  swan?: SwanConfig;
  dtype?: FloatDType;
  /** Rules of the MLX quantizer whose error is measured (default metal). */
  rules?: QuantRules;
  /** Measure the candidate formats' errors for the budget strategy (default true). */
  measureCandidates?: boolean;
  /** Measure the error of `--rounding search` too (default true). */
  measureSearch?: boolean;
  /** Measure only these formats (default: every format; MeasureOptions.formats). */
  measureFormats?: readonly QuantFormat[];
  /** What the measured `--rounding search` minimises across input channels (default DEFAULTS.weighting). */
  weighting?: InputWeighting;
  /**
   * Compute the metrics of protected tensors (embeddings, head, norms) too, as the reference does.
   * Default false: they are 16-bit whatever their scores, and the embedding is the most expensive
   * tensor of a model to score.
   */
  scoreProtected?: boolean;
  /**
   * Skip the randomized SVD and the output-noise probe of a tensor when the cheap metrics already
   * decide its bits under the thresholds (default false: the manifest then has every score).
   */
  skipDecided?: boolean;
  /** Keep going when a tensor holds NaN/±Inf or overflows the model dtype (default false: refuse). */
  allowNonFinite?: boolean;
  /**
   * Also read the written tensors the analysis neither scores nor measures, to count their
   * non-finite values (`swan analyze`: nothing else reads them). Default false: the writer does.
   */
  checkEveryTensor?: boolean;
  onTensor?: (done: number, total: number, a: TensorAnalysis) => void;
}

export interface ModelAnalysis {
  source: ModelSource;
  seed: number;
  swan: SwanConfig;
  tensors: TensorAnalysis[];
  /**
   * How the candidates were measured (dtype, rules, whether the search error is there); absent when
   * they were not (only the budget strategy and `swan analyze` need them).
   */
  measure?: MeasureOptions;
  /**
   * Tensors read by the analysis that hold NaN, ±Inf or values beyond the model dtype's range
   * (only with allowNonFinite: otherwise the analysis refuses the first), by HF name.
   */
  nonfinite: Map<string, NonFiniteCounts>;
  seconds: number;
}

const ZERO_SCORES: MetricScores = { svd: 0, kurtosis: 0, output_sensitivity: 0, error_proxy: 0 };

/** How one tensor is analysed (analyzeTensor). */
export interface TensorAnalysisOptions {
  swan: SwanConfig;
  seed: number;
  /** Candidate measurement settings; absent: no candidates. */
  measure?: MeasureOptions;
  scoreProtected?: boolean;
  skipDecided?: boolean;
  /** Per-input-column weights of the measured rounding search (InputWeighting norm). */
  colWeights?: ArrayLike<number>;
}

/**
 * What every tensor's analysis shares: the opened model and the resolved options. Built once per
 * analysis (and once in each worker thread of src/pipeline/parallel-analysis.ts, from the same
 * directory and options: the same context).
 */
export interface AnalysisContext {
  source: ModelSource;
  seed: number;
  swan: SwanConfig;
  measure?: MeasureOptions;
  colWeights: (record: TensorRecord, cols: number) => Float64Array | undefined;
  allowNonFinite: boolean;
  scoreProtected: boolean;
  skipDecided?: boolean;
  checkEveryTensor?: boolean;
}

export function analysisContext(dir: string, opts: Omit<AnalyzeOptions, 'onTensor'>): AnalysisContext {
  const swan = opts.swan ?? DEFAULT_SWAN_CONFIG;
  validateSwanConfig(swan);
  const source = openModel(dir, { dtype: opts.dtype });
  const measure: MeasureOptions | undefined =
    (opts.measureCandidates ?? true)
      ? { dtype: source.dtype, rules: opts.rules ?? DEFAULTS.rules, search: opts.measureSearch ?? true, weighting: opts.weighting ?? DEFAULTS.weighting, ...(opts.measureFormats ? { formats: opts.measureFormats } : {}) }
      : undefined;
  return {
    source,
    seed: opts.seed ?? DEFAULTS.seed,
    swan,
    measure,
    // Only the search's measurement uses the weights: without it no norm vector is read.
    colWeights: inputWeightsFor(source, measure?.search ? measure.weighting : 'none'),
    allowNonFinite: opts.allowNonFinite ?? DEFAULTS.allowNonFinite,
    scoreProtected: opts.scoreProtected ?? DEFAULTS.scoreProtected,
    skipDecided: opts.skipDecided,
    checkEveryTensor: opts.checkEveryTensor,
  };
}

/** The analysis of one entry of the model, and the non-finite counts of the tensors it read. */
export interface EntryAnalysis {
  analysis: TensorAnalysis;
  nonfinite: [string, NonFiniteCounts][];
}

/**
 * Analyse entry `index` of ctx.source.entries: a function of the model, the options and the index
 * alone (seeds follow tensor names), so any thread gives the same result. `onData` gets the weights
 * as read (float32, in the model's dtype; a stacked entry's are not kept) when the analysis read
 * them, after it is done with them: the caller may reuse or change them.
 */
export function analyzeEntry(ctx: AnalysisContext, index: number, onData?: (data: Float32Array) => void): EntryAnalysis {
  const { source, swan, seed, measure } = ctx;
  const { info, record, parts } = source.entries[index]!;
  const t0 = performance.now();
  const nonfinite: [string, NonFiniteCounts][] = [];
  if (parts) {
    const experts = parts.map((part, i) => {
      const load = () => {
        const r = readTensorF32Checked(part, source.dtype, threadReadBuffers());
        const bad = checkNonFinite(part, r.nonfinite, source.dtype, ctx.allowNonFinite);
        if (bad) nonfinite.push([part.name, bad]);
        return r.data;
      };
      // Each expert on its own (its seed follows its own name); none may skip metrics: the stack's quantile needs every composite.
      const expertRecord: TensorRecord = { ...record, hfName: part.name, expert: i, experts: undefined };
      return analyzeTensor(expertRecord, part.shape, load, { swan, seed, measure, scoreProtected: ctx.scoreProtected, colWeights: ctx.colWeights(record, part.shape[part.shape.length - 1] ?? 0) });
    });
    const a = stackedAnalysis(record, info.shape, experts, source.dtype);
    a.file = basename(info.file);
    a.sourceDType = info.dtype;
    a.seconds = (performance.now() - t0) / 1000;
    return { analysis: a, nonfinite };
  }
  // The count comes with the decode: no extra pass; a refusal comes at the first bad tensor read.
  let read = false;
  const load = () => {
    const r = readTensorF32Checked(info, source.dtype, threadReadBuffers());
    read = true;
    const bad = checkNonFinite(info, r.nonfinite, source.dtype, ctx.allowNonFinite);
    if (bad) nonfinite.push([info.name, bad]);
    return r.data;
  };
  let data: Float32Array | undefined;
  const a = analyzeTensor(record, info.shape, () => (data = load()), {
    swan,
    seed,
    measure,
    scoreProtected: ctx.scoreProtected,
    skipDecided: ctx.skipDecided,
    colWeights: ctx.colWeights(record, info.shape[info.shape.length - 1] ?? 0),
  });
  if (!read && ctx.checkEveryTensor && record.mlxName !== null) load();
  a.file = basename(info.file);
  a.sourceDType = info.dtype;
  a.seconds = (performance.now() - t0) / 1000;
  if (data) onData?.(data);
  return { analysis: a, nonfinite };
}

/**
 * Score every tensor of an HF model once, one tensor in memory at a time, in this thread
 * (src/pipeline/parallel-analysis.ts analyses several at once in worker threads, same result).
 */
export function analyzeModel(dir: string, opts: AnalyzeOptions = {}): ModelAnalysis {
  return collectAnalysis(analysisContext(dir, opts), opts.onTensor, (ctx, i) => analyzeEntry(ctx, i));
}

/**
 * The model's analysis from its entries' analyses, taken in model order from `next` (which may
 * compute them ahead, elsewhere): the tensors, the non-finite counts, the progress callbacks.
 */
export function collectAnalysis(ctx: AnalysisContext, onTensor: AnalyzeOptions['onTensor'], next: (ctx: AnalysisContext, index: number) => EntryAnalysis): ModelAnalysis {
  const started = performance.now();
  const { source } = ctx;
  const tensors: TensorAnalysis[] = [];
  const nonfinite = new Map<string, NonFiniteCounts>();
  for (let i = 0; i < source.entries.length; i++) {
    const { analysis, nonfinite: bad } = next(ctx, i);
    for (const [name, counts] of bad) nonfinite.set(name, counts);
    tensors.push(analysis);
    onTensor?.(tensors.length, source.entries.length, analysis);
  }
  return { source, seed: ctx.seed, swan: ctx.swan, tensors, measure: ctx.measure, nonfinite, seconds: (performance.now() - started) / 1000 };
}

/**
 * A stacked tensor's analysis from its experts' (docs/architectures.md): scores are the experts'
 * means (for display), the composite is their STACK_COMPOSITE_QUANTILE, each candidate format has
 * the stack's exact bytes and the mean of the experts' relative errors — the stack's damage is the
 * sum of its experts' damages, each expert weighing 1/E of the stack.
 */
export function stackedAnalysis(record: TensorRecord, shape: number[], experts: TensorAnalysis[], dtype: FloatDType): TensorAnalysis {
  const first = experts[0]!;
  const n = experts.length;
  const mean = (f: (a: TensorAnalysis) => number) => experts.reduce((s, a) => s + f(a), 0) / n;
  const scores: MetricScores = {
    svd: mean((a) => a.scores.svd),
    kurtosis: mean((a) => a.scores.kurtosis),
    output_sensitivity: mean((a) => a.scores.output_sensitivity),
    error_proxy: mean((a) => a.scores.error_proxy),
  };
  const composites = experts.map((a) => a.composite).sort((x, y) => x - y);
  const composite = first.unscored ? 0 : composites[Math.min(n - 1, Math.ceil(STACK_COMPOSITE_QUANTILE * n) - 1)]!;
  const candidates: Candidate[] = first.candidates.map((c, k) => {
    const errs = experts.map((a) => a.candidates[k]!);
    const out: Candidate = { format: c.format, bytes: formatBytes(c.format, shape, dtype), relError: errs.reduce((s, x) => s + x.relError, 0) / n };
    if (c.relErrorSearch !== undefined) out.relErrorSearch = errs.reduce((s, x) => s + (x.relErrorSearch ?? 0), 0) / n;
    return out;
  });
  return {
    name: record.hfName,
    file: '',
    shape,
    sourceDType: '',
    record,
    classification: first.classification,
    scores,
    raw: null,
    composite,
    candidates,
    ...(first.unscored ? { unscored: first.unscored } : {}),
    experts: experts.map((a) => ({ name: a.name, scores: a.scores, composite: a.composite, candidates: a.candidates })),
    seconds: 0,
  };
}

/**
 * Score one tensor (and measure its candidates). Tensors the MLX model drops are not scored; SWAN's
 * float rules (1-D, small, protected unless `scoreProtected`) need no scores either.
 */
export function analyzeTensor(record: TensorRecord, shape: number[], load: () => Float32Array, o: TensorAnalysisOptions): TensorAnalysis {
  const name = record.hfName;
  const base = { name, file: '', shape, sourceDType: '', record, raw: null, candidates: [] as Candidate[], seconds: 0 };
  if (record.mlxName === null) return { ...base, classification: classify(name, o.swan), scores: ZERO_SCORES, composite: 0, unscored: 'dropped_by_mlx' };
  // One read of the weights serves the metrics and the candidate measurements.
  let data: Float32Array | undefined;
  const weights = () => (data ??= load());
  const candidates = () => {
    const formats = o.measure ? measurableFormats(record, shape, o.measure.formats) : [];
    return formats.length > 0 ? measureCandidates(formats, shape, weights(), o.measure!, o.colWeights) : [];
  };
  const rule = swanFloatRule(name, shape, o.swan);
  // The reference treats 1-D tensors as protected.
  const classification = rule === '1d_tensor' ? 'protected' : classify(name, o.swan);
  if (rule && !(rule === 'protected_pattern' && o.scoreProtected)) {
    return { ...base, classification, scores: ZERO_SCORES, composite: 0, unscored: rule, candidates: candidates() };
  }
  const matrix = reduceTo2D(shape, weights());
  const decided = o.skipDecided ? (cheap: { kurtosis: number; error_proxy: number }) => !decidedWithout(cheap, classification, o.swan) : undefined;
  const { scores, raw, skipped } = computeMetrics(matrix, o.seed, name, decided);
  // After the metrics: measuring may cast the weights to the model dtype in place.
  if (skipped) return { ...base, classification, scores, raw, composite: NaN, compositeRange: compositeRange(scores, o.swan), candidates: candidates() };
  return { ...base, classification, scores, raw, composite: compositeScore(scores, o.swan.weights), candidates: candidates() };
}
