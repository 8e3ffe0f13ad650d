/**
 * The bytes of one plan entry in its format (src/pipeline/write-mlx.ts writes them): the weight,
 * and for a quantized format its scales and biases, as MLX lays them out.
 */
import { countNonFinite, encodeFromF32, roundToDType, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import { readTensorBytes, readTensorF32, readTensorF32Checked, type ReadBuffers, type TensorInfo } from '../io/safetensors.js';
import { getBackend } from '../kernels/index.js';
import { inverseCholeskyUpperOn } from '../kernels/linalg.js';
import type { GptqChoice } from '../manifest/build.js';
import { quantizeAffineOn, type AffineQuantized } from '../mlx/affine.js';
import { quantizeFp } from '../mlx/fp.js';
import { GPTQ_DAMP, quantizeAffineGptq } from '../mlx/gptq.js';
import { quantizeAffineSearch } from '../mlx/rounding-search.js';
import { numel, outputTensors, type TensorFormat } from '../format.js';
import type { QuantRules, Rounding } from '../options.js';
import { checkNonFinite } from '../measure/nonfinite.js';

/** How plan entries are encoded: the plan's dtype, MLX's rules, the rounding, and whether non-finite values are let through. */
export interface EncodeExec {
  dtype: FloatDType;
  rules: QuantRules;
  rounding: Rounding;
  allow: boolean;
}

/**
 * What encoding needs of a plan entry (plain data: it crosses to worker threads). `colWeights`: the
 * rounding search's per-input-channel weights (src/measure/input-weights.ts), if any; `covariance`:
 * where its input's E[x xᵀ] is (`--rounding gptq`; read by the thread that encodes it).
 */
export interface EncodeItem {
  mlxName: string;
  shape: number[];
  format: TensorFormat;
  colWeights?: Float64Array;
  covariance?: TensorInfo;
}

/** One source tensor's output tensors by MLX name (weight, then scales and biases when quantized), its non-finite counts, and GPTQ's choice. */
export interface Encoded {
  bytes: Map<string, Uint8Array>;
  nonfinite?: NonFiniteCounts;
  gptq?: GptqChoice;
}

type EncodedTensor = { weight: Uint8Array; scales?: Uint8Array; biases?: Uint8Array; nonfinite?: NonFiniteCounts; gptq?: GptqChoice };

/**
 * One source tensor (or one expert of a stack, `shape` being the expert's) encoded in its plan
 * format. Non-finite values in the target dtype are counted in the same read and refused unless
 * `exec.allow` (checkNonFinite).
 */
function encodeTensor(info: TensorInfo, item: EncodeItem, shape: number[], exec: EncodeExec, buffers?: ReadBuffers): EncodedTensor {
  const { dtype } = exec;
  if (item.format.kind === 'float' && info.dtype === dtype) {
    const bytes = readTensorBytes(info);
    return { weight: bytes, nonfinite: checkNonFinite(info, countNonFinite(bytes, dtype, dtype), dtype, exec.allow) };
  }
  const read = readTensorF32Checked(info, dtype, buffers);
  // Refused before any quantizing work, as the analysis refuses.
  const nonfinite = checkNonFinite(info, read.nonfinite, dtype, exec.allow);
  return { ...encodeValues(info, item, shape, exec, read.data), nonfinite };
}

/** encodeTensor's work on the tensor's values as read (float32; changed in place when the dtype casts them). */
function encodeValues(info: TensorInfo, item: EncodeItem, shape: number[], exec: EncodeExec, raw: Float32Array): Omit<EncodedTensor, 'nonfinite'> {
  const { dtype } = exec;
  const { format } = item;
  if (format.kind === 'float') return { weight: encodeFromF32(raw, dtype) };
  // MLX casts every float parameter to the target dtype before quantizing (a no-op when the
  // checkpoint already stores that dtype: its values are exact in it).
  const w = info.dtype === dtype ? raw : roundToDType(raw, dtype);
  const cols = shape[shape.length - 1]!;
  const rows = numel(shape) / cols;
  if (format.kind === 'fp') {
    // No free scale or bias to search: the fp modes are always written as mx.quantize does.
    const q = quantizeFp(w, rows, cols, format.mode, dtype);
    return { weight: new Uint8Array(q.wq.buffer, q.wq.byteOffset, q.wq.byteLength), scales: q.scales };
  }
  const { bits, groupSize } = format;
  const searchOpts = { bits, groupSize, dtype, rules: exec.rules, colWeights: item.colWeights };
  let gptq: GptqChoice | undefined;
  let q: AffineQuantized;
  if (exec.rounding === 'gptq' && item.covariance) {
    const h = readTensorF32(item.covariance);
    const { quantized, ...choice } = quantizeAffineGptq(w, rows, cols, h, inverseCholeskyUpperOn(getBackend(), h, cols, GPTQ_DAMP), searchOpts, getBackend());
    gptq = choice;
    q = quantized;
  } else if (exec.rounding !== 'rtn') {
    // Also gptq's rounding of a tensor without a covariance (no activation feeds it: an untied embedding).
    q = quantizeAffineSearch(w, rows, cols, searchOpts, getBackend());
  } else {
    q = quantizeAffineOn(getBackend(), w, rows, cols, bits, groupSize, exec.rules);
  }
  return {
    weight: new Uint8Array(q.wq.buffer, q.wq.byteOffset, q.wq.byteLength),
    scales: encodeFromF32(q.scales, dtype),
    biases: encodeFromF32(q.biases, dtype),
    gptq,
  };
}

/** The output tensors' names of an entry: weight, and scales/biases when quantized. */
function outputNames(item: EncodeItem): { weight: string; scales: string; biases: string } {
  const base = item.mlxName.replace(/\.weight$/, '');
  return { weight: item.mlxName, scales: `${base}.scales`, biases: `${base}.biases` };
}

/**
 * Bytes of each output tensor of one source tensor, computed once (weight, scales, biases together).
 * `buffers`: where to read the tensor (one thread's, reused tensor after tensor).
 */
export function encodeEntry(info: TensorInfo, item: EncodeItem, exec: EncodeExec, buffers?: ReadBuffers): Encoded {
  return outputBytes(item, encodeTensor(info, item, item.shape, exec, buffers));
}

/**
 * encodeEntry of a tensor already read (`values`: readTensorF32Checked's data in exec.dtype, changed
 * here; `nonfinite`: its counts, already checked): the same bytes without a second read.
 */
export function encodeEntryFrom(info: TensorInfo, item: EncodeItem, exec: EncodeExec, values: Float32Array, nonfinite?: NonFiniteCounts): Encoded {
  return outputBytes(item, { ...encodeValues(info, item, item.shape, exec, values), nonfinite });
}

function outputBytes(item: EncodeItem, e: EncodedTensor): Encoded {
  const n = outputNames(item);
  const bytes = new Map([[n.weight, e.weight]]);
  if (e.scales) bytes.set(n.scales, e.scales);
  if (e.biases) bytes.set(n.biases, e.biases);
  return { bytes, nonfinite: e.nonfinite, gptq: e.gptq };
}

/**
 * A stacked tensor [E, out, in] (mlx-lm's switch_mlp), expert by expert: each expert is read,
 * quantized along its last dimension (as MLX quantizes the 3-D stack: groups never cross rows, so
 * the stack's bytes are the experts' bytes one after the other) and its weight slice handed to
 * `sink` at once. Only the stack's scales and biases (1/16 of its bf16 size at g64) are kept until
 * the stack is done; memory holds one expert in float, never the stack. Returns the scales and
 * biases; the weight went to `sink`.
 */
export function encodeStacked(parts: TensorInfo[], item: EncodeItem, exec: EncodeExec, sink: (weightSlice: Uint8Array) => void): Encoded {
  const n = outputNames(item);
  const sliceShape = item.shape.slice(1);
  const out = outputTensors(n.weight, item.shape, item.format, exec.dtype);
  const scales = out[1] && new Uint8Array(out[1].byteLength);
  const biases = out[2] && new Uint8Array(out[2].byteLength);
  let nonfinite: NonFiniteCounts | undefined;
  parts.forEach((info, i) => {
    const e = encodeTensor(info, item, sliceShape, exec);
    sink(e.weight);
    if (scales && e.scales) scales.set(e.scales, i * e.scales.byteLength);
    if (biases && e.biases) biases.set(e.biases, i * e.biases.byteLength);
    if (e.nonfinite) {
      nonfinite ??= { nan: 0, inf: 0, overflow: 0 };
      nonfinite.nan += e.nonfinite.nan;
      nonfinite.inf += e.nonfinite.inf;
      nonfinite.overflow += e.nonfinite.overflow;
    }
  });
  const bytes = new Map<string, Uint8Array>();
  if (scales) bytes.set(n.scales, scales);
  if (biases) bytes.set(n.biases, biases);
  return { bytes, nonfinite };
}
