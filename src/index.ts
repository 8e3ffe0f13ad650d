/**
 * swan as a library: the stages of `swan quantize` as separate calls exchanging plain data.
 *
 *   const analysis = analyzeModel('hf-dir');                        // scores and decisions
 *   const { plan } = planModel('hf-dir', { strategy: 'budget', target: { bpw: 4.5 } });
 *   quantizeModel('hf-dir', 'mlx-dir', { strategy: 'thresholds' }); // plan + write
 *
 * Call installBestBackend() first to run the linear algebra on the WebAssembly SIMD kernels (the
 * plain-JS backend is the default), and closeBackend() when done.
 */
export { SwanError } from './errors.js';
export { analyzeModel, analyzeTensor, type AnalyzeOptions, type ModelAnalysis, type TensorAnalysis } from './pipeline/analyze.js';
export { planModel, quantizeModel, MANIFEST_FILE, type QuantizeOptions, type QuantizeResult } from './pipeline/quantize.js';
export { buildManifest, readManifestDecisions, readManifestMeasurements } from './pipeline/manifest-build.js';
export { openModel, type ModelSource } from './pipeline/source.js';
export type { Manifest, ManifestTensor } from './manifest.js';
export { makePlan, planTotals, quantizationConfig, type Plan, type PlanEntry } from './plan/plan.js';
export { makeBudgetPlan } from './plan/budget-plan.js';
export { parseSize, type SizeTarget } from './plan/target.js';
export { DEFAULT_SWAN_CONFIG, recommendBits, type SwanConfig } from './plan/swan-rules.js';
export { formatBytes, type TensorFormat } from './plan/format.js';
export { computeMetrics, reduceTo2D, type MetricScores, type RawMetrics } from './metrics/index.js';
export { quantizeAffine, dequantizeAffine, affineRelativeError, type QuantRules } from './mlx/affine.js';
export { packBits, unpackBits } from './mlx/pack.js';
export { readSafetensorsHeader, readTensorF32, readTensorBytes, type TensorInfo } from './io/safetensors.js';
export { SafetensorsWriter } from './io/safetensors-writer.js';
export { openHfModel } from './io/hf-model.js';
export { installBestBackend, closeBackend } from './kernels/select.js';
export { getBackend, setBackend, type KernelBackend } from './kernels/index.js';
export { evaluateModel, evaluateModels } from './eval/evaluate.js';
export { writeSynthCheckpoint, qwen3_0_6B, type SynthShape } from './synth/checkpoint.js';
export { DEFAULT_SEED, Rng } from './rng.js';
