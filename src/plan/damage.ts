import type { TensorRole } from '../arch/types.js';

/**
 * Data-free damage model (docs/allocation.md): the expected damage of storing tensor i in format c is
 *
 *   damage(i, c) = relError(i, c) × importance(i)
 *   importance(i) = role(i) × depth(i) × (1 + swanBeta × composite(i))
 *
 * relError is measured (the real MLX quantizer on the real weights). It is not weighted by parameter
 * count: for y = W·x with isotropic x, the relative output noise ‖ΔW·x‖²/‖W·x‖² equals relError
 * whatever the size of W, and every sublayer writes a comparable share into the residual stream.
 * Bytes, not damage, carry the size into the knapsack. Every knob is a prior fixed from published
 * practice, never fitted to evaluation text.
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
    norm: 1,
    bias: 1,
    other: 1,
  },
  edgeFraction: 1 / 8,
  edgeWeight: 1.5,
  swanBeta: 1,
};

export interface ImportanceInput {
  role: TensorRole;
  layer: number | null;
  /** SWAN composite score (0 when the tensor was not scored). */
  composite: number;
  /** The embedding is also the output head (tie_word_embeddings). */
  tiedHead: boolean;
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
  return role * depth * (1 + knobs.swanBeta * composite);
}
