/**
 * Tiny HF checkpoints of every supported family, with each family's real HF tensor names and
 * config.json fields (as transformers writes them), for tests and benchmarks: bf16, every last
 * dimension divisible by 64 and 128, a few experts for the MoE families. Written tensor by tensor
 * (one in memory at a time), deterministic for a seed. The names are spelled here, independently
 * of src/arch, so that a test against real mlx-lm checks swan's architecture description.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DecoderDims } from '../arch/types.js';
import { encodeFromF32, type FloatDType } from '../io/float.js';
import { dumpPyJson, PyFloat, type PyValue } from '../io/pyjson.js';
import { SafetensorsWriter } from '../io/safetensors-writer.js';
import { Rng } from '../rng.js';
import { fillTensor, type SynthTensor } from './checkpoint.js';

export const FAMILY_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3', 'qwen2_moe', 'qwen3_moe', 'mixtral', 'gemma2', 'gemma3_text', 'phi3', 'olmo2', 'granite'] as const;
export type FamilyType = (typeof FAMILY_TYPES)[number];
export const MOE_TYPES: readonly FamilyType[] = ['qwen2_moe', 'qwen3_moe', 'mixtral'];

export interface FamilyShape extends DecoderDims {
  modelType: FamilyType;
  tied: boolean;
  /** MoE: experts per layer, their intermediate size, the shared expert's (qwen2_moe). */
  experts: number;
  expertIntermediate: number;
  sharedIntermediate: number;
}

/** The tiny shape of a family: hidden 128, 2 layers, 4 experts of 128 (vocab 512: the stories260K tokenizer's). */
export function tinyShape(modelType: FamilyType, over: Partial<FamilyShape> = {}): FamilyShape {
  const untiedByDefault = ['phi3', 'mixtral', 'qwen2_moe'].includes(modelType);
  return {
    modelType,
    hidden: 128,
    intermediate: 256,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    headDim: 32,
    vocab: 512,
    tied: modelType === 'gemma2' || (!untiedByDefault && modelType !== 'gemma3_text'),
    experts: 4,
    expertIntermediate: 128,
    sharedIntermediate: 256,
    ...over,
  };
}

const ARCH_CLASS: Record<FamilyType, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  qwen2_moe: 'Qwen2MoeForCausalLM',
  qwen3_moe: 'Qwen3MoeForCausalLM',
  mixtral: 'MixtralForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
  phi3: 'Phi3ForCausalLM',
  olmo2: 'Olmo2ForCausalLM',
  granite: 'GraniteForCausalLM',
};

const t = (name: string, shape: number[], tail: number, rank = 0): SynthTensor => ({ name, shape, tail, rank });
const norm = (name: string, n: number): SynthTensor => t(name, [n], -1);

/** The tensors of a family's HF checkpoint, in the order transformers saves them (per layer). */
export function familyTensors(s: FamilyShape): SynthTensor[] {
  const m = s.modelType;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const out: SynthTensor[] = [t('model.embed_tokens.weight', [s.vocab, s.hidden], 0.35)];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    const edge = l === 0 || l === s.layers - 1;
    // Attention.
    if (m === 'phi3') {
      out.push(t(`${p}.self_attn.qkv_proj.weight`, [q + 2 * kv, s.hidden], edge ? 0.5 : 0.25, 4));
    } else {
      out.push(t(`${p}.self_attn.q_proj.weight`, [q, s.hidden], edge ? 0.55 : 0.25, 4), t(`${p}.self_attn.k_proj.weight`, [kv, s.hidden], 0.3, 4), t(`${p}.self_attn.v_proj.weight`, [kv, s.hidden], 0));
      if (m === 'qwen2' || m === 'qwen2_moe') out.push(t(`${p}.self_attn.q_proj.bias`, [q], 0), t(`${p}.self_attn.k_proj.bias`, [kv], 0), t(`${p}.self_attn.v_proj.bias`, [kv], 0));
    }
    out.push(t(`${p}.self_attn.o_proj.weight`, [s.hidden, q], 0.15));
    if (m === 'qwen3' || m === 'qwen3_moe' || m === 'gemma3_text') out.push(norm(`${p}.self_attn.q_norm.weight`, s.headDim), norm(`${p}.self_attn.k_norm.weight`, s.headDim));
    if (m === 'olmo2') out.push(norm(`${p}.self_attn.q_norm.weight`, q), norm(`${p}.self_attn.k_norm.weight`, kv));
    // MLP or mixture of experts.
    if (m === 'mixtral') {
      out.push(t(`${p}.block_sparse_moe.gate.weight`, [s.experts, s.hidden], 0.1));
      for (let e = 0; e < s.experts; e++) {
        const x = `${p}.block_sparse_moe.experts.${e}`;
        out.push(t(`${x}.w1.weight`, [s.expertIntermediate, s.hidden], 0.1 * (e % 4)), t(`${x}.w2.weight`, [s.hidden, s.expertIntermediate], 0.2 + 0.1 * (e % 5)), t(`${x}.w3.weight`, [s.expertIntermediate, s.hidden], 0.05 * (e % 3)));
      }
    } else if (m === 'qwen2_moe' || m === 'qwen3_moe') {
      out.push(t(`${p}.mlp.gate.weight`, [s.experts, s.hidden], 0.1));
      for (let e = 0; e < s.experts; e++) {
        const x = `${p}.mlp.experts.${e}`;
        out.push(t(`${x}.gate_proj.weight`, [s.expertIntermediate, s.hidden], 0.1 * (e % 4)), t(`${x}.up_proj.weight`, [s.expertIntermediate, s.hidden], 0.05 * (e % 3)), t(`${x}.down_proj.weight`, [s.hidden, s.expertIntermediate], 0.2 + 0.1 * (e % 5)));
      }
      if (m === 'qwen2_moe') {
        const x = `${p}.mlp.shared_expert`;
        out.push(t(`${x}.gate_proj.weight`, [s.sharedIntermediate, s.hidden], 0.2), t(`${x}.up_proj.weight`, [s.sharedIntermediate, s.hidden], 0.1), t(`${x}.down_proj.weight`, [s.hidden, s.sharedIntermediate], 0.4), t(`${p}.mlp.shared_expert_gate.weight`, [1, s.hidden], 0));
      }
    } else if (m === 'phi3') {
      out.push(t(`${p}.mlp.gate_up_proj.weight`, [2 * s.intermediate, s.hidden], 0.2), t(`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate], edge ? 0.65 : 0.4));
    } else {
      out.push(t(`${p}.mlp.gate_proj.weight`, [s.intermediate, s.hidden], 0.2), t(`${p}.mlp.up_proj.weight`, [s.intermediate, s.hidden], 0.1), t(`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate], edge ? 0.65 : 0.4));
    }
    // Norms.
    const norms =
      m === 'gemma2' || m === 'gemma3_text'
        ? ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']
        : m === 'olmo2'
          ? ['post_attention_layernorm', 'post_feedforward_layernorm']
          : ['input_layernorm', 'post_attention_layernorm'];
    for (const n of norms) out.push(norm(`${p}.${n}.weight`, s.hidden));
  }
  out.push(norm('model.norm.weight', s.hidden));
  if (!s.tied) out.push(t('lm_head.weight', [s.vocab, s.hidden], 0.3));
  return out;
}

/** A float field: written with a decimal point, as Python's json writes a float (transformers' config classes check the type). */
const f = (x: number) => new PyFloat(x);

/** config.json of a family as transformers' config class writes its fields (the ones mlx-lm reads, and the usual others). */
export function familyConfig(s: FamilyShape, dtype: FloatDType = 'BF16'): Record<string, PyValue> {
  const m = s.modelType;
  const c: Record<string, PyValue> = {
    architectures: [ARCH_CLASS[m]],
    model_type: m,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    vocab_size: s.vocab,
    max_position_embeddings: 4096,
    hidden_act: 'silu',
    rms_norm_eps: f(1e-6),
    rope_theta: f(10000),
    tie_word_embeddings: s.tied,
    initializer_range: f(0.02),
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16',
  };
  if (s.hidden !== s.heads * s.headDim || ['qwen3', 'qwen3_moe', 'gemma2', 'gemma3_text'].includes(m)) c.head_dim = s.headDim;
  if (m === 'llama' || m === 'granite' || m === 'olmo2') Object.assign(c, { attention_bias: false, mlp_bias: false });
  if (m === 'qwen3' || m === 'qwen3_moe') c.attention_bias = false;
  if (m === 'qwen2_moe' || m === 'qwen3_moe') {
    Object.assign(c, { num_experts: s.experts, num_experts_per_tok: 2, moe_intermediate_size: s.expertIntermediate, decoder_sparse_step: 1, norm_topk_prob: m === 'qwen3_moe', output_router_logits: false, router_aux_loss_coef: f(0.001) });
    if (m === 'qwen3_moe') c.mlp_only_layers = [];
    if (m === 'qwen2_moe') Object.assign(c, { shared_expert_intermediate_size: s.sharedIntermediate, mlp_only_layers: [] });
  }
  if (m === 'mixtral') {
    Object.assign(c, { num_local_experts: s.experts, num_experts_per_tok: 2, output_router_logits: false, router_aux_loss_coef: f(0.02) });
    c.intermediate_size = s.expertIntermediate;
  }
  if (m === 'gemma2' || m === 'gemma3_text') {
    Object.assign(c, { hidden_act: 'gelu_pytorch_tanh', hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: s.headDim, sliding_window: 512, final_logit_softcapping: m === 'gemma2' ? f(30) : null, attn_logit_softcapping: m === 'gemma2' ? f(50) : null, pad_token_id: 0 });
    if (m === 'gemma3_text') Object.assign(c, { rope_local_base_freq: f(10000), sliding_window_pattern: 2, layer_types: Array.from({ length: s.layers }, (_, i) => ((i + 1) % 2 === 0 ? 'full_attention' : 'sliding_attention')) });
    if (m === 'gemma2') c.cache_implementation = 'hybrid';
  }
  if (m === 'phi3') Object.assign(c, { original_max_position_embeddings: 4096, partial_rotary_factor: f(1), resid_pdrop: f(0), embd_pdrop: f(0), attention_dropout: f(0), rope_scaling: null, sliding_window: null, pad_token_id: 0 });
  if (m === 'granite') Object.assign(c, { logits_scaling: f(8), attention_multiplier: f(0.0078125), embedding_multiplier: f(12), residual_multiplier: f(0.22) });
  return c;
}

/**
 * Write a family's HF checkpoint (config.json + model.safetensors) into `dir`. `shareValues`: the
 * tensors of one shape share the first one's values (benchmarks of GB-sized checkpoints, where
 * sizes matter and drawing every value would take minutes).
 */
export function writeFamilyCheckpoint(dir: string, s: FamilyShape, opts: { seed?: number; dtype?: FloatDType; shareValues?: boolean } = {}): void {
  const dtype = opts.dtype ?? 'BF16';
  const size = dtype === 'F32' ? 4 : 2;
  mkdirSync(dir, { recursive: true });
  const tensors = familyTensors(s);
  const writer = new SafetensorsWriter(
    join(dir, 'model.safetensors'),
    tensors.map((x) => ({ name: x.name, dtype, shape: x.shape, byteLength: x.shape.reduce((a, b) => a * b, 1) * size })),
    { format: 'pt' },
  );
  const byShape = new Map<string, Uint8Array>();
  for (const x of tensors) {
    const key = x.shape.join('x');
    const bytes = (opts.shareValues && byShape.get(key)) || encodeFromF32(fillTensor(x, Rng.forKey(opts.seed ?? 1, x.name)), dtype);
    if (opts.shareValues) byShape.set(key, bytes);
    writer.write(x.name, bytes);
  }
  writer.close();
  writeFileSync(join(dir, 'config.json'), dumpPyJson(familyConfig(s, dtype), { indent: 2 }));
}
