import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeControl, SwanError } from '../errors.js';
import type { NonFiniteCounts } from '../io/float.js';
import { COMPANION_FILES } from '../io/hf-model.js';
import { allowedRoots, copyRegular, modelFileProblem, readRegularText } from '../io/input-file.js';
import { dumpPyJson, parsePyJson, type PyObject, type PyValue } from '../io/pyjson.js';
import { MAX_HEADER_BYTES } from '../io/safetensors.js';
import { SafetensorsWriter } from '../io/safetensors-writer.js';
import { numel, outputTensors, sameFormat, type OutputTensor } from '../format.js';
import { DEFAULTS, roundsWithSearch, type InputWeighting, type QuantRules, type Rounding } from '../options.js';
import { quantizationConfig, writtenEntries, type Plan, type PlanEntry } from '../plan/plan.js';
import { checkGptqImatrix, readImatrix } from '../measure/imatrix.js';
import { inputWeightsFor } from '../measure/input-weights.js';
import type { ModelSource } from '../arch/source.js';
import type { GptqChoice } from '../manifest/build.js';
import { encodeStacked, type EncodeExec, type Encoded } from './encode-tensor.js';
import type { EarlyEncoded } from './early-encode.js';
import { entryEncoder, type EncodeTaskItem } from './parallel-encode.js';
import type { WorkerPool } from './worker-pool.js';

/** Files copied verbatim from the source directory: tokenizer, chat template, generation config, licenses, and code (a local directory's; a Hub download never has any). */
const COPIED = [...COMPANION_FILES, /^.*\.py$/];

/** How the plan is executed; each absent field takes its DEFAULTS value (src/options.ts). */
export interface WriteOptions {
  rules?: QuantRules;
  /** How quantized layers are rounded: rtn (bit-exact MLX), search or gptq. */
  rounding?: Rounding;
  /** What `rounding: 'search'` (and gptq's group search) minimises across input channels. */
  weighting?: InputWeighting;
  /** `--imatrix` file: with search or gptq rounding, its E[x_j²] replaces the weighting; gptq needs its covariances. */
  imatrix?: string;
  maxShardBytes?: number;
  /**
   * Entries encoded at once, each in a worker thread on the installed backend's kind
   * (src/pipeline/parallel-encode.ts; QuantizeOptions.jobs). Default 1: in this thread. The bytes are the same for any value.
   */
  jobs?: number;
  /** Workers to encode on (their number replaces `jobs`): the caller's, started for an earlier stage. */
  pool?: WorkerPool;
  /**
   * Entries encoded in their analysis, by source tensor name (early-encode.ts), and how: used where
   * the plan's format is theirs and they were encoded as this writer would (same dtype, rules,
   * rounding and non-finite rule).
   */
  early?: { exec: EncodeExec; byName: ReadonlyMap<string, EarlyEncoded> };
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
 * counts of every written tensor that has any (HF names); `gptq`, with `rounding: 'gptq'`, what GPTQ did
 * with each tensor it rounded under a covariance. `warnings`: one line per file not copied
 * (copyModelFiles), for the caller to show.
 */
export function writeMlxModel(
  source: ModelSource,
  plan: Plan,
  dir: string,
  opts: WriteOptions = {},
): { bytes: number; shards: string[]; nonfinite: Map<string, NonFiniteCounts>; gptq: Map<string, GptqChoice>; warnings: string[] } {
  const exec: EncodeExec = { dtype: plan.dtype, rules: opts.rules ?? DEFAULTS.rules, rounding: opts.rounding ?? DEFAULTS.rounding, allow: opts.allowNonFinite ?? DEFAULTS.allowNonFinite };
  const nonfinite = new Map<string, NonFiniteCounts>();
  const gptq = new Map<string, GptqChoice>();
  const shards = layoutShards(source, plan, opts.maxShardBytes);
  const sourceByName = new Map(source.entries.map((e) => [e.info.name, e]));
  const search = roundsWithSearch(exec.rounding);
  const imatrix = search && opts.imatrix !== undefined ? readImatrix(opts.imatrix, source) : undefined;
  checkGptqImatrix(exec.rounding, imatrix);
  const colWeights = inputWeightsFor(source, search ? (opts.weighting ?? DEFAULTS.weighting) : 'none', imatrix);
  const item = (entry: PlanEntry): EncodeTaskItem => ({
    hfName: entry.hfName,
    mlxName: entry.record.mlxName!,
    shape: entry.shape,
    format: entry.format,
    colWeights: entry.format.kind === 'affine' ? colWeights(entry.record, entry.shape[entry.shape.length - 1]!) : undefined,
    covariance: entry.format.kind === 'affine' && exec.rounding === 'gptq' ? imatrix!.covariance!.get(entry.hfName) : undefined,
  });
  // Entries in the order they are written (an entry's output tensors are adjacent in MLX order);
  // stacked ones stream expert by expert here instead.
  const order = [...new Set(shards.flatMap((s) => s.tensors.map((t) => t.entry)))].filter((e) => !sourceByName.get(e.hfName)!.parts);
  // Entries the analysis encoded already, in the plan's format (early-encode.ts); the rest are encoded here.
  const ready = new Map<PlanEntry, Encoded>();
  if (opts.early && sameExec(opts.early.exec, exec)) {
    for (const e of order) {
      const early = opts.early.byName.get(e.hfName);
      if (early && sameFormat(early.format, e.format)) ready.set(e, early.encoded);
    }
  }
  const toEncode = order.filter((e) => !ready.has(e));
  const encoder = entryEncoder(source, toEncode.map(item), exec, opts.jobs ?? 1, opts.pool);
  const weightMap: Record<string, string> = {};
  let pending = new Map<string, Uint8Array>();
  let done = 0;
  let next = 0;
  const written = writtenEntries(plan);
  let totalBytes = 0;
  try {
    for (const shard of shards) {
      const writer = new SafetensorsWriter(join(dir, shard.file), shard.tensors, { format: 'mlx' });
      try {
        for (const t of shard.tensors) {
          const src = sourceByName.get(t.entry.hfName)!;
          if (!pending.has(t.name) && src.parts) {
            // A stacked tensor: its weight (the entry's first output tensor) streams in expert by expert.
            const encoded = encodeStacked(src.parts, item(t.entry), exec, (slice) => writer.writePart(t.name, slice));
            if (encoded.nonfinite) nonfinite.set(t.entry.hfName, encoded.nonfinite);
            pending = encoded.bytes;
            opts.onTensor?.(++done, written.length, t.entry.hfName);
            weightMap[t.name] = shard.file;
            totalBytes += t.byteLength;
            continue;
          }
          if (!pending.has(t.name)) {
            let encoded = ready.get(t.entry);
            if (encoded) ready.delete(t.entry);
            else if (toEncode[next] !== t.entry) throw new SwanError(t.entry.hfName, 'internal: output tensors of an entry are not adjacent');
            else encoded = encoder.take(next++);
            if (encoded.nonfinite) nonfinite.set(t.entry.hfName, encoded.nonfinite);
            if (encoded.gptq) gptq.set(t.entry.hfName, encoded.gptq);
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
  } finally {
    encoder.close();
  }
  writeIndex(dir, weightMap, totalBytes, written.reduce((s, e) => s + numel(e.shape), 0));
  writeFileSync(join(dir, 'config.json'), mlxConfigJson(source, plan));
  const warnings = copyModelFiles(source.hf.dir, dir);
  return { bytes: totalBytes, shards: shards.map((s) => s.file), nonfinite, gptq, warnings };
}

function sameExec(a: EncodeExec, b: EncodeExec): boolean {
  return a.dtype === b.dtype && a.rules === b.rules && a.rounding === b.rounding && a.allow === b.allow;
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
