import { llamaLike } from './llama-like.js';

/**
 * mlx-lm gemma3_text.py: tied exactly when the checkpoint has no lm_head.weight (its sanitize),
 * per-head q_norm/k_norm, four norms per layer with gain 1 + weight (no input prior), and
 * ModelArgs defaults for every size (Gemma 3 1B's).
 */
export const gemma3Text = llamaLike({
  modelTypes: ['gemma3_text'],
  tie: 'head-absent',
  tieDefault: true,
  headDim: 'config',
  kvHeadsRequired: false,
  biases: 'none',
  qkNorm: true,
  norms: ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm'],
  inputNorms: null,
  defaults: {
    hidden_size: 1152,
    num_hidden_layers: 26,
    intermediate_size: 6912,
    num_attention_heads: 4,
    head_dim: 256,
    rms_norm_eps: 1e-6,
    vocab_size: 262144,
    num_key_value_heads: 1,
  },
});
