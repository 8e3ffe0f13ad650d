/**
 * A worker thread of src/pipeline/parallel-analysis.ts: opens the model with the same options, then
 * analyses the entries it is sent, one at a time (serveTasks installs the same backend kind).
 */
import { workerData } from 'node:worker_threads';
import { analysisContext, analyzeEntry } from '../measure/analyze.js';
import type { AnalysisTask } from './parallel-analysis.js';
import { serveTasks, type PoolWorkerData } from './worker-pool.js';

serveTasks(workerData as PoolWorkerData<AnalysisTask>, (task) => {
  const ctx = analysisContext(task.dir, task.options);
  return (index) => ({ result: analyzeEntry(ctx, index) });
});
