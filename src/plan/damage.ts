import type { TensorRole } from '../arch/types.js';

/**
 * Data-free damage model (docs/allocation.md): the expected damage of storing tensor i in format c is
 *
 *   damage(i, c) = relError(i, c) × importance(i)
 *   importance(i) = role(i) × depth(i) × (1 + swanBeta × composite(i)) × (size(i) / 2^20)^paramsExponent
 *
 * relError is measured (the real MLX quantizer on the real weights). size is the parameter count,
 * k_proj/v_proj counted once per query head they serve (grouped-query attention). paramsExponent
 * sits between the two limits: 0 says every tensor's relative error costs the same (y = W·x with
 * isotropic x has relative output noise relError whatever W's size), 1 says every weight's squared
 * error costs the same. Every knob is a prior, never fitted to evaluation text (docs/allocation.md).
 */
export interface DamageKnobs {
  /** Weight per role; a tied embedding also serves as the head and gets embedding + head. */
  roles: Record<TensorRole, number>;
  /** Share of layers at each end of the stack counted as "edge" layers (at least one each end). */
  edgeFraction: number;
  /** Weight of edge layers relative to the middle ones. */
  edgeWeight: number;
  /** How strongly SWAN's composite score (0..1) raises a tensor's weight. */
  swanBeta: number;
  /** Weight ∝ (params / 2^20)^paramsExponent: 0 = relative error per tensor, 1 = absolute squared error. */
  paramsExponent: number;
}

export const DEFAULT_DAMAGE_KNOBS: DamageKnobs = {
  roles: {
    embedding: 1,
    head: 4,
    attn_q: 1,
    attn_k: 1,
    attn_v: 2,
    attn_o: 1,
    mlp_gate: 1,
    mlp_up: 1,
    mlp_down: 2,
    attn_qkv: 1,
    mlp_gate_up: 1,
    router: 2,
    norm: 1,
    bias: 1,
    other: 1,
  },
  edgeFraction: 1 / 8,
  edgeWeight: 1.5,
  swanBeta: 1,
  paramsExponent: 0.5,
};

/**
 * Role weights fitted per architecture family from data-free evidence (docs/allocation.md §8): each
 * class of tensors alone at 4-bit g64, KL to the 16-bit source on text the model generated itself
 * (bench/py/self_samples.py, dev_kl.py, fit_roles.py), divided by the damage model's sum over that
 * class, attn_q = 1. Families not listed keep DEFAULT_DAMAGE_KNOBS' priors.
 */
const FITTED_ROLES: Record<string, Partial<Record<TensorRole, number>>> = {
  // SmolLM2-135M (30 layers, GQA 9/3, tied): per-class KL summed to 0.49 of all-classes' 0.51.
  llama: { head: 18, attn_k: 0.9, attn_v: 7.6, attn_o: 1.1, mlp_gate: 1.4, mlp_up: 2.6, mlp_down: 5.6 },
};

/** The damage model's knobs for a model_type: the family's fitted role weights over the defaults. */
export function damageKnobsFor(modelType: string): DamageKnobs {
  const fitted = FITTED_ROLES[modelType];
  return fitted ? { ...DEFAULT_DAMAGE_KNOBS, roles: { ...DEFAULT_DAMAGE_KNOBS.roles, ...fitted } } : DEFAULT_DAMAGE_KNOBS;
}

export interface ImportanceInput {
  role: TensorRole;
  layer: number | null;
  /** SWAN composite score (0 when the tensor was not scored). */
  composite: number;
  /** The embedding is also the output head (tie_word_embeddings). */
  tiedHead: boolean;
  params: number;
  /** Query heads per key/value head (grouped-query attention): k_proj/v_proj count as that many times their size. */
  kvShare?: number;
}

/** True for the first and last ⌈edgeFraction·L⌉ decoder layers. */
export function isEdgeLayer(layer: number | null, totalLayers: number, edgeFraction: number): boolean {
  if (layer === null || totalLayers <= 0) return false;
  const k = Math.max(1, Math.ceil(edgeFraction * totalLayers));
  return layer < k || layer >= totalLayers - k;
}

export function importance(t: ImportanceInput, totalLayers: number, knobs: DamageKnobs = DEFAULT_DAMAGE_KNOBS): number {
  let role = knobs.roles[t.role] ?? 1;
  if (t.role === 'embedding' && t.tiedHead) role += knobs.roles.head;
  const depth = isEdgeLayer(t.layer, totalLayers, knobs.edgeFraction) ? knobs.edgeWeight : 1;
  const composite = Number.isFinite(t.composite) ? Math.min(1, Math.max(0, t.composite)) : 0;
  const shared = t.role === 'attn_k' || t.role === 'attn_v' ? Math.max(1, t.kvShare ?? 1) : 1;
  return role * depth * (1 + knobs.swanBeta * composite) * ((t.params * shared) / 2 ** 20) ** knobs.paramsExponent;
}
