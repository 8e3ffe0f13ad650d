import { llamaLike } from './llama-like.js';

/** mlx-lm llama.py (mistral is remapped to it): tied by default, drops rotary inv_freq buffers. */
export const llama = llamaLike({
  modelTypes: ['llama', 'mistral'],
  tieDefault: true,
  dropped: /\.rotary_emb\.inv_freq$/,
  headDim: 'config-or-derived',
  kvHeadsRequired: false,
  biases: 'config',
  qkNorm: false,
  layerTypes: true,
});
