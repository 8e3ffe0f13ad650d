/**
 * The writer's entries encoded on a WorkerPool's threads (src/pipeline/worker-pool.ts) ahead of the writing, taken back in write order: the quantization
 * (and the rounding search) of one tensor runs while another is encoded and this thread writes.
 *
 * Same bytes as encoding here: an entry's bytes are a function of its source tensor, its format and
 * the options; the workers run the same backend kind, and the backends give the same bytes for any
 * thread count. The progress, the non-finite counts and the first refusal come in write order.
 *
 * Memory: at most 2·jobs entries are being encoded or wait to be written (each worker holds one
 * tensor in float32 while it encodes it).
 */
import { openModel, type ModelSource } from '../arch/source.js';
import { threadReadBuffers } from '../io/safetensors.js';
import { encodeEntry, type EncodeExec, type Encoded, type EncodeItem } from './encode-tensor.js';
import { WorkerPool, type TaskResult } from './worker-pool.js';

/** An entry to encode, and its source tensor's name. */
export type EncodeTaskItem = EncodeItem & { hfName: string };

/** What each encode worker is given: the model (opened again there), how to encode, and the entries in write order. */
export interface EncodeTask {
  dir: string;
  exec: EncodeExec;
  items: EncodeTaskItem[];
}

/** Encodes `items[k]` for k = 0, 1, … in that order; close() when done or abandoned. */
export interface EntryEncoder {
  take(k: number): Encoded;
  close(): void;
}

/**
 * An encoder of `items`: in this thread when jobs is 1, else on `pool` when given (the caller's, to
 * use again), else on a pool of `jobs` workers of its own.
 */
export function entryEncoder(source: ModelSource, items: EncodeTaskItem[], exec: EncodeExec, jobs: number, pool?: WorkerPool): EntryEncoder {
  if (!pool && (jobs <= 1 || items.length <= 1)) {
    const infos = new Map(source.entries.map((e) => [e.info.name, e.info]));
    const buffers = threadReadBuffers();
    return { take: (k) => encodeEntry(infos.get(items[k]!.hfName)!, items[k]!, exec, buffers), close: () => {} };
  }
  const workers = pool ?? new WorkerPool(jobs);
  const task: EncodeTask = { dir: source.hf.dir, exec, items };
  const run = workers.run<Encoded>('encode', task, items.length, 2 * workers.jobs);
  return { take: (k) => run.take(k), close: () => (pool ? undefined : workers.close()) };
}

/** The worker side (src/pipeline/pool-worker.ts): the model opened there, then one entry per task; the bytes move back, uncopied. */
export function encodeStage(task: EncodeTask): (index: number) => TaskResult {
  const source = openModel(task.dir, { dtype: task.exec.dtype });
  const infos = new Map(source.entries.map((e) => [e.info.name, e.info]));
  const buffers = threadReadBuffers();
  return (k) => {
    const item = task.items[k]!;
    const info = infos.get(item.hfName);
    if (!info) throw new Error(`encode worker: no tensor ${item.hfName} in ${task.dir}`);
    return forTransfer(encodeEntry(info, item, task.exec, buffers));
  };
}

/**
 * `encoded` ready to move to another thread: each array on a whole ArrayBuffer of its own (a view
 * into a larger one, such as Node's buffer pool or a backend's memory, is copied out first: a
 * transfer would take the whole buffer from its owner, a clone would copy all of it), and the
 * buffers to transfer.
 */
export function forTransfer(encoded: Encoded): { result: Encoded; transfer: ArrayBuffer[] } {
  const bytes = new Map<string, Uint8Array>();
  const transfer = new Set<ArrayBuffer>();
  for (const [name, a] of encoded.bytes) {
    const whole = a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !transfer.has(a.buffer);
    const own = whole ? a : new Uint8Array(a); // a copy (a Buffer's slice() would be a view)
    bytes.set(name, own);
    transfer.add(own.buffer as ArrayBuffer);
  }
  return { result: { bytes, nonfinite: encoded.nonfinite, gptq: encoded.gptq }, transfer: [...transfer] };
}
