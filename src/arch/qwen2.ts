import { llamaLike } from './llama-like.js';

/** mlx-lm qwen2.py: like llama, q/k/v carry an additive bias (kept in float); tied by default. */
export const qwen2 = llamaLike({
  modelTypes: ['qwen2'],
  tieDefault: true,
  dropped: /\.rotary_emb\.inv_freq$/,
  headDim: 'derived',
  kvHeadsRequired: true,
  biases: 'qkv',
  qkNorm: false,
});
