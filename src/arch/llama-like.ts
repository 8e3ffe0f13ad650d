import { CONFIG_LIMITS, ConfigError, ConfigReader } from './config.js';
import type { Architecture, DecoderDims, ExpectedTensor, MlxQuantRule, TensorRecord, TensorRole } from './types.js';

/**
 * Shared rules of the decoder families mlx-lm builds as embed → layers(attention, MLP or MoE,
 * norms) → norm → head (llama.py, qwen2.py, qwen3.py, gemma2.py, gemma3_text.py, phi3.py, olmo2.py,
 * granite.py, qwen2_moe.py, qwen3_moe.py, mixtral.py): HF names equal MLX names except the experts,
 * which mlx-lm's sanitize stacks many-to-one into `switch_mlp.{gate,up,down}_proj` [E, out, in].
 * Linear weights are [out, in]; nothing is transposed.
 */

const ROLE_BY_MODULE: Record<string, TensorRole> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_o',
  qkv_proj: 'attn_qkv',
  gate_proj: 'mlp_gate',
  up_proj: 'mlp_up',
  down_proj: 'mlp_down',
  gate_up_proj: 'mlp_gate_up',
  gate: 'router',
  shared_expert_gate: 'router',
};

/** Roles whose weight is an MLX Linear/SwitchLinear (quantizable), besides the embedding and head. */
const LINEAR_ROLES = new Set<TensorRole>(['attn_q', 'attn_k', 'attn_v', 'attn_o', 'attn_qkv', 'mlp_gate', 'mlp_up', 'mlp_down', 'mlp_gate_up', 'router']);

/** Parameter order inside a module (weight, scales, biases, bias). */
const PARAM_ORDER = ['weight', 'scales', 'biases', 'bias'];

/** The stacked projections of a SwitchGLU, in mlx-lm's construction order (switch_layers.py). */
const SWITCH_PROJECTIONS = ['gate_proj', 'up_proj', 'down_proj'] as const;
type SwitchProjection = (typeof SWITCH_PROJECTIONS)[number];

/** A mixture-of-experts block as mlx-lm builds and sanitizes it. */
export interface MoeSpec {
  /** The layer attribute holding the block: `mlp` (qwen2_moe, qwen3_moe) or `block_sparse_moe` (mixtral). */
  block: 'mlp' | 'block_sparse_moe';
  /** HF module name of each expert projection inside `experts.E.` (mixtral: w1, w3, w2). */
  expertNames: Record<SwitchProjection, string>;
  /** Config keys of the expert count and the expert intermediate size. */
  numExpertsKey: string;
  intermediateKey: string;
  /** qwen2_moe: a dense `shared_expert` MLP and its `shared_expert_gate` Linear(hidden, 1). */
  sharedExpert?: boolean;
  /** qwen3_moe: a layer is MoE unless in mlp_only_layers, and only every decoder_sparse_step-th. */
  sparseStep?: boolean;
}

export interface LlamaLikeOptions {
  modelTypes: string[];
  /**
   * How mlx-lm decides tied embeddings: `config` (tie_word_embeddings, `tieDefault` when absent),
   * `always` (gemma2: no lm_head module), `never` (qwen2_moe: always an lm_head), `head-absent`
   * (gemma3_text: tied exactly when the checkpoint has no lm_head.weight).
   */
  tie?: 'config' | 'always' | 'never' | 'head-absent';
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
  /** RMSNorms q_norm/k_norm: per head of head_dim (qwen3.py, gemma3_text.py), or over the whole projection (olmo2.py). */
  qkNorm: boolean | 'projection';
  /** phi3.py: one fused qkv_proj and one fused gate_up_proj (mlx-lm keeps them fused). */
  fused?: boolean;
  /** The layer's norms in mlx-lm's module order (default input_layernorm, post_attention_layernorm). */
  norms?: string[];
  /** The norms whose output feeds attention and the MLP (their gains are the input prior); null: none usable. */
  inputNorms?: { attn: string; mlp: string } | null;
  /** llama.py builds one layer per entry of `layer_types` when the config has it. */
  layerTypes?: boolean;
  /** Other ModelArgs fields without a default in mlx-lm (loading fails without them). */
  required?: string[];
  /** ModelArgs defaults of size fields mlx-lm fills in when config.json omits them (mixtral, gemma3_text). */
  defaults?: Record<string, number>;
  moe?: MoeSpec;
  /** mlx-lm's `quant_predicate` of the model: formats it forces under mlx_lm.convert. */
  quantRule?: (modulePath: string) => MlxQuantRule | undefined;
}

/** The dimensions mlx-lm's model takes from config.json, checked (ConfigError names the key). */
export interface LlamaDims extends DecoderDims {
  attentionBias: boolean;
  mlpBias: boolean;
  /** Mixture of experts: count, expert intermediate size, shared expert size, which layers are MoE. */
  experts?: { count: number; intermediate: number; shared: number; isMoe: (layer: number) => boolean };
}

export function llamaDims(config: Record<string, unknown>, opts: LlamaLikeOptions): LlamaDims {
  const r = new ConfigReader(config, String(config.model_type));
  const L = CONFIG_LIMITS;
  const def = (key: string) => opts.defaults?.[key];
  const hidden = r.posInt('hidden_size', L.width, def('hidden_size'));
  const layers = r.posInt('num_hidden_layers', L.layers, def('num_hidden_layers'));
  const intermediate = r.posInt('intermediate_size', L.width, def('intermediate_size'));
  const heads = r.posInt('num_attention_heads', L.heads, def('num_attention_heads'));
  const kvHeads = r.posInt('num_key_value_heads', L.heads, opts.kvHeadsRequired ? def('num_key_value_heads') : (def('num_key_value_heads') ?? heads));
  const vocab = r.posInt('vocab_size', L.vocab, def('vocab_size'));
  r.posNumber('rms_norm_eps', def('rms_norm_eps'));
  for (const key of opts.required ?? []) {
    if (!r.has(key)) throw new ConfigError(`${key} is missing; mlx-lm's ${r.modelType} model requires it`);
  }
  // Grouped attention needs a whole number of query heads per key/value head.
  if (heads % kvHeads !== 0) throw new ConfigError(`num_key_value_heads is ${kvHeads}: it must divide num_attention_heads (${heads})`);
  let headDim: number;
  if (opts.headDim === 'config' || (opts.headDim === 'config-or-derived' && r.has('head_dim'))) {
    headDim = r.posInt('head_dim', L.width, def('head_dim'));
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
    experts: opts.moe && moeDims(r, opts.moe, def),
  };
}

function moeDims(r: ConfigReader, moe: MoeSpec, def: (key: string) => number | undefined): LlamaDims['experts'] {
  const L = CONFIG_LIMITS;
  const count = r.posInt(moe.numExpertsKey, L.experts, def(moe.numExpertsKey));
  const perToken = r.posInt('num_experts_per_tok', L.experts, def('num_experts_per_tok'));
  if (perToken > count) throw new ConfigError(`num_experts_per_tok is ${perToken}: above ${moe.numExpertsKey} (${count})`);
  const intermediate = r.posInt(moe.intermediateKey, L.width, def(moe.intermediateKey));
  const shared = moe.sharedExpert ? r.posInt('shared_expert_intermediate_size', L.width) : 0;
  let isMoe = (_layer: number) => true;
  if (moe.sparseStep) {
    const step = r.posInt('decoder_sparse_step', L.layers);
    const only = r.config.mlp_only_layers;
    if (!Array.isArray(only) || !only.every((x) => Number.isInteger(x))) throw new ConfigError(`mlp_only_layers is ${JSON.stringify(only)}: must be a list of layer indices`);
    const dense = new Set(only as number[]);
    isMoe = (l) => !dense.has(l) && (l + 1) % step === 0;
  }
  return { count, intermediate, shared, isMoe };
}

/** HF name of expert `e`'s projection in layer `l`. */
function expertName(moe: MoeSpec, l: number, e: number, proj: SwitchProjection): string {
  return `model.layers.${l}.${moe.block}.experts.${e}.${moe.expertNames[proj]}.weight`;
}

/** The parameters mlx-lm's Model constructs, by HF name (experts one by one, as the checkpoint has them), with shapes. */
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
    if (opts.fused) {
      linear('self_attn.qkv_proj', (d.heads + 2 * d.kvHeads) * d.headDim, d.hidden, `(num_attention_heads+2×num_key_value_heads)×${hd}`, 'hidden_size', false);
    } else {
      linear('self_attn.q_proj', d.heads * d.headDim, d.hidden, q, 'hidden_size', qkvBias);
      linear('self_attn.k_proj', d.kvHeads * d.headDim, d.hidden, kv, 'hidden_size', qkvBias);
      linear('self_attn.v_proj', d.kvHeads * d.headDim, d.hidden, kv, 'hidden_size', qkvBias);
    }
    linear('self_attn.o_proj', d.hidden, d.heads * d.headDim, 'hidden_size', q, d.attentionBias);
    if (opts.qkNorm === 'projection') {
      add(`${p}.self_attn.q_norm.weight`, [d.heads * d.headDim], [q]);
      add(`${p}.self_attn.k_norm.weight`, [d.kvHeads * d.headDim], [kv]);
    } else if (opts.qkNorm) {
      add(`${p}.self_attn.q_norm.weight`, [d.headDim], [hd]);
      add(`${p}.self_attn.k_norm.weight`, [d.headDim], [hd]);
    }
    const moe = opts.moe;
    if (moe && d.experts && d.experts.isMoe(l)) {
      const x = d.experts;
      const b = moe.block;
      linear(`${b}.gate`, x.count, d.hidden, moe.numExpertsKey, 'hidden_size', false);
      for (let e = 0; e < x.count; e++) {
        add(expertName(moe, l, e, 'gate_proj'), [x.intermediate, d.hidden], [moe.intermediateKey, 'hidden_size']);
        add(expertName(moe, l, e, 'up_proj'), [x.intermediate, d.hidden], [moe.intermediateKey, 'hidden_size']);
        add(expertName(moe, l, e, 'down_proj'), [d.hidden, x.intermediate], ['hidden_size', moe.intermediateKey]);
      }
      if (moe.sharedExpert) {
        const s = 'shared_expert_intermediate_size';
        linear(`${b}.shared_expert.gate_proj`, x.shared, d.hidden, s, 'hidden_size', false);
        linear(`${b}.shared_expert.down_proj`, d.hidden, x.shared, 'hidden_size', s, false);
        linear(`${b}.shared_expert.up_proj`, x.shared, d.hidden, s, 'hidden_size', false);
        linear(`${b}.shared_expert_gate`, 1, d.hidden, '1', 'hidden_size', false);
      }
    } else if (opts.fused) {
      linear('mlp.gate_up_proj', 2 * d.intermediate, d.hidden, '2×intermediate_size', 'hidden_size', false);
      linear('mlp.down_proj', d.hidden, d.intermediate, 'hidden_size', 'intermediate_size', false);
    } else {
      linear('mlp.gate_proj', d.intermediate, d.hidden, 'intermediate_size', 'hidden_size', d.mlpBias);
      linear('mlp.down_proj', d.hidden, d.intermediate, 'hidden_size', 'intermediate_size', d.mlpBias);
      linear('mlp.up_proj', d.intermediate, d.hidden, 'intermediate_size', 'hidden_size', d.mlpBias);
    }
    for (const norm of layerNorms(opts)) add(`${p}.${norm}.weight`, [d.hidden], ['hidden_size']);
  }
  add('model.norm.weight', [d.hidden], ['hidden_size']);
  if (!tied) add('lm_head.weight', [d.vocab, d.hidden], ['vocab_size', 'hidden_size']);
  return out;
}

function layerNorms(opts: LlamaLikeOptions): string[] {
  return opts.norms ?? ['input_layernorm', 'post_attention_layernorm'];
}

/**
 * Module order inside a decoder layer as mlx-lm constructs it (tree_flatten order of the
 * parameters, also the order of config.json's per-layer `quantization` entries): attention, then
 * the MLP — gate, down, up; a MoE block's router, its SwitchGLU (gate, up, down), its shared
 * expert — then the norms in the family's order.
 */
function layerOrder(opts: LlamaLikeOptions): string[] {
  const attn = opts.fused ? ['self_attn.qkv_proj', 'self_attn.o_proj'] : ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'];
  const mlp = opts.fused ? ['mlp.gate_up_proj', 'mlp.down_proj'] : ['mlp.gate_proj', 'mlp.down_proj', 'mlp.up_proj'];
  const moe: string[] = [];
  if (opts.moe) {
    const b = opts.moe.block;
    moe.push(`${b}.gate`, ...SWITCH_PROJECTIONS.map((p) => `${b}.switch_mlp.${p}`));
    if (opts.moe.sharedExpert) moe.push(`${b}.shared_expert.gate_proj`, `${b}.shared_expert.down_proj`, `${b}.shared_expert.up_proj`, `${b}.shared_expert_gate`);
  }
  return [...attn, 'self_attn.q_norm', 'self_attn.k_norm', ...moe, ...mlp, ...layerNorms(opts)];
}

export function llamaLike(opts: LlamaLikeOptions): Architecture {
  const order = layerOrder(opts);
  const moe = opts.moe;
  const expertRe = moe ? new RegExp(`^model\\.layers\\.(\\d+)\\.${moe.block}\\.experts\\.(\\d+)\\.(\\w+)\\.weight$`) : null;
  const projByExpertName = new Map(moe ? SWITCH_PROJECTIONS.map((p) => [moe.expertNames[p], p] as const) : []);
  const inputNorms = opts.inputNorms === undefined ? { attn: 'input_layernorm', mlp: 'post_attention_layernorm' } : opts.inputNorms;
  return {
    modelTypes: opts.modelTypes,
    tied(config, tensorNames) {
      const tie = opts.tie ?? 'config';
      if (tie === 'always') return true;
      if (tie === 'never') return false;
      if (tie === 'head-absent') return !tensorNames?.has('lm_head.weight');
      const v = config.tie_word_embeddings;
      if (typeof v === 'boolean') return v;
      // mlx-lm reads null as untied, transformers' default as tied: refuse the ambiguity.
      if (v !== undefined) throw new ConfigError(`tie_word_embeddings is ${JSON.stringify(v)}: must be true or false`);
      if (opts.tieDefault === undefined) throw new Error('config.json has no tie_word_embeddings, which this architecture requires');
      return opts.tieDefault;
    },
    quantRule(modulePath) {
      return opts.quantRule?.(modulePath);
    },
    expectedTensors(config, tied) {
      return expectedLlamaTensors(llamaDims(config, opts), opts, tied);
    },
    describe(hfName, shape, tied): TensorRecord {
      const layerMatch = /^model\.layers\.(\d+)\./.exec(hfName);
      const layer = layerMatch ? Number(layerMatch[1]) : null;
      const expert = expertRe?.exec(hfName);
      const proj = expert && projByExpertName.get(expert[3]!);
      if (expert && proj) {
        // One expert's projection: a slice of the stacked SwitchLinear mlx-lm's sanitize builds.
        const modulePath = `model.layers.${expert[1]}.${moe!.block}.switch_mlp.${proj}`;
        const role = ROLE_BY_MODULE[proj]!;
        return { hfName, mlxName: `${modulePath}.weight`, modulePath, role, layer, quantizable: shape.length === 2, expert: Number(expert[2]) };
      }
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
      const quantizable = mlxName !== null && isWeight && shape.length === 2 && (role === 'embedding' || role === 'head' || LINEAR_ROLES.has(role));
      return { hfName, mlxName, modulePath: mlxName === null ? null : modulePath, role, layer, quantizable };
    },
    inputNorm(record, tied) {
      const l = record.layer;
      if (inputNorms === null) return null;
      switch (record.role) {
        case 'attn_q':
        case 'attn_k':
        case 'attn_v':
        case 'attn_qkv':
          return `model.layers.${l}.${inputNorms.attn}.weight`;
        case 'mlp_gate':
        case 'mlp_up':
        case 'mlp_gate_up':
        case 'router':
          // A shared expert's and the experts' gate/up read the same normed input as the router.
          return `model.layers.${l}.${inputNorms.mlp}.weight`;
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
        const inLayer = rank(order, m[2]!);
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
