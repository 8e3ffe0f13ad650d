/**
 * The analysis with several tensors at once: `jobs` worker threads (src/pipeline/analysis-worker.ts),
 * each with its own kernel backend of the kind installed here, analyse one model entry each; this
 * thread hands out entries in model order and takes the results back in model order. A small
 * tensor's metrics (Cholesky-QR, eigenvalues, Gaussian draws: scalar code) cannot fill two cores,
 * two tensors side by side can.
 *
 * Same result as analyzeModel: an entry's analysis is a function of the model, the options and its
 * index (seeds follow tensor names, src/rng.ts Rng.forKey), the workers run the same backend kind,
 * and the backends give the same bytes for any thread count. The progress callbacks, the non-finite
 * counts and the first refusal come in model order, as in one thread.
 *
 * Memory: each worker holds one entry at a time, so at most `jobs` tensors (with their metric
 * scratch) are in memory at once; this thread holds none, only the finished analyses.
 *
 * The stages are synchronous (src/cli/main.ts), so this thread waits for the workers without its
 * event loop: the workers answer on MessagePorts it reads with receiveMessageOnPort, and bump a
 * shared counter it sleeps on with Atomics.wait.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { getBackend } from '../kernels/index.js';
import type { BackendChoice } from '../kernels/select.js';
import { openModel, type ModelSource } from '../arch/source.js';
import { analysisContext, analyzeModel, collectAnalysis, type AnalyzeOptions, type EntryAnalysis, type ModelAnalysis } from '../measure/analyze.js';
import { errorData, rebuildError, type ErrorData } from './async.js';

/** Tensors analysed at once by default: two cores' worth (more tensors in flight cost memory, and big tensors fill the cores through the GEMM threads anyway). */
export const DEFAULT_MAX_JOBS = 2;

export interface AnalysisWorkerData {
  dir: string;
  options: Omit<AnalyzeOptions, 'onTensor'>;
  backend: { backend: BackendChoice; threads?: number };
  port: MessagePort;
  signal: SharedArrayBuffer;
}

export type AnalysisReply = { index: number; result: EntryAnalysis } | { index: number; error: ErrorData };

/**
 * The installed backend as a choice a worker can install again; undefined for a backend this module
 * does not know (a test's own): it cannot be recreated in a worker, so the analysis stays here.
 */
export function installedBackendSpec(): { backend: BackendChoice; threads?: number } | undefined {
  const b = getBackend() as { name: string; threads?: number };
  if (b.name.startsWith('native-')) return { backend: 'native', threads: b.threads };
  if (b.name.startsWith('wasm-')) return { backend: 'wasm', threads: b.threads };
  if (b.name === 'js') return { backend: 'js' };
  return undefined;
}

/**
 * Below this many weights a model is analysed in one thread by default: starting a worker (a module
 * graph and the model's headers) costs a few hundred milliseconds, more than a toy model's analysis.
 */
export const MIN_PARALLEL_WEIGHTS = 1 << 22;

/**
 * How many tensors to analyse at once: `jobs` when given, else DEFAULT_MAX_JOBS within the backend's
 * threads (`--threads 1`: one, in this thread) for models of at least MIN_PARALLEL_WEIGHTS; never
 * more than the entries; 1 for a backend workers cannot install.
 */
export function analysisJobs(jobs: number | undefined, model: { entries: number; weights: number }): number {
  const spec = installedBackendSpec();
  if (!spec) return 1;
  const wanted = jobs ?? (model.weights < MIN_PARALLEL_WEIGHTS ? 1 : Math.min(DEFAULT_MAX_JOBS, spec.threads ?? availableParallelism()));
  return Math.max(1, Math.min(wanted, model.entries));
}

/** What analysisJobs needs to know of a model. */
export function modelSize(source: ModelSource): { entries: number; weights: number } {
  return { entries: source.entries.length, weights: source.entries.reduce((s, e) => s + e.info.shape.reduce((a, b) => a * b, 1), 0) };
}

interface Slot {
  worker: Worker;
  port: MessagePort;
  /** The entry it is analysing, or -1 when free. */
  busy: number;
}

/**
 * analyzeModel with `jobs` entries in flight (jobs ≥ 2; worker threads). The same ModelAnalysis,
 * with this thread's ModelSource.
 */
export function analyzeModelParallel(dir: string, opts: AnalyzeOptions, jobs: number): ModelAnalysis {
  const { onTensor, ...options } = opts;
  // Opened here first: a bad model or option fails in this thread, before any worker starts.
  const ctx = analysisContext(dir, options);
  const spec = installedBackendSpec();
  if (!spec) throw new Error('analyzeModelParallel: the installed kernel backend cannot run in a worker thread');
  const signal = new SharedArrayBuffer(4);
  const counter = new Int32Array(signal);
  const slots: Slot[] = [];
  const done = new Map<number, AnalysisReply>();
  const total = ctx.source.entries.length;
  let nextToSend = 0;
  try {
    for (let k = 0; k < Math.min(jobs, total); k++) {
      const { port1, port2 } = new MessageChannel();
      const data: AnalysisWorkerData = { dir, options, backend: spec, port: port2, signal };
      const worker = new Worker(new URL('./analysis-worker.js', import.meta.url), { workerData: data, transferList: [port2] });
      worker.unref();
      slots.push({ worker, port: port1, busy: -1 });
    }
    const dispatch = () => {
      for (const s of slots) {
        if (s.busy < 0 && nextToSend < total) {
          s.busy = nextToSend++;
          s.port.postMessage(s.busy);
        }
      }
    };
    /** Read every answer waiting; true when there was one. */
    const drain = (): boolean => {
      let got = false;
      for (const s of slots) {
        for (let m = receiveMessageOnPort(s.port); m; m = receiveMessageOnPort(s.port)) {
          const reply = m.message as AnalysisReply;
          done.set(reply.index, reply);
          if (reply.index === s.busy || reply.index < 0) s.busy = -1;
          got = true;
        }
      }
      return got;
    };
    return collectAnalysis(ctx, onTensor, (_ctx, index) => {
      for (;;) {
        dispatch();
        const reply = done.get(index) ?? done.get(-1);
        if (reply) {
          done.delete(index);
          if ('error' in reply) throw rebuildError(reply.error);
          // The record object of this thread's ModelSource, as analyzeModel gives.
          reply.result.analysis.record = ctx.source.entries[index]!.record;
          return reply.result;
        }
        const seen = Atomics.load(counter, 0);
        if (!drain()) waitForAnswers(counter, seen);
      }
    });
  } finally {
    for (const s of slots) {
      s.port.close();
      void s.worker.terminate();
    }
  }
}

/**
 * Sleep until a worker bumps the counter past `seen` (or a second passes). Its own function so that
 * a CPU profile shows this thread's waiting as such (bench/perf/profile.ts leaves it out).
 */
function waitForAnswers(counter: Int32Array, seen: number): void {
  Atomics.wait(counter, 0, seen, 1000);
}

/** The worker side: errors as data, one answer per request, then a bump of the shared counter. */
export function replyTo(data: AnalysisWorkerData, reply: AnalysisReply): void {
  data.port.postMessage(reply);
  const counter = new Int32Array(data.signal);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
}

export { errorData };

/** analyzeModel, with analysisJobs(jobs) entries at once: in this thread when that is one. */
export function analyzeModelJobs(dir: string, opts: AnalyzeOptions, jobs?: number): ModelAnalysis {
  // Counting entries opens the model's headers once more: milliseconds.
  const n = analysisJobs(jobs, modelSize(openModel(dir, { dtype: opts.dtype })));
  return n > 1 ? analyzeModelParallel(dir, opts, n) : analyzeModel(dir, opts);
}
