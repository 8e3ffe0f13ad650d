import { checkCheckpoint } from './check.js';
import { architectureFor, SUPPORTED_MODEL_TYPES, type Architecture, type TensorRecord } from './index.js';
import { SwanError } from '../errors.js';
import { dtypeFromName, type FloatDType } from '../io/float.js';
import { openHfModel, type HfModelDir } from '../io/hf-model.js';
import type { TensorInfo } from '../io/safetensors.js';

/** An opened HF model: its tensors, what each one is for MLX, and the target dtype. */
export interface ModelSource {
  hf: HfModelDir;
  modelType: string;
  arch: Architecture;
  tied: boolean;
  /** Target dtype: `--dtype`, else config torch_dtype, else the checkpoint's first float dtype. */
  dtype: FloatDType;
  /**
   * One entry per tensor the MLX model has (and per dropped one): a source tensor, or a stacked
   * tensor (mlx-lm's MoE `switch_mlp`) whose `parts` are its source tensors in stacking order and
   * whose `info` describes the whole stack (name = the MLX name, no data of its own: read `parts`).
   */
  entries: SourceEntry[];
  totalLayers: number;
  /** Tensors not written because mlx-lm drops them too (a tied lm_head, rotary buffers), one line each. */
  warnings: string[];
}

export interface SourceEntry {
  info: TensorInfo;
  record: TensorRecord;
  parts?: TensorInfo[];
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

export function openModel(dir: string, opts: { dtype?: FloatDType } = {}): ModelSource {
  const hf = openHfModel(dir);
  const { configPath } = hf;
  const modelType = hf.config.model_type;
  const arch = architectureFor(modelType);
  if (!arch) {
    throw new SwanError(
      configPath,
      `model_type ${JSON.stringify(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
    );
  }
  let tied: boolean;
  try {
    tied = arch.tied(hf.config, new Set(hf.tensors.map((t) => t.name)));
  } catch (e) {
    throw new SwanError(configPath, (e as Error).message);
  }
  for (const t of hf.tensors) {
    if (!FLOAT_DTYPES.has(t.dtype) && t.shape.length > 0) {
      throw new SwanError(t.file, `tensor ${t.name} has dtype ${t.dtype}; swan reads BF16, F16 and F32 checkpoints`);
    }
  }
  const described = hf.tensors.map((info) => ({ info, record: arch.describe(info.name, info.shape, tied) }));
  const warnings = checkCheckpoint(hf, arch, tied, described);
  const entries = stackExperts(described);
  const configured = typeof hf.config.torch_dtype === 'string' ? dtypeFromName(hf.config.torch_dtype) : undefined;
  const firstFloat = hf.tensors.find((t) => FLOAT_DTYPES.has(t.dtype))?.dtype as FloatDType | undefined;
  const dtype = opts.dtype ?? configured ?? firstFloat ?? 'F16';
  let maxLayer = -1;
  for (const t of hf.tensors) {
    const m = /layers\.(\d+)/.exec(t.name);
    if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
  }
  return { hf, modelType: modelType as string, arch, tied, dtype, entries, totalLayers: maxLayer + 1, warnings };
}

/**
 * Many-to-one: the experts' tensors of one MLX tensor become one entry, in expert order, where the
 * first expert stood (checkCheckpoint has made sure every expert is there with its shape).
 */
function stackExperts(described: { info: TensorInfo; record: TensorRecord }[]): SourceEntry[] {
  const stacks = new Map<string, { info: TensorInfo; record: TensorRecord }[]>();
  const out: SourceEntry[] = [];
  for (const d of described) {
    if (d.record.expert === undefined) {
      out.push(d);
      continue;
    }
    const name = d.record.mlxName!;
    let parts = stacks.get(name);
    if (!parts) {
      stacks.set(name, (parts = []));
      out.push({ info: d.info, record: d.record, parts: [] });
    }
    parts.push(d);
  }
  return out.map((e) => {
    if (!e.parts) return e;
    const parts = stacks.get(e.record.mlxName!)!.sort((a, b) => a.record.expert! - b.record.expert!);
    const first = parts[0]!.info;
    const { expert: _expert, ...rest } = e.record;
    const record: TensorRecord = { ...rest, hfName: rest.mlxName!, experts: parts.length };
    const shape = [parts.length, ...first.shape];
    const info: TensorInfo = { name: record.hfName, dtype: first.dtype, shape, file: first.file, offset: -1, byteLength: parts.reduce((s, p) => s + p.info.byteLength, 0) };
    return { info, record, parts: parts.map((p) => p.info) };
  });
}

/** Query heads per key/value head, from config.json (1 when not grouped). */
export function kvShare(source: ModelSource): number {
  const c = source.hf.config;
  const heads = Number(c.num_attention_heads);
  const kv = Number(c.num_key_value_heads ?? heads);
  return heads > 0 && kv > 0 ? heads / kv : 1;
}
