import { llamaLike } from './llama-like.js';

/**
 * mlx-lm phi3.py: fused qkv_proj [(heads + 2·kv_heads)·head_dim, hidden] and gate_up_proj
 * [2·intermediate, hidden] stay fused (each one Linear, one format); head_dim = hidden/heads;
 * untied by default; no sanitize.
 */
export const phi3 = llamaLike({
  modelTypes: ['phi3'],
  tieDefault: false,
  headDim: 'derived',
  kvHeadsRequired: false,
  biases: 'none',
  qkNorm: false,
  fused: true,
});
