import { llamaLike } from './llama-like.js';

/**
 * mlx-lm granite.py: llama's layout with head_dim = hidden/heads, attention_bias/mlp_bias and the
 * scaling multipliers required, tied by default. Its quant_predicate keeps self_attn.o_proj,
 * mlp.down_proj and lm_head at 8-bit g64 under mlx_lm.convert.
 */
export const granite = llamaLike({
  modelTypes: ['granite'],
  tieDefault: true,
  headDim: 'derived',
  kvHeadsRequired: true,
  biases: 'config',
  qkNorm: false,
  required: ['logits_scaling', 'attention_multiplier', 'embedding_multiplier', 'residual_multiplier', 'max_position_embeddings', 'attention_bias', 'mlp_bias', 'rope_theta'],
  quantRule: (path) => (path.endsWith('self_attn.o_proj') || path.endsWith('mlp.down_proj') || path === 'lm_head' ? { bits: 8, groupSize: 64 } : undefined),
});
