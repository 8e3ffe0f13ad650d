/** `swan inspect`: what is inside an HF or MLX directory, with each module's quantization as mlx-lm would load it. */
import { numel } from '../format.js';
import { openHfModel } from '../io/hf-model.js';

export interface LayerQuant {
  bits: number;
  group_size: number;
  mode?: string;
}

export interface ListedTensor {
  name: string;
  dtype: string;
  /** The logical shape (a packed quantized weight is shown unpacked). */
  shape: number[];
  /** `${bits}-bit g${group}` (with the mode unless affine), or '-' when not quantized. */
  quant: string;
  params: number;
  /** Bytes on disk, scales and biases counted with their weight. */
  bytes: number;
}

export interface ModelListing {
  modelType: unknown;
  files: number;
  tensors: ListedTensor[];
  totalBytes: number;
  totalParams: number;
  /** config.json's top-level `quantization`, when quantized. */
  quantization?: LayerQuant;
}

/**
 * The quantization of one module as mlx-lm's loader decides it: its own entry in config
 * `quantization` (false: not quantized), else the top-level bits/group when it has scales.
 */
export function moduleQuantization(config: Record<string, unknown>, module: string, hasScales: boolean): LayerQuant | undefined {
  const q = config.quantization as (Record<string, unknown> & LayerQuant) | undefined;
  if (!q) return undefined;
  const own = q[module];
  if (own && typeof own === 'object') {
    const o = own as Partial<LayerQuant>;
    return { bits: o.bits ?? q.bits, group_size: o.group_size ?? q.group_size, mode: o.mode ?? q.mode };
  }
  if (own === false) return undefined;
  return hasScales ? { bits: q.bits, group_size: q.group_size, mode: q.mode } : undefined;
}

export function inspectModel(dir: string): ModelListing {
  const model = openHfModel(dir);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const tensors: ListedTensor[] = [];
  let totalBytes = 0;
  let totalParams = 0;
  for (const t of model.tensors) {
    totalBytes += t.byteLength;
    if (/\.(scales|biases)$/.test(t.name) && byName.has(t.name.replace(/\.(scales|biases)$/, '.weight'))) continue;
    const module = t.name.replace(/\.(weight|bias)$/, '');
    const q = t.name.endsWith('.weight') ? moduleQuantization(model.config, module, byName.has(`${module}.scales`)) : undefined;
    let shape = t.shape;
    let quant = '-';
    let bytes = t.byteLength;
    if (q && t.dtype === 'U32') {
      shape = [...t.shape.slice(0, -1), (t.shape[t.shape.length - 1]! * 32) / q.bits];
      quant = `${q.mode && q.mode !== 'affine' ? q.mode + ' ' : ''}${q.bits}-bit g${q.group_size}`;
      for (const s of ['scales', 'biases']) bytes += byName.get(`${module}.${s}`)?.byteLength ?? 0;
    }
    const params = numel(shape);
    totalParams += params;
    tensors.push({ name: t.name, dtype: t.dtype, shape, quant, params, bytes });
  }
  tensors.sort((a, b) => naturalCompare(a.name, b.name));
  return {
    modelType: model.config.model_type,
    files: model.files.length,
    tensors,
    totalBytes,
    totalParams,
    quantization: model.config.quantization as LayerQuant | undefined,
  };
}

/** Names in reading order: runs of digits compare as numbers (layers.2 before layers.10), the rest by code unit. */
export function naturalCompare(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}
