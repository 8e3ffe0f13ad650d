/**
 * The analysis with several tensors at once: a WorkerPool's threads (src/pipeline/worker-pool.ts),
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
 */
import { openModel } from '../arch/source.js';
import { analysisContext, analyzeEntry, analyzeModel, collectAnalysis, type AnalyzeOptions, type EntryAnalysis, type ModelAnalysis } from '../measure/analyze.js';
import { modelSize, WorkerPool, workerJobs, type TaskResult } from './worker-pool.js';

/** What each analysis worker is given: the model and the options, as this thread opens them. */
export interface AnalysisTask {
  dir: string;
  options: Omit<AnalyzeOptions, 'onTensor'>;
}

/** The worker side (src/pipeline/pool-worker.ts): the model opened there, then one entry per task. */
export function analysisStage(task: AnalysisTask): (index: number) => TaskResult {
  const ctx = analysisContext(task.dir, task.options);
  return (index) => ({ result: analyzeEntry(ctx, index) });
}

/**
 * analyzeModel with the entries on `pool`'s workers (at least two). The same ModelAnalysis, with
 * this thread's ModelSource.
 */
export function analyzeModelParallel(dir: string, opts: AnalyzeOptions, pool: WorkerPool): ModelAnalysis {
  const { onTensor, ...options } = opts;
  // Opened here first: a bad model or option fails in this thread, before any worker works.
  const ctx = analysisContext(dir, options);
  const run = pool.run<EntryAnalysis>('analyze', { dir, options } satisfies AnalysisTask, ctx.source.entries.length);
  return collectAnalysis(ctx, onTensor, (_ctx, index) => {
    const result = run.take(index);
    // The record object of this thread's ModelSource, as analyzeModel gives.
    result.analysis.record = ctx.source.entries[index]!.record;
    return result;
  });
}

/**
 * analyzeModel, with workerJobs(jobs) entries at once: in this thread when that is one, else on
 * `pool` when given (the caller's, to use again), else on a pool of its own.
 */
export function analyzeModelJobs(dir: string, opts: AnalyzeOptions, jobs?: number, pool?: WorkerPool): ModelAnalysis {
  if (pool) return analyzeModelParallel(dir, opts, pool);
  // Counting entries opens the model's headers once more: milliseconds.
  const n = workerJobs(jobs, modelSize(openModel(dir, { dtype: opts.dtype })));
  if (n <= 1) return analyzeModel(dir, opts);
  const own = new WorkerPool(n);
  try {
    return analyzeModelParallel(dir, opts, own);
  } finally {
    own.close();
  }
}
