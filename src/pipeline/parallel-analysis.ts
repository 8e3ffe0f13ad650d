/**
 * The analysis with several tensors at once: worker threads (src/pipeline/analysis-worker.ts on a
 * WorkerPool, src/pipeline/worker-pool.ts), each with its own kernel backend of the kind installed
 * here, analyse one model entry each; this thread hands out entries in model order and takes the
 * results back in model order. A small tensor's metrics (Cholesky-QR, eigenvalues, Gaussian draws:
 * scalar code) cannot fill two cores, two tensors side by side can.
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
import { analysisContext, analyzeModel, collectAnalysis, type AnalyzeOptions, type EntryAnalysis, type ModelAnalysis } from '../measure/analyze.js';
import { modelSize, WorkerPool, workerJobs } from './worker-pool.js';

/** What each analysis worker is given: the model and the options, as this thread opens them. */
export interface AnalysisTask {
  dir: string;
  options: Omit<AnalyzeOptions, 'onTensor'>;
}

/**
 * analyzeModel with `jobs` entries in flight (jobs ≥ 2; worker threads). The same ModelAnalysis,
 * with this thread's ModelSource.
 */
export function analyzeModelParallel(dir: string, opts: AnalyzeOptions, jobs: number): ModelAnalysis {
  const { onTensor, ...options } = opts;
  // Opened here first: a bad model or option fails in this thread, before any worker starts.
  const ctx = analysisContext(dir, options);
  const task: AnalysisTask = { dir, options };
  const pool = new WorkerPool<EntryAnalysis>(new URL('./analysis-worker.js', import.meta.url), task, ctx.source.entries.length, jobs);
  try {
    return collectAnalysis(ctx, onTensor, (_ctx, index) => {
      const result = pool.take(index);
      // The record object of this thread's ModelSource, as analyzeModel gives.
      result.analysis.record = ctx.source.entries[index]!.record;
      return result;
    });
  } finally {
    pool.close();
  }
}

/** analyzeModel, with workerJobs(jobs) entries at once: in this thread when that is one. */
export function analyzeModelJobs(dir: string, opts: AnalyzeOptions, jobs?: number): ModelAnalysis {
  // Counting entries opens the model's headers once more: milliseconds.
  const n = workerJobs(jobs, modelSize(openModel(dir, { dtype: opts.dtype })));
  return n > 1 ? analyzeModelParallel(dir, opts, n) : analyzeModel(dir, opts);
}
