import { llamaLike } from './llama-like.js';

/**
 * mlx-lm olmo2.py: q_norm/k_norm over the whole projection (heads·head_dim), norms after attention
 * and after the MLP only (no input_layernorm: no norm feeds a Linear, so no input prior),
 * attention_bias on q/k/v/o and mlp_bias, tied by default, rotary inv_freq dropped.
 */
export const olmo2 = llamaLike({
  modelTypes: ['olmo2'],
  tieDefault: true,
  dropped: /self_attn\.rotary_emb\.inv_freq$/,
  headDim: 'config-or-derived',
  kvHeadsRequired: false,
  biases: 'config',
  qkNorm: 'projection',
  norms: ['post_attention_layernorm', 'post_feedforward_layernorm'],
  inputNorms: null,
});
