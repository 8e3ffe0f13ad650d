import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DecoderDims } from '../arch/types.js';
import { encodeFromF32, type FloatDType } from '../io/float.js';
import { SafetensorsWriter } from '../io/safetensors-writer.js';
import { Rng } from '../rng.js';

/** Shapes of a Llama/Qwen-style decoder to generate. */
export interface SynthShape extends DecoderDims {
  modelType: 'llama' | 'mistral' | 'qwen2' | 'qwen3';
  tied: boolean;
}

export const DEMO_SHAPE: SynthShape = {
  modelType: 'llama',
  hidden: 256,
  intermediate: 768,
  layers: 4,
  heads: 8,
  kvHeads: 4,
  headDim: 32,
  vocab: 2048,
  tied: true,
};

const ARCH_CLASS: Record<SynthShape['modelType'], string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

/** Qwen3-0.6B: hidden 1024, intermediate 3072, 28 layers, 16 q / 8 kv heads of 128, vocab 151936, tied. */
export function qwen3_0_6B(layers = 28): SynthShape {
  return { modelType: 'qwen3', hidden: 1024, intermediate: 3072, layers, heads: 16, kvHeads: 8, headDim: 128, vocab: 151936, tied: true };
}

export interface SynthTensor {
  name: string;
  shape: number[];
  /**
   * Tail weight a of w = z·exp(a·z') (z, z' standard normal): excess kurtosis 3e^{4a²} − 3
   * (a = 0: Gaussian; 0.3: ≈1.3; 0.6: ≈9.7). -1 marks a norm (ones + noise).
   */
  tail: number;
  /** Rank of an added low-rank component (spectral concentration), 0 for none. */
  rank: number;
}

export function synthTensors(s: SynthShape): SynthTensor[] {
  const out: SynthTensor[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], tail: 0.35, rank: 0 }];
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    // Heavier tails in the first and last layers and in down_proj, as in real checkpoints.
    const edge = l === 0 || l === s.layers - 1;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [s.hidden], tail: -1, rank: 0 },
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, s.hidden], tail: edge ? 0.55 : 0.25, rank: 4 },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, s.hidden], tail: edge ? 0.5 : 0.3, rank: 4 },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, s.hidden], tail: 0, rank: 0 },
      { name: `${p}.self_attn.o_proj.weight`, shape: [s.hidden, q], tail: 0.15, rank: 0 },
    );
    if (s.modelType === 'qwen2') {
      // Qwen2 attention has additive q/k/v biases (kept in float by MLX).
      out.push(
        { name: `${p}.self_attn.q_proj.bias`, shape: [q], tail: 0, rank: 0 },
        { name: `${p}.self_attn.k_proj.bias`, shape: [kv], tail: 0, rank: 0 },
        { name: `${p}.self_attn.v_proj.bias`, shape: [kv], tail: 0, rank: 0 },
      );
    }
    if (s.modelType === 'qwen3') {
      out.push(
        { name: `${p}.self_attn.q_norm.weight`, shape: [s.headDim], tail: -1, rank: 0 },
        { name: `${p}.self_attn.k_norm.weight`, shape: [s.headDim], tail: -1, rank: 0 },
      );
    }
    out.push(
      { name: `${p}.post_attention_layernorm.weight`, shape: [s.hidden], tail: -1, rank: 0 },
      { name: `${p}.mlp.gate_proj.weight`, shape: [s.intermediate, s.hidden], tail: 0.2, rank: 0 },
      { name: `${p}.mlp.up_proj.weight`, shape: [s.intermediate, s.hidden], tail: 0.1, rank: 0 },
      { name: `${p}.mlp.down_proj.weight`, shape: [s.hidden, s.intermediate], tail: edge ? 0.65 : 0.4, rank: 0 },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [s.hidden], tail: -1, rank: 0 });
  if (!s.tied) out.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden], tail: 0.3, rank: 0 });
  return out;
}

export function fillTensor(t: SynthTensor, rng: Rng): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (t.tail < 0) {
    for (let i = 0; i < n; i++) out[i] = 1 + 0.05 * rng.normal();
    return out;
  }
  const cols = t.shape[t.shape.length - 1]!;
  const std = 1 / Math.sqrt(cols);
  const a = t.tail;
  const norm = std * Math.exp(-a * a); // keeps the RMS near std: E[exp(2a z')] = e^{2a²}
  for (let i = 0; i < n; i++) out[i] = a === 0 ? rng.normal() * std : rng.normal() * Math.exp(a * rng.normal()) * norm;
  if (t.rank > 0) {
    const rows = n / cols;
    for (let r = 0; r < t.rank; r++) {
      const u = new Float32Array(rows).map(() => rng.normal());
      const v = new Float32Array(cols).map(() => rng.normal());
      const amp = (4 * std) / Math.sqrt(Math.sqrt(rows * cols)) / (r + 1);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j]! += amp * u[i]! * v[j]!;
    }
  }
  return out;
}

/**
 * Write a synthetic HF checkpoint (config.json + sharded-or-single bf16 safetensors) with
 * realistic heavy-tailed weights, deterministic for a seed. One tensor in memory at a time.
 */
export function writeSynthCheckpoint(dir: string, s: SynthShape, opts: { seed?: number; dtype?: FloatDType } = {}): void {
  const dtype = opts.dtype ?? 'BF16';
  const size = dtype === 'F32' ? 4 : 2;
  mkdirSync(dir, { recursive: true });
  const tensors = synthTensors(s);
  const writer = new SafetensorsWriter(
    join(dir, 'model.safetensors'),
    tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, byteLength: t.shape.reduce((a, b) => a * b, 1) * size })),
    { format: 'pt' },
  );
  for (const t of tensors) {
    const rng = Rng.forKey(opts.seed ?? 1, t.name);
    writer.write(t.name, encodeFromF32(fillTensor(t, rng), dtype));
  }
  writer.close();
  const config = {
    architectures: [ARCH_CLASS[s.modelType]],
    model_type: s.modelType,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    vocab_size: s.vocab,
    max_position_embeddings: 4096,
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: s.tied,
    attention_bias: false,
    torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
}
