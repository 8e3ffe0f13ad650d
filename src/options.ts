/**
 * Every user-facing choice of swan and its default, in one place. The CLI builds its validators and
 * help from these arrays, and the library resolves what a caller left out with `DEFAULTS` (see
 * resolveQuantizeOptions in src/pipeline/quantize.ts), so a library call and the CLI with the same
 * options do the same thing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './python.js';
import { DEFAULT_SEED } from './rng.js';

/** thresholds: SWAN as published; uniform: mlx_lm.convert -q; budget: least expected damage within a size target. */
export const STRATEGIES = ['thresholds', 'uniform', 'budget'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** mlx_lm.convert's `--quant-predicate` recipes (src/plan/uniform.ts recipeBits). */
export const QUANT_RECIPES = ['mixed_2_6', 'mixed_3_4', 'mixed_3_6', 'mixed_4_6'] as const;
export type QuantRecipe = (typeof QUANT_RECIPES)[number];

/**
 * How codes and group scales are chosen: MLX's round-to-nearest (bit-exact), swan's per-group search
 * (src/mlx/rounding-search.ts), or GPTQ under the layer's input covariance from `swan imatrix
 * --covariance` (src/mlx/gptq.ts; per tensor the search's result where GPTQ is not better). All
 * three write plain MLX affine tensors.
 */
export const ROUNDINGS = ['rtn', 'search', 'gptq'] as const;
export type Rounding = (typeof ROUNDINGS)[number];

/**
 * Whether a rounding chooses group scales by the search: search, and gptq (each group's scale and
 * bias by the search when it is reached, and per tensor the search's result wherever GPTQ is not
 * better). Both take the search's column weights, and plan on its measured errors (docs/allocation.md §8).
 */
export function roundsWithSearch(rounding: Rounding): boolean {
  return rounding !== 'rtn';
}

/**
 * What `--rounding search` minimises across a weight's input channels (the allocation always
 * measures plain relative errors, docs/allocation.md §6):
 * - none: plain ‖ΔW‖² (every input channel alike);
 * - norm: column j weighted by g_j², the square of the gain of the RMSNorm that feeds the layer
 *   (Architecture.inputNorm). The layer sees x̂·g with x̂ of unit RMS per token, so g_j² is a
 *   data-free prior on channel j's input energy and Σ_j g_j²‖ΔW[:, j]‖² the expected output error
 *   under it. Weights not fed by a norm (o_proj, down_proj, an untied embedding) stay unweighted.
 */
export const INPUT_WEIGHTINGS = ['none', 'norm'] as const;
export type InputWeighting = (typeof INPUT_WEIGHTINGS)[number];

/**
 * Rounding rules of MLX's quantize kernel to reproduce: metal (Apple GPU, what `mlx_lm.convert`
 * does on a Mac: ties away from zero, max starting at 0) or cpu (MLX's CPU kernel, on Linux).
 */
export const QUANT_RULES = ['metal', 'cpu'] as const;
export type QuantRules = (typeof QUANT_RULES)[number];

/** Kernel backend: auto takes native BLAS when built, else WebAssembly SIMD, else plain JS. */
export const BACKENDS = ['auto', 'native', 'wasm', 'js'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

/** mlx-lm's MAX_FILE_SIZE_GB = 5 → 5 << 30 bytes per shard. */
export const MAX_SHARD_BYTES = 5 * 2 ** 30;

/** The default of every option that has one. */
export const DEFAULTS = Object.freeze({
  /**
   * budget: with no size target it aims at the bytes SWAN's thresholds would write with the same
   * options (src/pipeline/quantize.ts defaultTarget): the published method's size, spent where the
   * damage model expects the least loss. Planning from a stored manifest without a strategy uses
   * the manifest's decisions (thresholds).
   */
  strategy: 'budget' as Strategy,
  /** Rounding of the uniform and thresholds strategies: MLX's own, so uniform output is bit-exact with mlx_lm.convert. */
  rounding: 'rtn' as Rounding,
  /**
   * Rounding of the budget strategy (`--target-*`) when `--rounding` is not given: the allocation
   * then also weighs each candidate by the search's measured error (docs/allocation.md §5, §9).
   */
  budgetRounding: 'search' as Rounding,
  /**
   * Rounding of the budget strategy when `--rounding` is not given and the `--imatrix` file has
   * covariances (`swan imatrix --covariance`): GPTQ lowered own-sample KL 23% against the search
   * under the same tokens' diagonal (docs/allocation.md §8).
   */
  covarianceRounding: 'gptq' as Rounding,
  weighting: 'norm' as InputWeighting,
  rules: 'metal' as QuantRules,
  backend: 'auto' as BackendChoice,
  /** `--q-bits`: bits of the uniform strategy (mlx_lm.convert's default). */
  bits: 4,
  /** `--q-group-size`: group of the uniform strategy and of SWAN's 4-bit tier (mlx-lm's default). */
  groupSize: 64,
  seed: DEFAULT_SEED,
  /** Thresholds strategy: skip the SVD/output metrics of tensors whose bits the cheap metrics decide (same bytes). */
  skipDecided: true,
  /** Score protected tensors too (the reference tool does; their bits cannot change). */
  scoreProtected: false,
  /** The budget strategy keeps SWAN's built-in protected names (embeddings, head, norms) in float. */
  budgetKeepsProtected: false,
  /** Refuse tensors with NaN/±Inf or values beyond the target dtype's range (`--allow-nonfinite` keeps them). */
  allowNonFinite: false,
  maxShardBytes: MAX_SHARD_BYTES,
});

/** The package version, from package.json (read once). */
export const SWAN_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
