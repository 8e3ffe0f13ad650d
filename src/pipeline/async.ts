/**
 * The library's stages without blocking the caller's event loop: each runs in a worker thread
 * (src/pipeline/worker.ts) on the backend the CLI would pick (native BLAS, else WebAssembly SIMD,
 * else plain JS; closed when the worker ends), and callbacks come back as messages. What crosses
 * between the threads is plain data; the model's ModelSource (headers and the tensor map, no
 * weights) is opened again on each side, which takes milliseconds.
 */
import { Worker } from 'node:worker_threads';
import { openModel, type ModelSource } from '../arch/source.js';
import { ConfigError } from '../arch/config.js';
import { SwanError } from '../errors.js';
import type { AnalyzeOptions, ModelAnalysis } from '../measure/analyze.js';
import type { BackendChoice } from '../options.js';
import { BudgetError } from '../plan/knapsack.js';
import type { PlanResult, QuantizeOptions, QuantizeResult } from './quantize.js';

/** Where the async stages run their linear algebra (the CLI's `--backend` and `--threads`). */
export interface BackendOptions {
  /** Default 'auto', as the CLI: native BLAS when built, else WebAssembly SIMD, else plain JS. */
  backend?: BackendChoice;
  threads?: number;
  /** Tensors analysed at once (QuantizeOptions.jobs). */
  jobs?: number;
}

/** A ModelAnalysis without its source: what crosses between threads. */
export type AnalysisData = Omit<ModelAnalysis, 'source'>;
export type PlannedData = Omit<PlanResult, 'source' | 'analysis'> & { analysis?: AnalysisData };

/** An error thrown in the worker, rebuilt as the same exported class. */
export interface ErrorData {
  name: string;
  message: string;
  where?: string;
  problem?: string;
  minBytes?: number;
  maxBytes?: number;
}

export type WorkerRequest =
  | { op: 'analyze'; dir: string; options: Omit<AnalyzeOptions, 'onTensor'>; backend: BackendOptions; progress: boolean }
  | {
      op: 'quantize';
      dir: string;
      outDir: string;
      options: Omit<QuantizeOptions, 'onAnalyze' | 'onWrite' | 'onNotice' | 'analysis'> & { analysis?: AnalysisData; planned?: PlannedData };
      backend: BackendOptions;
      progress: boolean;
    };

export type WorkerMessage =
  | { type: 'analyzed'; done: number; total: number; a: ModelAnalysis['tensors'][number] }
  | { type: 'written'; done: number; total: number; name: string }
  | { type: 'notice'; line: string }
  | { type: 'done'; result: unknown }
  | { type: 'error'; error: ErrorData };

export function errorData(e: unknown): ErrorData {
  const err = e instanceof Error ? e : new Error(String(e));
  const d: ErrorData = { name: err.name, message: err.message };
  if (err instanceof SwanError) Object.assign(d, { where: err.where, problem: err.problem });
  if (err instanceof BudgetError) Object.assign(d, { minBytes: err.minBytes, maxBytes: err.maxBytes });
  return d;
}

export function rebuildError(d: ErrorData): Error {
  if (d.name === 'SwanError' && d.where !== undefined) {
    // The parts were escaped once in the worker; a SwanError of escaped text is the same text.
    return new SwanError(d.where, d.problem ?? '');
  }
  if (d.name === 'BudgetError') return new BudgetError(d.message, d.minBytes ?? 0, d.maxBytes ?? 0);
  if (d.name === 'ConfigError') return new ConfigError(d.message);
  const e = new Error(d.message);
  if (d.name !== 'Error') e.name = d.name;
  return e;
}

function run(request: WorkerRequest, on: (m: WorkerMessage) => void): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: request });
    let settled = false;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'done') {
        settled = true;
        resolvePromise(m.result);
      } else if (m.type === 'error') {
        settled = true;
        reject(rebuildError(m.error));
      } else on(m);
    });
    worker.on('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`the worker thread stopped (exit ${code}) before it answered`));
    });
  });
}

function withSource<T extends { analysis?: AnalysisData }>(data: T, source: ModelSource): Omit<T, 'analysis'> & { source: ModelSource; analysis?: ModelAnalysis } {
  const { analysis, ...rest } = data;
  return { ...rest, source, ...(analysis ? { analysis: { ...analysis, source } } : {}) };
}

/** analyzeModel in a worker thread: the caller's event loop keeps running. */
export async function analyzeModelAsync(dir: string, options: AnalyzeOptions & BackendOptions = {}): Promise<ModelAnalysis> {
  const { onTensor, backend, threads, jobs, ...rest } = options;
  const data = (await run({ op: 'analyze', dir, options: rest, backend: { backend, threads, jobs }, progress: onTensor !== undefined }, (m) => {
    if (m.type === 'analyzed') onTensor?.(m.done, m.total, m.a);
  })) as AnalysisData;
  return { ...data, source: openModel(dir, { dtype: rest.dtype }) };
}

/**
 * quantizeModel in a worker thread. With `planned` (planModel's result) or `analysis`, nothing is
 * analysed again.
 */
export async function quantizeModelAsync(dir: string, outDir: string, options: QuantizeOptions & BackendOptions & { planned?: PlanResult } = {}): Promise<QuantizeResult> {
  const { onAnalyze, onWrite, onNotice, backend, threads, jobs, analysis, planned, ...rest } = options;
  const strip = <T extends { source: ModelSource }>(x: T): Omit<T, 'source'> => {
    const { source: _source, ...r } = x;
    return r;
  };
  const plannedData: PlannedData | undefined = planned ? { ...strip(planned), analysis: planned.analysis ? strip(planned.analysis) : undefined } : undefined;
  const data = (await run(
    {
      op: 'quantize',
      dir,
      outDir,
      options: { ...rest, jobs, analysis: analysis ? strip(analysis) : undefined, planned: plannedData },
      backend: { backend, threads },
      progress: onAnalyze !== undefined || onWrite !== undefined,
    },
    (m) => {
      if (m.type === 'analyzed') onAnalyze?.(m.done, m.total, m.a);
      else if (m.type === 'written') onWrite?.(m.done, m.total, m.name);
      else if (m.type === 'notice') (onNotice ?? ((l: string) => process.stderr.write(`swan: notice: ${l}\n`)))(m.line);
    },
  )) as Omit<QuantizeResult, 'source' | 'analysis'> & { analysis?: AnalysisData; dtype: ModelSource['dtype'] };
  const { dtype, ...result } = data;
  return withSource(result, openModel(dir, { dtype })) as QuantizeResult;
}
