/**
 * Tasks 0..total-1 on `jobs` worker threads, taken back in index order by this thread, for the
 * stages that work tensor by tensor (src/pipeline/parallel-analysis.ts, src/pipeline/parallel-encode.ts).
 * Each worker installs a backend of the kind installed here once, and answers one task at a time.
 *
 * The stages are synchronous (src/cli/main.ts), so this thread waits for the workers without its
 * event loop: the workers answer on MessagePorts it reads with receiveMessageOnPort, and bump a
 * shared counter it sleeps on with Atomics.wait.
 *
 * Memory: a worker holds one task at a time, and no task is handed out `window` or more places ahead
 * of the one being taken, so at most `window` tasks are in flight or waiting to be taken. A stage
 * set up in a worker (an opened model: headers, no weights) stays until the next one replaces it.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort, type Transferable } from 'node:worker_threads';
import type { ModelSource } from '../arch/source.js';
import { getBackend } from '../kernels/index.js';
import { closeBackend, installBestBackend, type BackendChoice } from '../kernels/select.js';
import { errorData, rebuildError, type ErrorData } from './async.js';

/** Tasks run at once by default: two cores' worth (more in flight cost memory, and big tensors fill the cores through the GEMM threads anyway). */
export const DEFAULT_MAX_JOBS = 2;

/**
 * Below this many weights a model is worked in one thread by default: starting a worker (a module
 * graph and the model's headers) costs a few hundred milliseconds, more than a toy model's work.
 */
export const MIN_PARALLEL_WEIGHTS = 1 << 22;

export type BackendSpec = { backend: BackendChoice; threads?: number };

/**
 * The installed backend as a choice a worker can install again; undefined for a backend this module
 * does not know (a test's own): it cannot be recreated in a worker, so the work stays here.
 */
export function installedBackendSpec(): BackendSpec | undefined {
  const b = getBackend() as { name: string; threads?: number };
  if (b.name.startsWith('native-')) return { backend: 'native', threads: b.threads };
  if (b.name.startsWith('wasm-')) return { backend: 'wasm', threads: b.threads };
  if (b.name === 'js') return { backend: 'js' };
  return undefined;
}

/**
 * How many tasks to run at once: `jobs` when given, else DEFAULT_MAX_JOBS within the backend's
 * threads (`--threads 1`: one, in this thread) for models of at least MIN_PARALLEL_WEIGHTS; never
 * more than the tasks; 1 for a backend workers cannot install.
 */
export function workerJobs(jobs: number | undefined, model: { entries: number; weights: number }): number {
  const spec = installedBackendSpec();
  if (!spec) return 1;
  const wanted = jobs ?? (model.weights < MIN_PARALLEL_WEIGHTS ? 1 : Math.min(DEFAULT_MAX_JOBS, spec.threads ?? availableParallelism()));
  return Math.max(1, Math.min(wanted, model.entries));
}

/** What workerJobs needs to know of a model. */
export function modelSize(source: ModelSource): { entries: number; weights: number } {
  return { entries: source.entries.length, weights: source.entries.reduce((s, e) => s + e.info.shape.reduce((a, b) => a * b, 1), 0) };
}

/** The stages a pool's workers can run (src/pipeline/pool-worker.ts maps each to its code). */
export type StageName = 'analyze' | 'encode';

/**
 * Each worker's backend: the installed kind with the installed threads shared out (at least one
 * each). The workers already keep the cores busy side by side; more threads per worker than its
 * share only add synchronisation (about 5% more CPU on SmolLM2 with 2 × 2 threads on 2 cores).
 * The bytes are the same for any thread count.
 */
export function workerBackend(spec: BackendSpec, jobs: number): BackendSpec {
  return spec.threads === undefined ? spec : { ...spec, threads: Math.max(1, Math.floor(spec.threads / jobs)) };
}

/** What a pool's worker receives as workerData: the backend to install, and the pool's wiring. */
export interface PoolWorkerData {
  backend: BackendSpec;
  port: MessagePort;
  signal: SharedArrayBuffer;
}

/** What this thread sends a worker: a stage to set up with its task (plain data), then task indexes. */
export type PoolRequest = { stage: StageName; task: unknown } | number;

type Reply = { index: number; result: unknown } | { index: number; error: ErrorData };

interface Slot {
  worker: Worker;
  port: MessagePort;
  /** The task it is running, or -1 when free. */
  busy: number;
}

/**
 * `jobs` worker threads (src/pipeline/pool-worker.ts), started once and used by one stage after
 * another (`swan quantize`: the analysis, then the encoding), so that the second stage does not
 * pay their start (a module graph, the backend) again.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly counter: Int32Array;
  private current: StageRun<unknown> | undefined;

  constructor(jobs: number) {
    const spec = installedBackendSpec();
    if (!spec) throw new Error('WorkerPool: the installed kernel backend cannot run in a worker thread');
    const backend = workerBackend(spec, jobs);
    const signal = new SharedArrayBuffer(4);
    this.counter = new Int32Array(signal);
    try {
      for (let k = 0; k < jobs; k++) {
        const { port1, port2 } = new MessageChannel();
        const data: PoolWorkerData = { backend, port: port2, signal };
        const worker = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: data, transferList: [port2] });
        worker.unref();
        this.slots.push({ worker, port: port1, busy: -1 });
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  get jobs(): number {
    return this.slots.length;
  }

  /**
   * Set every worker up for `stage` with `task`, for tasks 0..total-1 taken in index order; no task
   * is handed out `window` or more places ahead of the one being taken. Without a window, `order`
   * (a permutation of the indexes) is the order the tasks are handed out in: the longest first, so
   * that the last ones handed out are short and no worker waits long at the end for the other. The
   * previous run must have had every task taken (a run that threw ends the pool's use).
   */
  run<R>(stage: StageName, task: unknown, total: number, window = Number.POSITIVE_INFINITY, order?: readonly number[]): StageRun<R> {
    if (this.current && !this.current.finished()) throw new Error("WorkerPool: the previous run did not take all its tasks");
    if (order && (window !== Number.POSITIVE_INFINITY || order.length !== total)) throw new Error('WorkerPool: an order needs every task and no window');
    for (const s of this.slots) s.port.postMessage({ stage, task } satisfies PoolRequest);
    const run = new StageRun<R>(this.slots, this.counter, total, window, order);
    this.current = run;
    return run;
  }

  /** Ends the workers (their backends close with them). */
  close(): void {
    for (const s of this.slots) {
      s.port.close();
      void s.worker.terminate();
    }
  }
}

/** One stage's tasks on a pool's workers. */
export class StageRun<R> {
  private readonly done = new Map<number, Reply>();
  private nextToSend = 0;
  private taken = 0;

  constructor(
    private readonly slots: Slot[],
    private readonly counter: Int32Array,
    private readonly total: number,
    private readonly window: number,
    private readonly order?: readonly number[],
  ) {
    // The workers start now, not at the first take(): this thread may have other work first (the writer's shard headers).
    this.dispatch(0);
  }

  /** Task `index`'s result (its error, thrown here; or a worker's failure to set the stage up). */
  take(index: number): R {
    for (;;) {
      this.dispatch(index);
      const reply = this.done.get(index) ?? this.done.get(-1);
      if (reply) {
        this.done.delete(index);
        if ('error' in reply) throw rebuildError(reply.error);
        this.taken++;
        return reply.result as R;
      }
      const seen = Atomics.load(this.counter, 0);
      if (!this.drain()) waitForAnswers(this.counter, seen);
    }
  }

  finished(): boolean {
    return this.taken === this.total;
  }

  private dispatch(taking: number): void {
    for (const s of this.slots) {
      if (s.busy < 0 && this.nextToSend < this.total && this.nextToSend < taking + this.window) {
        s.busy = this.order ? this.order[this.nextToSend++]! : this.nextToSend++;
        s.port.postMessage(s.busy satisfies PoolRequest);
      }
    }
  }

  /** Read every answer waiting; true when there was one. */
  private drain(): boolean {
    let got = false;
    for (const s of this.slots) {
      for (let m = receiveMessageOnPort(s.port); m; m = receiveMessageOnPort(s.port)) {
        const reply = m.message as Reply;
        this.done.set(reply.index, reply);
        if (reply.index === s.busy || reply.index < 0) s.busy = -1;
        got = true;
      }
    }
    return got;
  }
}

/**
 * Sleep until a worker bumps the counter past `seen` (or a second passes). Its own function so that
 * a CPU profile shows this thread's waiting as such (bench/perf/profile.ts leaves it out).
 */
function waitForAnswers(counter: Int32Array, seen: number): void {
  Atomics.wait(counter, 0, seen, 1000);
}

/** A task's result, and the buffers to move to the pool's thread rather than copy. */
export interface TaskResult {
  result: unknown;
  transfer?: Transferable[];
}

/** A stage's code in a worker: set up from its task, then one result per task index. */
export type StageStart = (task: never) => (index: number) => TaskResult;

/**
 * The worker side: install the pool's backend kind, then answer what this thread sends: a stage to
 * set up (its failure goes back as data, as the answer to any task of the run), then task indexes,
 * one at a time.
 */
export function serveStages(data: PoolWorkerData, stages: Record<StageName, StageStart>): void {
  let installed: unknown;
  try {
    installBestBackend(data.backend);
  } catch (e) {
    installed = e;
  }
  let runTask: ((index: number) => TaskResult) | undefined;
  data.port.on('message', (m: PoolRequest) => {
    if (typeof m !== 'number') {
      runTask = undefined;
      try {
        if (installed !== undefined) throw installed;
        runTask = stages[m.stage](m.task as never);
      } catch (e) {
        reply(data, { index: -1, error: errorData(e) });
      }
      return;
    }
    if (!runTask) return; // the stage failed to set up: its error answered already
    let answer: TaskResult;
    try {
      answer = runTask(m);
    } catch (e) {
      reply(data, { index: m, error: errorData(e) });
      return;
    }
    reply(data, { index: m, result: answer.result }, answer.transfer);
  });
  // The port closes when the pool ends: the backend's threads go with the worker.
  data.port.on('close', () => closeBackend());
}

/** One answer, then a bump of the shared counter. */
function reply(data: PoolWorkerData, answer: Reply, transfer?: Transferable[]): void {
  data.port.postMessage(answer, transfer);
  const counter = new Int32Array(data.signal);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
}
