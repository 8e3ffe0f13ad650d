/**
 * swan as a library: the stages of `swan quantize` as separate calls exchanging plain data, each
 * taking the previous one's result so that nothing runs twice.
 *
 *   const analysis = await analyzeModelAsync('hf-dir');               // scores and candidate measurements
 *   const planned = planModel('hf-dir', { analysis, target: { bpw: 4.5 } });
 *   await quantizeModelAsync('hf-dir', 'mlx-dir', { planned });       // writes that plan
 *
 * The *Async stages run in a worker thread on the CLI's default backend (native BLAS, else
 * WebAssembly SIMD, else plain JS) and leave the caller's event loop free. The synchronous ones
 * (analyzeModel, planModel, quantizeModel) run on the calling thread, on the backend installed
 * with installBestBackend() (plain JS until then; closeBackend() when done). Options left out
 * take the CLI's defaults (DEFAULTS in src/options.ts, resolveQuantizeOptions).
 */
export { SwanError, escapeControl } from './errors.js';
export { ConfigError } from './arch/config.js';
export { analyzeModelAsync, quantizeModelAsync, type BackendOptions } from './pipeline/async.js';
export { DEFAULTS, STRATEGIES, ROUNDINGS, INPUT_WEIGHTINGS, QUANT_RULES, BACKENDS, SWAN_VERSION } from './options.js';
export type { Strategy, Rounding, InputWeighting, QuantRules, BackendChoice } from './options.js';
export { analyzeModel, analyzeTensor, type AnalyzeOptions, type ModelAnalysis, type TensorAnalysis } from './measure/analyze.js';
export {
  analyzeToManifest,
  planModel,
  quantizeModel,
  resolveQuantizeOptions,
  MANIFEST_FILE,
  type QuantizeOptions,
  type QuantizeResult,
  type PlanResult,
} from './pipeline/quantize.js';
export { writeMlxModel, type WriteOptions } from './pipeline/write-mlx.js';
export { inspectModel, type ModelListing } from './pipeline/inspect.js';
export { buildManifest, replanManifest } from './manifest/build.js';
export { readManifestFile, readManifestOf, readManifestDecisions, readManifestMeasurements } from './manifest/read.js';
export type { Manifest, ManifestTensor } from './manifest/schema.js';
export { openModel, type ModelSource } from './arch/source.js';
export { planTotals, quantizationConfig, type Plan, type PlanEntry } from './plan/plan.js';
export { eligibleFormats, measurableFormats, type Eligibility, type EligibilityRules, type FloatRule } from './plan/eligibility.js';
export { planThresholds } from './plan/thresholds.js';
export { planUniform } from './plan/uniform.js';
export { planBudget } from './plan/budget.js';
export { BudgetError } from './plan/knapsack.js';
export { parseSize, type SizeTarget } from './plan/target.js';
export { DEFAULT_SWAN_CONFIG, recommendBits, swanDecision, type SwanConfig } from './plan/swan-rules.js';
export { formatBytes, type TensorFormat } from './format.js';
export { computeMetrics, reduceTo2D, type MetricScores, type RawMetrics } from './metrics/index.js';
export { quantizeAffine, dequantizeAffine, affineRelativeError } from './mlx/affine.js';
export { packBits, unpackBits } from './mlx/pack.js';
export {
  readSafetensorsHeader,
  readTensorF32,
  readTensorBytes,
  MAX_HEADER_BYTES,
  MAX_TENSORS,
  MAX_NAME_BYTES,
  MAX_RANK,
  MAX_DIM,
  MAX_FIELDS,
  type TensorInfo,
} from './io/safetensors.js';
export { SafetensorsWriter } from './io/safetensors-writer.js';
export { openHfModel } from './io/hf-model.js';
export type { NonFiniteCounts } from './io/float.js';
export { installBestBackend, closeBackend } from './kernels/select.js';
export { getBackend, setBackend, type KernelBackend } from './kernels/index.js';
export { evaluateModel, evaluateModels } from './eval/evaluate.js';
export { writeSynthCheckpoint, qwen3_0_6B, type SynthShape } from './synth/checkpoint.js';
export { DEFAULT_SEED, Rng } from './rng.js';
