import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwanError } from '../errors.js';
import { encodeFromF32, roundToDType } from '../io/float.js';
import { dumpPyJson, parsePyJson, type PyObject, type PyValue } from '../io/pyjson.js';
import { readTensorBytes, readTensorF32, type TensorInfo } from '../io/safetensors.js';
import { SafetensorsWriter } from '../io/safetensors-writer.js';
import { getBackend } from '../kernels/index.js';
import { quantizeAffineOn, type QuantRules } from '../mlx/affine.js';
import { quantizeAffineSearch } from '../mlx/rounding-search.js';
import { numel, outputTensors, type OutputTensor } from '../plan/format.js';
import { quantizationConfig, writtenEntries, type Plan, type PlanEntry } from '../plan/plan.js';
import { inputWeightsFor } from './input-weights.js';
import type { ModelSource } from './source.js';

/** mlx-lm's MAX_FILE_SIZE_GB = 5 → 5 << 30 bytes per shard. */
export const MAX_SHARD_BYTES = 5 * 2 ** 30;

/** Files copied verbatim from the source directory: tokenizer, chat template, generation config, code, licenses. */
const COPIED = [
  /^tokenizer\.json$/,
  /^tokenizer_config\.json$/,
  /^special_tokens_map\.json$/,
  /^added_tokens\.json$/,
  /^tokenizer\.model$/,
  /^vocab\.(json|txt)$/,
  /^merges\.txt$/,
  /^.*\.tiktoken$/,
  /^tiktoken\.model$/,
  /^chat_template\.(jinja|json)$/,
  /^generation_config\.json$/,
  /^preprocessor_config\.json$/,
  /^.*\.py$/,
  /^LICEN[CS]E.*$/i,
];

export interface WriteOptions {
  rules: QuantRules;
  maxShardBytes?: number;
  onTensor?: (done: number, total: number, name: string) => void;
}

interface Shard {
  file: string;
  tensors: (OutputTensor & { entry: PlanEntry })[];
  bytes: number;
}

/** Output tensors in MLX parameter order, split greedily into ≤ 5 GiB shards named like mlx-lm. */
export function layoutShards(source: ModelSource, plan: Plan, maxBytes = MAX_SHARD_BYTES): Shard[] {
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

/** Bytes of each output tensor of one source tensor, computed once (weight, scales, biases together). */
function encodeEntry(
  info: TensorInfo,
  entry: PlanEntry,
  plan: Plan,
  rules: QuantRules,
  colWeights: (record: PlanEntry['record'], cols: number) => Float64Array | undefined,
): Map<string, Uint8Array> {
  const name = entry.record.mlxName!;
  if (entry.format.kind === 'float') {
    const bytes = info.dtype === plan.dtype ? readTensorBytes(info) : encodeFromF32(readTensorF32(info), plan.dtype);
    return new Map([[name, bytes]]);
  }
  // MLX casts every float parameter to the target dtype before quantizing (a no-op when the
  // checkpoint already stores that dtype: its values are exact in it).
  const raw = readTensorF32(info);
  const w = info.dtype === plan.dtype ? raw : roundToDType(raw, plan.dtype);
  const cols = entry.shape[entry.shape.length - 1]!;
  const rows = numel(entry.shape) / cols;
  const { bits, groupSize } = entry.format;
  const q =
    plan.rounding === 'search'
      ? quantizeAffineSearch(w, rows, cols, { bits, groupSize, dtype: plan.dtype, rules, colWeights: colWeights(entry.record, cols) })
      : quantizeAffineOn(getBackend(), w, rows, cols, bits, groupSize, rules);
  const base = name.replace(/\.weight$/, '');
  return new Map([
    [name, new Uint8Array(q.wq.buffer, q.wq.byteOffset, q.wq.byteLength)],
    [`${base}.scales`, encodeFromF32(q.scales, plan.dtype)],
    [`${base}.biases`, encodeFromF32(q.biases, plan.dtype)],
  ]);
}

/** Write shards, index and config.json, and copy tokenizer files, into `dir` (an empty directory). */
export function writeMlxModel(source: ModelSource, plan: Plan, dir: string, opts: WriteOptions): { bytes: number; shards: string[] } {
  const shards = layoutShards(source, plan, opts.maxShardBytes);
  const infoByName = new Map(source.entries.map((e) => [e.info.name, e.info]));
  const colWeights = inputWeightsFor(source, plan.rounding === 'search' ? (plan.weighting ?? 'none') : 'none');
  const weightMap: Record<string, string> = {};
  let pending = new Map<string, Uint8Array>();
  let done = 0;
  const written = writtenEntries(plan);
  let totalBytes = 0;
  for (const shard of shards) {
    const writer = new SafetensorsWriter(join(dir, shard.file), shard.tensors, { format: 'mlx' });
    for (const t of shard.tensors) {
      if (!pending.has(t.name)) {
        pending = encodeEntry(infoByName.get(t.entry.hfName)!, t.entry, plan, opts.rules, colWeights);
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
    writer.close();
  }
  const index = {
    metadata: { total_size: totalBytes, total_parameters: written.reduce((s, e) => s + numel(e.shape), 0) },
    weight_map: Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]!])),
  };
  writeFileSync(join(dir, 'model.safetensors.index.json'), dumpPyJson(index as unknown as PyValue));
  writeFileSync(join(dir, 'config.json'), mlxConfigJson(source, plan));
  for (const f of readdirSync(source.hf.dir)) {
    if (COPIED.some((re) => re.test(f))) copyFileSync(join(source.hf.dir, f), join(dir, f));
  }
  return { bytes: totalBytes, shards: shards.map((s) => s.file) };
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
  if (existsSync(genPath)) {
    try {
      const gen = parsePyJson(readFileSync(genPath, 'utf8')) as PyObject;
      const eos = gen.eos_token_id;
      if (eos !== undefined && eos !== null && eos !== false && eos !== 0 && !(Array.isArray(eos) && eos.length === 0)) {
        config.eos_token_id = eos;
      }
    } catch {
      // mlx-lm ignores an unreadable generation config for this purpose too
    }
  }
  const hasQuantized = writtenEntries(plan).some((e) => e.format.kind === 'affine');
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
