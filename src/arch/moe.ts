import { llamaLike } from './llama-like.js';

/**
 * The mixture-of-experts families. mlx-lm's sanitize stacks each layer's experts.E.{gate,up,down}
 * into one SwitchLinear `switch_mlp.{gate,up,down}_proj` [E, out, in]; swan does the same,
 * streaming expert by expert (src/pipeline/write-mlx.ts).
 */

/**
 * mlx-lm qwen3_moe.py: qwen3's attention (per-head q/k norms, head_dim required); a layer is MoE
 * unless listed in mlp_only_layers, every decoder_sparse_step-th; its quant_predicate keeps the
 * router `mlp.gate` at 8-bit g64.
 */
export const qwen3Moe = llamaLike({
  modelTypes: ['qwen3_moe'],
  tieDefault: undefined,
  headDim: 'config',
  kvHeadsRequired: true,
  biases: 'none',
  qkNorm: true,
  required: ['max_position_embeddings', 'rope_theta', 'norm_topk_prob'],
  moe: {
    block: 'mlp',
    expertNames: { gate_proj: 'gate_proj', up_proj: 'up_proj', down_proj: 'down_proj' },
    numExpertsKey: 'num_experts',
    intermediateKey: 'moe_intermediate_size',
    sparseStep: true,
  },
  quantRule: (path) => (path.endsWith('mlp.gate') ? { bits: 8, groupSize: 64 } : undefined),
});

/**
 * mlx-lm qwen2_moe.py: qwen2's attention (q/k/v biases, head_dim = hidden/heads); every layer is
 * MoE with a dense shared_expert and a shared_expert_gate Linear(hidden, 1); always an lm_head.
 */
export const qwen2Moe = llamaLike({
  modelTypes: ['qwen2_moe'],
  tie: 'never',
  tieDefault: false,
  headDim: 'derived',
  kvHeadsRequired: false,
  biases: 'qkv',
  qkNorm: false,
  moe: {
    block: 'mlp',
    expertNames: { gate_proj: 'gate_proj', up_proj: 'up_proj', down_proj: 'down_proj' },
    numExpertsKey: 'num_experts',
    intermediateKey: 'moe_intermediate_size',
    sharedExpert: true,
  },
});

/**
 * mlx-lm mixtral.py: `block_sparse_moe` with experts w1 (gate), w3 (up), w2 (down) of
 * intermediate_size; every size has a ModelArgs default (Mixtral 8x7B's); untied by default.
 */
export const mixtral = llamaLike({
  modelTypes: ['mixtral'],
  tieDefault: false,
  headDim: 'derived',
  kvHeadsRequired: false,
  biases: 'none',
  qkNorm: false,
  defaults: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_experts_per_tok: 2,
    num_key_value_heads: 8,
    num_local_experts: 8,
    rms_norm_eps: 1e-5,
  },
  moe: {
    block: 'block_sparse_moe',
    expertNames: { gate_proj: 'w1', up_proj: 'w3', down_proj: 'w2' },
    numExpertsKey: 'num_local_experts',
    intermediateKey: 'intermediate_size',
  },
});
