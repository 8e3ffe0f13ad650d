import { CONFIG_LIMITS, ConfigError, ConfigReader } from './config.js';
import type { Architecture, DecoderDims, ExpectedTensor, TensorRecord, TensorRole } from './types.js';

/**
 * Shared rules of the dense llama-family decoders in mlx-lm (llama.py, qwen2.py, qwen3.py):
 * HF names equal MLX names, no transposes, Linear weights are [out, in].
 */

const ROLE_BY_MODULE: Record<string, TensorRole> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_o',
  gate_proj: 'mlp_gate',
  up_proj: 'mlp_up',
  down_proj: 'mlp_down',
};

/**
 * Module order inside a decoder layer as mlx-lm constructs it: Attention(q,k,v,o,q_norm,k_norm),
 * MLP(gate, down, up) — note down before up —, then the two norms.
 */
const LAYER_ORDER = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'self_attn.q_norm',
  'self_attn.k_norm',
  'mlp.gate_proj',
  'mlp.down_proj',
  'mlp.up_proj',
  'input_layernorm',
  'post_attention_layernorm',
];
/** Parameter order inside a module (weight, scales, biases, bias). */
const PARAM_ORDER = ['weight', 'scales', 'biases', 'bias'];

export interface LlamaLikeOptions {
  modelTypes: string[];
  /** mlx-lm ModelArgs default for tie_word_embeddings when config.json omits it (undefined: required). */
  tieDefault: boolean | undefined;
  /** HF names the mlx-lm sanitize drops (e.g. rotary inv_freq). */
  dropped?: RegExp;
  /**
   * Where mlx-lm's Attention takes head_dim from: config `head_dim`, else hidden/heads (llama.py);
   * always hidden/heads (qwen2.py); config `head_dim`, required (qwen3.py).
   */
  headDim: 'config-or-derived' | 'derived' | 'config';
  /** num_key_value_heads is required (qwen2, qwen3); else it defaults to num_attention_heads (llama). */
  kvHeadsRequired: boolean;
  /** Additive biases: from attention_bias (q/k/v/o) and mlp_bias (gate/up/down) as llama.py reads them, or always on q/k/v (qwen2.py). */
  biases: 'config' | 'qkv' | 'none';
  /** Per-head RMSNorms q_norm/k_norm of head_dim (qwen3.py). */
  qkNorm: boolean;
  /** llama.py builds one layer per entry of `layer_types` when the config has it. */
  layerTypes?: boolean;
  /** Other ModelArgs fields without a default in mlx-lm (loading fails without them). */
  required?: string[];
}

/** The dimensions mlx-lm's model takes from config.json, checked (ConfigError names the key). */
export interface LlamaDims extends DecoderDims {
  attentionBias: boolean;
  mlpBias: boolean;
}

export function llamaDims(config: Record<string, unknown>, opts: LlamaLikeOptions): LlamaDims {
  const r = new ConfigReader(config, String(config.model_type));
  const L = CONFIG_LIMITS;
  const hidden = r.posInt('hidden_size', L.width);
  const layers = r.posInt('num_hidden_layers', L.layers);
  const intermediate = r.posInt('intermediate_size', L.width);
  const heads = r.posInt('num_attention_heads', L.heads);
  const kvHeads = r.posInt('num_key_value_heads', L.heads, opts.kvHeadsRequired ? undefined : heads);
  const vocab = r.posInt('vocab_size', L.vocab);
  r.posNumber('rms_norm_eps');
  for (const key of opts.required ?? []) {
    if (!r.has(key)) throw new ConfigError(`${key} is missing; mlx-lm's ${r.modelType} model requires it`);
  }
  // Grouped attention needs a whole number of query heads per key/value head.
  if (heads % kvHeads !== 0) throw new ConfigError(`num_key_value_heads is ${kvHeads}: it must divide num_attention_heads (${heads})`);
  let headDim: number;
  if (opts.headDim === 'config' || (opts.headDim === 'config-or-derived' && r.has('head_dim'))) {
    headDim = r.posInt('head_dim', L.width);
  } else {
    // mlx-lm floors hidden/heads; a remainder means the config does not describe a real model.
    if (hidden % heads !== 0) {
      const why = opts.headDim === 'derived' ? `mlx-lm's ${r.modelType} model derives head_dim from them` : 'and head_dim is not given';
      throw new ConfigError(`hidden_size is ${hidden}: not a multiple of num_attention_heads (${heads}), ${why}`);
    }
    headDim = hidden / heads;
  }
  if (opts.layerTypes && r.has('layer_types')) {
    const lt = config.layer_types;
    if (!Array.isArray(lt) || lt.length !== layers) {
      throw new ConfigError(`layer_types must list one entry per layer (num_hidden_layers is ${layers}), got ${Array.isArray(lt) ? `${lt.length} entries` : JSON.stringify(lt)}`);
    }
  }
  const biases = opts.biases === 'config';
  return {
    hidden,
    intermediate,
    layers,
    heads,
    kvHeads,
    headDim,
    vocab,
    attentionBias: biases && r.bool('attention_bias', false),
    mlpBias: biases && r.bool('mlp_bias', false),
  };
}

/** The parameters mlx-lm's llama/qwen2/qwen3 Model constructs, by HF name (= MLX name), with shapes. */
function expectedLlamaTensors(d: LlamaDims, opts: LlamaLikeOptions, tied: boolean): Map<string, ExpectedTensor> {
  const hd = opts.headDim === 'derived' ? '(hidden_size/num_attention_heads)' : 'head_dim';
  const q = `num_attention_heads×${hd}`;
  const kv = `num_key_value_heads×${hd}`;
  const out = new Map<string, ExpectedTensor>();
  const add = (name: string, shape: number[], from: string[]) => out.set(name, { shape, from: `[${from.join(', ')}]` });
  add('model.embed_tokens.weight', [d.vocab, d.hidden], ['vocab_size', 'hidden_size']);
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}`;
    const linear = (name: string, rows: number, cols: number, rowsFrom: string, colsFrom: string, bias: boolean) => {
      add(`${p}.${name}.weight`, [rows, cols], [rowsFrom, colsFrom]);
      if (bias) add(`${p}.${name}.bias`, [rows], [rowsFrom]);
    };
    const qkvBias = opts.biases === 'qkv' || d.attentionBias;
    linear('self_attn.q_proj', d.heads * d.headDim, d.hidden, q, 'hidden_size', qkvBias);
    linear('self_attn.k_proj', d.kvHeads * d.headDim, d.hidden, kv, 'hidden_size', qkvBias);
    linear('self_attn.v_proj', d.kvHeads * d.headDim, d.hidden, kv, 'hidden_size', qkvBias);
    linear('self_attn.o_proj', d.hidden, d.heads * d.headDim, 'hidden_size', q, d.attentionBias);
    if (opts.qkNorm) {
      add(`${p}.self_attn.q_norm.weight`, [d.headDim], [hd]);
      add(`${p}.self_attn.k_norm.weight`, [d.headDim], [hd]);
    }
    linear('mlp.gate_proj', d.intermediate, d.hidden, 'intermediate_size', 'hidden_size', d.mlpBias);
    linear('mlp.down_proj', d.hidden, d.intermediate, 'hidden_size', 'intermediate_size', d.mlpBias);
    linear('mlp.up_proj', d.intermediate, d.hidden, 'intermediate_size', 'hidden_size', d.mlpBias);
    add(`${p}.input_layernorm.weight`, [d.hidden], ['hidden_size']);
    add(`${p}.post_attention_layernorm.weight`, [d.hidden], ['hidden_size']);
  }
  add('model.norm.weight', [d.hidden], ['hidden_size']);
  if (!tied) add('lm_head.weight', [d.vocab, d.hidden], ['vocab_size', 'hidden_size']);
  return out;
}

export function llamaLike(opts: LlamaLikeOptions): Architecture {
  return {
    modelTypes: opts.modelTypes,
    tied(config) {
      const v = config.tie_word_embeddings;
      if (typeof v === 'boolean') return v;
      // mlx-lm reads null as untied, transformers' default as tied: refuse the ambiguity.
      if (v !== undefined) throw new ConfigError(`tie_word_embeddings is ${JSON.stringify(v)}: must be true or false`);
      if (opts.tieDefault === undefined) throw new Error('config.json has no tie_word_embeddings, which this architecture requires');
      return opts.tieDefault;
    },
    expectedTensors(config, tied) {
      return expectedLlamaTensors(llamaDims(config, opts), opts, tied);
    },
    describe(hfName, shape, tied): TensorRecord {
      const layerMatch = /^model\.layers\.(\d+)\./.exec(hfName);
      const layer = layerMatch ? Number(layerMatch[1]) : null;
      const isWeight = hfName.endsWith('.weight');
      const modulePath = hfName.replace(/\.(weight|bias)$/, '');
      const leaf = modulePath.split('.').pop() ?? '';
      let role: TensorRole = 'other';
      if (hfName === 'model.embed_tokens.weight') role = 'embedding';
      else if (hfName === 'lm_head.weight') role = 'head';
      else if (hfName.endsWith('.bias')) role = 'bias';
      else if (/norm$/.test(leaf)) role = 'norm';
      else if (ROLE_BY_MODULE[leaf]) role = ROLE_BY_MODULE[leaf]!;
      let mlxName: string | null = hfName;
      if ((role === 'head' && tied) || (opts.dropped && opts.dropped.test(hfName))) mlxName = null;
      const quantizable =
        mlxName !== null && isWeight && shape.length === 2 && (role === 'embedding' || role === 'head' || leaf.endsWith('_proj'));
      return { hfName, mlxName, modulePath: mlxName === null ? null : modulePath, role, layer, quantizable };
    },
    inputNorm(record, tied) {
      const l = record.layer;
      switch (record.role) {
        case 'attn_q':
        case 'attn_k':
        case 'attn_v':
          return `model.layers.${l}.input_layernorm.weight`;
        case 'mlp_gate':
        case 'mlp_up':
          return `model.layers.${l}.post_attention_layernorm.weight`;
        case 'head':
          return 'model.norm.weight';
        case 'embedding':
          // A tied embedding is also the head, whose input is the final norm's output.
          return tied ? 'model.norm.weight' : null;
        default:
          return null;
      }
    },
    orderKey(mlxName) {
      const parts = mlxName.split('.');
      const param = parts.pop()!;
      const paramRank = rank(PARAM_ORDER, param);
      const mod = parts.join('.');
      if (mod === 'model.embed_tokens') return `0/${paramRank}`;
      const m = /^model\.layers\.(\d+)\.(.+)$/.exec(mod);
      if (m) {
        const inLayer = rank(LAYER_ORDER, m[2]!);
        return `1/${m[1]!.padStart(6, '0')}/${String(inLayer).padStart(3, '0')}/${m[2]}/${paramRank}`;
      }
      if (mod === 'model.norm') return `2/${paramRank}`;
      if (mod === 'lm_head') return `3/${paramRank}`;
      return `4/${mod}/${paramRank}`;
    },
  };
}

function rank(list: string[], item: string): number {
  const i = list.indexOf(item);
  return i < 0 ? list.length : i;
}
