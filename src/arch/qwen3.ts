import { llamaLike } from './llama-like.js';

/** mlx-lm qwen3.py: adds q_norm/k_norm; tie_word_embeddings is a required config key. */
export const qwen3 = llamaLike({
  modelTypes: ['qwen3'],
  tieDefault: undefined,
  headDim: 'config',
  kvHeadsRequired: true,
  biases: 'none',
  qkNorm: true,
  required: ['max_position_embeddings'],
});
