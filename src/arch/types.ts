/** What a tensor is, independent of its values. */
export type TensorRole =
  | 'embedding'
  | 'head'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_o'
  | 'mlp_gate'
  | 'mlp_up'
  | 'mlp_down'
  /** phi3's fused q/k/v projection and gate/up projection. */
  | 'attn_qkv'
  | 'mlp_gate_up'
  /** A mixture-of-experts router (`mlp.gate`, `block_sparse_moe.gate`) or qwen2_moe's `shared_expert_gate`. */
  | 'router'
  | 'norm'
  | 'bias'
  | 'other';

export interface TensorRecord {
  /** Name in the HF checkpoint. */
  hfName: string;
  /** Name of the parameter in the MLX model (null: the MLX model has no such parameter, e.g. a tied lm_head). */
  mlxName: string | null;
  /** MLX module path (mlxName without `.weight`/`.bias`), the key used in config `quantization`. */
  modulePath: string | null;
  role: TensorRole;
  layer: number | null;
  /** True when the MLX module is an nn.Linear / nn.Embedding / SwitchLinear weight (has to_quantized). */
  quantizable: boolean;
  /** For one expert's tensor: its index in the stacked MLX tensor (mlxName) it becomes a slice of. */
  expert?: number;
  /** For a stacked tensor (many-to-one): how many source tensors (experts) it stacks along axis 0. */
  experts?: number;
}

/** A format an mlx-lm model's own `quant_predicate` forces on a module (what mlx_lm.convert writes). */
export interface MlxQuantRule {
  bits: number;
  groupSize: number;
}

/** A parameter the MLX model has: its shape, and that shape in config.json's keys (for messages). */
export interface ExpectedTensor {
  shape: number[];
  /** e.g. `[num_attention_heads×head_dim, hidden_size]`. */
  from: string;
}

/** One architecture family: how HF names map to the MLX model, like mlx-lm's models/*.py sanitize. */
export interface Architecture {
  readonly modelTypes: readonly string[];
  /**
   * Whether embeddings are tied for this config (mlx-lm's ModelArgs default when the key is missing;
   * gemma3_text decides from whether the checkpoint has lm_head.weight).
   */
  tied(config: Record<string, unknown>, tensorNames?: ReadonlySet<string>): boolean;
  /** The format mlx-lm's `quant_predicate` forces on this module path under mlx_lm.convert, if any. */
  quantRule(modulePath: string): MlxQuantRule | undefined;
  /**
   * Every parameter of the model mlx-lm builds from this config (HF names; no lm_head when tied),
   * after checking the config values that model reads: throws ConfigError (src/arch/config.ts)
   * naming the key.
   */
  expectedTensors(config: Record<string, unknown>, tied: boolean): Map<string, ExpectedTensor>;
  /** Describe one HF tensor. */
  describe(hfName: string, shape: number[], tied: boolean): TensorRecord;
  /** Sort key so that output tensors follow MLX module-construction order (tree_flatten of parameters). */
  orderKey(mlxName: string): string;
  /**
   * HF name of the RMSNorm whose output is this weight's input (its gain is a data-free prior on the
   * input channels' energy), or null when the input does not come straight from a norm.
   */
  inputNorm(record: TensorRecord, tied: boolean): string | null;
}

/** The sizes of a llama-family decoder, as config.json gives them. */
export interface DecoderDims {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
}
