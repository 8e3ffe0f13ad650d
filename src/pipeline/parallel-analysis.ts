/**
 * The analysis with several tensors at once: a WorkerPool's threads (src/pipeline/worker-pool.ts),
 * each with its own kernel backend of the kind installed here, analyse one model entry each; this
 * thread hands out entries largest first and takes the results back in model order. A small
 * tensor's metrics (Cholesky-QR, eigenvalues, Gaussian draws: scalar code) cannot fill two cores,
 * two tensors side by side can.
 *
 * Same result as analyzeModel: an entry's analysis is a function of the model, the options and its
 * index (seeds follow tensor names, src/rng.ts Rng.forKey), the workers run the same backend kind,
 * and the backends give the same bytes for any thread count. The progress callbacks, the non-finite
 * counts and the first refusal come in model order, as in one thread.
 *
 * Memory: each worker holds one entry at a time, so at most `jobs` tensors (with their metric
 * scratch) are in memory at once; this thread holds none, only the finished analyses (and, when
 * asked, the entries encoded early: src/pipeline/early-encode.ts).
 */
import { openModel } from '../arch/source.js';
import { numel } from '../format.js';
import { analysisContext, analyzeModel, collectAnalysis, type AnalysisContext, type AnalyzeOptions, type EntryAnalysis, type ModelAnalysis } from '../measure/analyze.js';
import { analyzeAndEncode, type EarlyEncoded, type EarlyEncodeSpec } from './early-encode.js';
import { forTransfer } from './parallel-encode.js';
import { modelSize, WorkerPool, workerJobs, type TaskResult } from './worker-pool.js';

/** What each analysis worker is given: the model and the options, as this thread opens them. */
export interface AnalysisTask {
  dir: string;
  options: Omit<AnalyzeOptions, 'onTensor'>;
  early?: EarlyEncodeSpec;
}

/** Entries encoded in their analysis (early-encode.ts): how, and where each goes, by source tensor name. */
export interface EarlyEncoding {
  spec: EarlyEncodeSpec;
  onEncoded: (hfName: string, early: EarlyEncoded) => void;
}

type StageAnswer = { entry: EntryAnalysis; early?: EarlyEncoded };

/** The worker side (src/pipeline/pool-worker.ts): the model opened there, then one entry per task. */
export function analysisStage(task: AnalysisTask): (index: number) => TaskResult {
  const ctx = analysisContext(task.dir, task.options);
  return (index) => {
    const { entry, early } = analyzeAndEncode(ctx, index, task.early);
    if (!early) return { result: { entry } satisfies StageAnswer };
    const moved = forTransfer(early.encoded);
    return { result: { entry, early: { format: early.format, encoded: moved.result } } satisfies StageAnswer, transfer: moved.transfer };
  };
}

/** An entry's analysis from `answer`, its early bytes handed on. */
function received(ctx: AnalysisContext, index: number, answer: StageAnswer, early?: EarlyEncoding): EntryAnalysis {
  if (answer.early) early?.onEncoded(ctx.source.entries[index]!.info.name, answer.early);
  return answer.entry;
}

/** Entry indexes by weight count, largest first (ties in model order): the order workers take them in. */
function largestFirst(ctx: AnalysisContext): number[] {
  const size = ctx.source.entries.map((e) => numel(e.info.shape));
  return size.map((_, i) => i).sort((a, b) => size[b]! - size[a]! || a - b);
}

/**
 * analyzeModel with the entries on `pool`'s workers (at least two). The same ModelAnalysis, with
 * this thread's ModelSource.
 */
export function analyzeModelParallel(dir: string, opts: AnalyzeOptions, pool: WorkerPool, early?: EarlyEncoding): ModelAnalysis {
  const { onTensor, ...options } = opts;
  // Opened here first: a bad model or option fails in this thread, before any worker works.
  const ctx = analysisContext(dir, options);
  const run = pool.run<StageAnswer>('analyze', { dir, options, early: early?.spec } satisfies AnalysisTask, ctx.source.entries.length, undefined, largestFirst(ctx));
  return collectAnalysis(ctx, onTensor, (_ctx, index) => {
    const result = received(ctx, index, run.take(index), early);
    // The record object of this thread's ModelSource, as analyzeModel gives.
    result.analysis.record = ctx.source.entries[index]!.record;
    return result;
  });
}

/**
 * analyzeModel, with workerJobs(jobs) entries at once: in this thread when that is one, else on
 * `pool` when given (the caller's, to use again), else on a pool of its own. With `early`, the
 * entries are also encoded as they are analysed (early-encode.ts).
 */
export function analyzeModelJobs(dir: string, opts: AnalyzeOptions, jobs?: number, pool?: WorkerPool, early?: EarlyEncoding): ModelAnalysis {
  if (pool) return analyzeModelParallel(dir, opts, pool, early);
  // Counting entries opens the model's headers once more: milliseconds.
  const n = workerJobs(jobs, modelSize(openModel(dir, { dtype: opts.dtype })));
  if (n <= 1) {
    if (!early) return analyzeModel(dir, opts);
    const { onTensor, ...options } = opts;
    return collectAnalysis(analysisContext(dir, options), onTensor, (ctx, index) => received(ctx, index, analyzeAndEncode(ctx, index, early.spec), early));
  }
  const own = new WorkerPool(n);
  try {
    return analyzeModelParallel(dir, opts, own, early);
  } finally {
    own.close();
  }
}
