/**
 * `swan quantize -d` (mlx_lm.convert -d): an MLX model with affine-quantized layers back to float.
 * Every float tensor and every scale and bias is first cast to the target dtype (`--dtype`, else
 * config torch_dtype, as convert casts the loaded parameters), then each quantized weight is
 * dequantized as MLX does (dequantizeAffine: the product and the sum each rounded to the dtype).
 * config.json loses `quantization` and `quantization_config`.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { claimOutputDir, type OutputDirOptions } from '../io/atomic-dir.js';
import { dtypeFromName, DTYPE_NAMES, encodeFromF32, type FloatDType } from '../io/float.js';
import { openHfModel } from '../io/hf-model.js';
import { dumpPyJson, parsePyJson, type PyObject } from '../io/pyjson.js';
import { readTensorBytes, readTensorF32, type TensorInfo } from '../io/safetensors.js';
import { SafetensorsWriter } from '../io/safetensors-writer.js';
import { dequantizeAffine } from '../mlx/affine.js';
import { MAX_SHARD_BYTES } from '../options.js';
import { copyModelFiles, writeIndex } from './write-mlx.js';

export interface DequantizeOptions {
  dtype?: FloatDType;
  overwrite?: boolean;
  onNotice?: OutputDirOptions['onNotice'];
}

interface Layer {
  bits: number;
  groupSize: number;
}

/** The layer's bits and group: its own entry of `quantization`, else the top level (convert's defaults: 4, 64). */
function layerParams(q: PyObject, module: string, configPath: string): Layer {
  const own = q[module];
  const p = (own && typeof own === 'object' && !Array.isArray(own) ? own : q) as PyObject;
  if (p.mode !== undefined && p.mode !== 'affine') throw new SwanError(configPath, `layer ${module}: mode ${String(p.mode)} is not affine; only affine layers can be dequantized here`);
  return { bits: Number(p.bits ?? q.bits ?? 4), groupSize: Number(p.group_size ?? q.group_size ?? 64) };
}

export function dequantizeModel(dir: string, outDir: string, opts: DequantizeOptions = {}): { outDir: string; bytes: number; dtype: FloatDType; warnings: string[] } {
  const hf = openHfModel(dir);
  const config = parsePyJson(hf.configText) as PyObject;
  const q = config.quantization as PyObject | undefined;
  if (!q || typeof q !== 'object') throw new SwanError(hf.configPath, 'has no "quantization": not a quantized MLX model, nothing to dequantize');
  const byName = new Map(hf.tensors.map((t) => [t.name, t]));
  const firstFloat = hf.tensors.find((t) => t.dtype === 'BF16' || t.dtype === 'F16' || t.dtype === 'F32')?.dtype as FloatDType | undefined;
  const dtype = opts.dtype ?? (typeof config.torch_dtype === 'string' ? dtypeFromName(config.torch_dtype) : undefined) ?? firstFloat ?? 'F16';
  const out: { name: string; shape: number[]; encode: () => Uint8Array }[] = [];
  for (const t of hf.tensors) {
    if (/\.(scales|biases)$/.test(t.name) && byName.has(t.name.replace(/\.(scales|biases)$/, '.weight'))) continue;
    const module = t.name.replace(/\.weight$/, '');
    const scales = byName.get(`${module}.scales`);
    if (t.name.endsWith('.weight') && scales && t.dtype === 'U32') {
      const biases = byName.get(`${module}.biases`);
      if (!biases) throw new SwanError(t.file, `${module} has scales but no biases (not affine)`);
      const { bits, groupSize } = layerParams(q, module, hf.configPath);
      const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const cols = (t.shape[t.shape.length - 1]! * 32) / bits;
      out.push({ name: t.name, shape: [...t.shape.slice(0, -1), cols], encode: () => encodeFromF32(dequantize(t, scales, biases, rows, cols, bits, groupSize, dtype), dtype) });
    } else if (t.dtype === 'BF16' || t.dtype === 'F16' || t.dtype === 'F32') {
      out.push({ name: t.name, shape: t.shape, encode: () => (t.dtype === dtype ? readTensorBytes(t) : encodeFromF32(readTensorF32(t), dtype)) });
    } else {
      throw new SwanError(t.file, `tensor ${t.name} has dtype ${t.dtype}, which -d cannot convert to ${DTYPE_NAMES[dtype]}`);
    }
  }
  const bytesOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2);
  const total = out.reduce((s, o) => s + bytesOf(o.shape), 0);
  if (total > MAX_SHARD_BYTES) throw new SwanError(dir, `dequantized it would be ${total} bytes, over one ${MAX_SHARD_BYTES}-byte shard; -d writes one shard`);
  delete config.quantization;
  delete config.quantization_config;
  delete config._name_or_path;
  const target = resolve(outDir);
  const claimed = claimOutputDir(target, { overwrite: opts.overwrite, input: dir, onNotice: opts.onNotice });
  try {
    return claimed.write((tmp) => {
      const file = 'model.safetensors';
      const writer = new SafetensorsWriter(join(tmp, file), out.map((o) => ({ name: o.name, dtype, shape: o.shape, byteLength: bytesOf(o.shape) })), { format: 'mlx' });
      for (const o of out) writer.write(o.name, o.encode());
      writer.close();
      writeIndex(tmp, Object.fromEntries(out.map((o) => [o.name, file])), total, out.reduce((s, o) => s + o.shape.reduce((a, b) => a * b, 1), 0));
      writeFileSync(join(tmp, 'config.json'), dumpPyJson(config, { sortTopLevel: true }));
      const warnings = copyModelFiles(hf.dir, tmp);
      return { outDir: target, bytes: total, dtype, warnings };
    });
  } finally {
    claimed.release();
  }
}

function dequantize(w: TensorInfo, s: TensorInfo, b: TensorInfo, rows: number, cols: number, bits: number, groupSize: number, dtype: FloatDType): Float32Array {
  const bytes = readTensorBytes(w);
  const words = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return dequantizeAffine(words, readTensorF32(s), readTensorF32(b), rows, cols, bits, groupSize, dtype);
}
