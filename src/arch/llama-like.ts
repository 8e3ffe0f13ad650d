import type { Architecture, TensorRecord, TensorRole } from './types.js';

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
}

export function llamaLike(opts: LlamaLikeOptions): Architecture {
  return {
    modelTypes: opts.modelTypes,
    tied(config) {
      const v = config.tie_word_embeddings;
      if (typeof v === 'boolean') return v;
      if (opts.tieDefault === undefined) throw new Error('config.json has no tie_word_embeddings, which this architecture requires');
      return opts.tieDefault;
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
