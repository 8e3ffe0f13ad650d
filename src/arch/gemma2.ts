import { llamaLike } from './llama-like.js';

/**
 * mlx-lm gemma2.py: always tied (the model has no lm_head module), four norms per layer (input,
 * pre/post feed-forward, post attention) whose gain is 1 + weight — so no norm serves as the
 * input prior —, head_dim and num_key_value_heads required, no sanitize (nothing dropped).
 */
export const gemma2 = llamaLike({
  modelTypes: ['gemma2'],
  tie: 'always',
  tieDefault: true,
  headDim: 'config',
  kvHeadsRequired: true,
  biases: 'none',
  qkNorm: false,
  norms: ['input_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm', 'post_attention_layernorm'],
  inputNorms: null,
});
