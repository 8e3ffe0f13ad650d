import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeControl, SwanError } from '../errors.js';
import { countNonFinite, encodeFromF32, roundToDType, type NonFiniteCounts } from '../io/float.js';
import { COMPANION_FILES } from '../io/hf-model.js';
import { allowedRoots, copyRegular, modelFileProblem, readRegularText } from '../io/input-file.js';
import { dumpPyJson, parsePyJson, type PyObject, type PyValue } from '../io/pyjson.js';
import { MAX_HEADER_BYTES, readTensorBytes, readTensorF32Checked, type TensorInfo } from '../io/safetensors.js';
import { SafetensorsWriter } from '../io/safetensors-writer.js';
import { getBackend } from '../kernels/index.js';
import { quantizeAffineOn } from '../mlx/affine.js';
import { quantizeFp } from '../mlx/fp.js';
import { quantizeAffineSearch } from '../mlx/rounding-search.js';
import { numel, outputTensors, type OutputTensor } from '../format.js';
import { DEFAULTS, type InputWeighting, type QuantRules, type Rounding } from '../options.js';
import { quantizationConfig, writtenEntries, type Plan, type PlanEntry } from '../plan/plan.js';
import { readImatrix } from '../measure/imatrix.js';
import { inputWeightsFor } from '../measure/input-weights.js';
import { checkNonFinite } from '../measure/nonfinite.js';
import type { ModelSource } from '../arch/source.js';

/** Files copied verbatim from the source directory: tokenizer, chat template, generation config, licenses, and code (a local directory's; a Hub download never has any). */
const COPIED = [...COMPANION_FILES, /^.*\.py$/];

/** How the plan is executed; each absent field takes its DEFAULTS value (src/options.ts). */
export interface WriteOptions {
  rules?: QuantRules;
  /** How quantized layers are rounded: rtn (bit-exact MLX) or search. */
  rounding?: Rounding;
  /** What `rounding: 'search'` minimises across input channels. */
  weighting?: InputWeighting;
  /** `--imatrix` file: with `rounding: 'search'`, its E[x_j²] replaces the weighting. */
  imatrix?: string;
  maxShardBytes?: number;
  /** Write tensors that hold NaN/±Inf or overflow the dtype (default false: throw at the first). */
  allowNonFinite?: boolean;
  onTensor?: (done: number, total: number, name: string) => void;
}

interface Shard {
  file: string;
  tensors: (OutputTensor & { entry: PlanEntry })[];
  bytes: number;
}

/** Output tensors in MLX parameter order, split greedily into ≤ 5 GiB shards named like mlx-lm. */
export function layoutShards(source: ModelSource, plan: Plan, maxBytes = DEFAULTS.maxShardBytes): Shard[] {
  const all = writtenEntries(plan).flatMap((entry) =>
    outputTensors(entry.record.mlxName!, entry.shape, entry.format, plan.dtype).map((t) => ({ ...t, entry })),
  );
  const key = new Map(all.map((t) => [t.name, source.arch.orderKey(t.name)]));
  all.sort((a, b) => (key.get(a.name)! < key.get(b.name)! ? -1 : key.get(a.name)! > key.get(b.name)! ? 1 : 0));
  const shards: Shard[] = [];
  let cur: Shard = { file: '', tensors: [], bytes: 0 };
  for (const t of all) {
    if (cur.tensors.length > 0 && cur.bytes + t.byteLength > maxBytes) {
      shards.push(cur);
      cur = { file: '', tensors: [], bytes: 0 };
    }
    cur.tensors.push(t);
    cur.bytes += t.byteLength;
  }
  if (cur.tensors.length > 0 || shards.length === 0) shards.push(cur);
  const n = shards.length;
  shards.forEach((s, i) => {
    s.file = n === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
  });
  return shards;
}

interface Exec {
  rules: QuantRules;
  rounding: Rounding;
  allow: boolean;
}
type ColWeights = (record: PlanEntry['record'], cols: number) => Float64Array | undefined;

/**
 * One source tensor (or one expert of a stack) encoded in its plan format: the weight's bytes,
 * and for a quantized format its scales and biases. Non-finite values in the target dtype are
 * counted in the same read and refused unless `exec.allow` (checkNonFinite).
 */
function encodeTensor(
  info: TensorInfo,
  entry: PlanEntry,
  shape: number[],
  plan: Plan,
  exec: Exec,
  colWeights: ColWeights,
): { weight: Uint8Array; scales?: Uint8Array; biases?: Uint8Array; nonfinite?: NonFiniteCounts } {
  if (entry.format.kind === 'float' && info.dtype === plan.dtype) {
    const bytes = readTensorBytes(info);
    return { weight: bytes, nonfinite: checkNonFinite(info, countNonFinite(bytes, plan.dtype, plan.dtype), plan.dtype, exec.allow) };
  }
  const read = readTensorF32Checked(info, plan.dtype);
  const raw = read.data;
  const nonfinite = checkNonFinite(info, read.nonfinite, plan.dtype, exec.allow);
  if (entry.format.kind === 'float') return { weight: encodeFromF32(raw, plan.dtype), nonfinite };
  // MLX casts every float parameter to the target dtype before quantizing (a no-op when the
  // checkpoint already stores that dtype: its values are exact in it).
  const w = info.dtype === plan.dtype ? raw : roundToDType(raw, plan.dtype);
  const cols = shape[shape.length - 1]!;
  const rows = numel(shape) / cols;
  if (entry.format.kind === 'fp') {
    // No free scale or bias to search: the fp modes are always written as mx.quantize does.
    const q = quantizeFp(w, rows, cols, entry.format.mode, plan.dtype);
    return { weight: new Uint8Array(q.wq.buffer, q.wq.byteOffset, q.wq.byteLength), scales: q.scales, nonfinite };
  }
  const { bits, groupSize } = entry.format;
  const q =
    exec.rounding === 'search'
      ? quantizeAffineSearch(w, rows, cols, { bits, groupSize, dtype: plan.dtype, rules: exec.rules, colWeights: colWeights(entry.record, cols) }, getBackend())
      : quantizeAffineOn(getBackend(), w, rows, cols, bits, groupSize, exec.rules);
  return {
    weight: new Uint8Array(q.wq.buffer, q.wq.byteOffset, q.wq.byteLength),
    scales: encodeFromF32(q.scales, plan.dtype),
    biases: encodeFromF32(q.biases, plan.dtype),
    nonfinite,
  };
}

/** The output tensors' names of an entry: weight, and scales/biases when quantized. */
function outputNames(entry: PlanEntry): { weight: string; scales: string; biases: string } {
  const weight = entry.record.mlxName!;
  const base = weight.replace(/\.weight$/, '');
  return { weight, scales: `${base}.scales`, biases: `${base}.biases` };
}

/** Bytes of each output tensor of one source tensor, computed once (weight, scales, biases together). */
function encodeEntry(info: TensorInfo, entry: PlanEntry, plan: Plan, exec: Exec, colWeights: ColWeights): { bytes: Map<string, Uint8Array>; nonfinite?: NonFiniteCounts } {
  const e = encodeTensor(info, entry, entry.shape, plan, exec, colWeights);
  const n = outputNames(entry);
  const bytes = new Map([[n.weight, e.weight]]);
  if (e.scales) bytes.set(n.scales, e.scales);
  if (e.biases) bytes.set(n.biases, e.biases);
  return { bytes, nonfinite: e.nonfinite };
}

/**
 * A stacked tensor [E, out, in] (mlx-lm's switch_mlp), expert by expert: each expert is read,
 * quantized along its last dimension (as MLX quantizes the 3-D stack: groups never cross rows, so
 * the stack's bytes are the experts' bytes one after the other) and its weight slice handed to
 * `sink` at once. Only the stack's scales and biases (1/16 of its bf16 size at g64) are kept until
 * the stack is done; memory holds one expert in float, never the stack.
 */
function encodeStacked(
  parts: TensorInfo[],
  entry: PlanEntry,
  plan: Plan,
  exec: Exec,
  colWeights: ColWeights,
  sink: (weightSlice: Uint8Array) => void,
): { bytes: Map<string, Uint8Array>; nonfinite?: NonFiniteCounts } {
  const n = outputNames(entry);
  const sliceShape = entry.shape.slice(1);
  const out = outputTensors(n.weight, entry.shape, entry.format, plan.dtype);
  const scales = out[1] && new Uint8Array(out[1].byteLength);
  const biases = out[2] && new Uint8Array(out[2].byteLength);
  let nonfinite: NonFiniteCounts | undefined;
  parts.forEach((info, i) => {
    const e = encodeTensor(info, entry, sliceShape, plan, exec, colWeights);
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

/**
 * Copy the COPIED files of model directory `from` into `to`. A file that is not a regular file
 * inside the model directory after symlinks (allowedRoots) is not opened and not copied: a model
 * must never make swan publish a file from elsewhere, nor hang it on a FIFO. Returns one warning
 * per skipped file.
 */
export function copyModelFiles(from: string, to: string): string[] {
  const roots = allowedRoots(from);
  const warnings: string[] = [];
  for (const f of readdirSync(from).sort()) {
    if (!COPIED.some((re) => re.test(f))) continue;
    const src = join(from, f);
    const problem = modelFileProblem(src, roots);
    if (problem) {
      warnings.push(escapeControl(`${src}: not copied: ${problem}`));
      continue;
    }
    try {
      copyRegular(src, join(to, f));
    } catch (e) {
      // Replaced between the check and the open (copyRegular refuses it unopened).
      if (!(e instanceof SwanError)) throw e;
      warnings.push(`${e.where}: not copied: ${e.problem}`);
    }
  }
  return warnings;
}

/**
 * Write shards, index and config.json, and copy tokenizer files, into `dir` (an empty directory).
 * Throws at the first tensor with non-finite values unless `allowNonFinite`; `nonfinite` has the
 * counts of every written tensor that has any (HF names). `warnings`: one line per file not copied
 * (copyModelFiles), for the caller to show.
 */
export function writeMlxModel(
  source: ModelSource,
  plan: Plan,
  dir: string,
  opts: WriteOptions = {},
): { bytes: number; shards: string[]; nonfinite: Map<string, NonFiniteCounts>; warnings: string[] } {
  const exec = { rules: opts.rules ?? DEFAULTS.rules, rounding: opts.rounding ?? DEFAULTS.rounding, allow: opts.allowNonFinite ?? DEFAULTS.allowNonFinite };
  const nonfinite = new Map<string, NonFiniteCounts>();
  const shards = layoutShards(source, plan, opts.maxShardBytes);
  const sourceByName = new Map(source.entries.map((e) => [e.info.name, e]));
  const search = exec.rounding === 'search';
  const imatrix = search && opts.imatrix !== undefined ? readImatrix(opts.imatrix, source) : undefined;
  const colWeights = inputWeightsFor(source, search ? (opts.weighting ?? DEFAULTS.weighting) : 'none', imatrix);
  const weightMap: Record<string, string> = {};
  let pending = new Map<string, Uint8Array>();
  let done = 0;
  const written = writtenEntries(plan);
  let totalBytes = 0;
  for (const shard of shards) {
    const writer = new SafetensorsWriter(join(dir, shard.file), shard.tensors, { format: 'mlx' });
    try {
      for (const t of shard.tensors) {
        const src = sourceByName.get(t.entry.hfName)!;
        if (!pending.has(t.name) && src.parts) {
          // A stacked tensor: its weight (the entry's first output tensor) streams in expert by expert.
          const encoded = encodeStacked(src.parts, t.entry, plan, exec, colWeights, (slice) => writer.writePart(t.name, slice));
          if (encoded.nonfinite) nonfinite.set(t.entry.hfName, encoded.nonfinite);
          pending = encoded.bytes;
          opts.onTensor?.(++done, written.length, t.entry.hfName);
          weightMap[t.name] = shard.file;
          totalBytes += t.byteLength;
          continue;
        }
        if (!pending.has(t.name)) {
          const encoded = encodeEntry(src.info, t.entry, plan, exec, colWeights);
          if (encoded.nonfinite) nonfinite.set(t.entry.hfName, encoded.nonfinite);
          pending = encoded.bytes;
          opts.onTensor?.(++done, written.length, t.entry.hfName);
        }
        const bytes = pending.get(t.name)!;
        if (bytes.byteLength !== t.byteLength) {
          throw new SwanError(t.entry.hfName, `internal: encoded ${bytes.byteLength} bytes, expected ${t.byteLength}`);
        }
        writer.write(t.name, bytes);
        pending.delete(t.name);
        weightMap[t.name] = shard.file;
        totalBytes += t.byteLength;
      }
    } catch (e) {
      // Release the descriptor; the caller discards the half-written directory (withAtomicDir).
      try {
        writer.close();
      } catch {
        // close() of an incomplete shard throws by design
      }
      throw e;
    }
    writer.close();
  }
  writeIndex(dir, weightMap, totalBytes, written.reduce((s, e) => s + numel(e.shape), 0));
  writeFileSync(join(dir, 'config.json'), mlxConfigJson(source, plan));
  const warnings = copyModelFiles(source.hf.dir, dir);
  return { bytes: totalBytes, shards: shards.map((s) => s.file), nonfinite, warnings };
}

/** model.safetensors.index.json as mlx-lm writes it: sizes, then the weight map sorted by name. */
export function writeIndex(dir: string, weightMap: Record<string, string>, totalBytes: number, totalParameters: number): void {
  const index = {
    metadata: { total_size: totalBytes, total_parameters: totalParameters },
    weight_map: Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]!])),
  };
  writeFileSync(join(dir, 'model.safetensors.index.json'), dumpPyJson(index as unknown as PyValue));
}

/**
 * config.json as mlx-lm's save_config writes it: the loaded config (eos_token_id from
 * generation_config.json when truthy), without _name_or_path / vision_config, with `quantization`
 * and an identical `quantization_config`, top level sorted, json.dump(indent=4).
 */
export function mlxConfigJson(source: ModelSource, plan: Plan): string {
  // Parsed again from the text openHfModel read, keeping Python's number lexemes.
  let config: PyObject;
  try {
    config = parsePyJson(source.hf.configText) as PyObject;
  } catch (e) {
    throw new SwanError(source.hf.configPath, `invalid JSON: ${(e as Error).message}`);
  }
  delete config._name_or_path;
  delete config.vision_config;
  const genPath = join(source.hf.dir, 'generation_config.json');
  // Read only under the rule of copied files (copyModelFiles warns when it is skipped).
  if (existsSync(genPath) && !modelFileProblem(genPath, allowedRoots(source.hf.dir))) {
    try {
      const gen = parsePyJson(readRegularText(genPath, 'generation_config.json', MAX_HEADER_BYTES)) as PyObject;
      const eos = gen.eos_token_id;
      if (eos !== undefined && eos !== null && eos !== false && eos !== 0 && !(Array.isArray(eos) && eos.length === 0)) {
        config.eos_token_id = eos;
      }
    } catch {
      // mlx-lm ignores an unreadable generation config for this purpose too
    }
  }
  const hasQuantized = writtenEntries(plan).some((e) => e.format.kind !== 'float');
  if (hasQuantized) {
    const q = quantizationConfig(plan, (n) => source.arch.orderKey(n)) as PyObject;
    config.quantization = q;
    config.quantization_config = structuredClone(q);
  } else {
    delete config.quantization;
    delete config.quantization_config;
  }
  return dumpPyJson(config, { sortTopLevel: true });
}
