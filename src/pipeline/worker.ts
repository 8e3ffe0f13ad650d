/** The worker thread of src/pipeline/async.ts: one stage on the best backend, answers as messages. */
import { parentPort, workerData } from 'node:worker_threads';
import { openModel } from '../arch/source.js';
import { closeBackend, installBestBackend } from '../kernels/select.js';
import type { ModelAnalysis } from '../measure/analyze.js';
import { errorData, type AnalysisData, type WorkerMessage, type WorkerRequest } from './async.js';
import { analyzeModelJobs } from './parallel-analysis.js';
import { quantizeModel, type PlanResult } from './quantize.js';

const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);
const req = workerData as WorkerRequest;

function dropSource<T extends { source: unknown }>(x: T): Omit<T, 'source'> {
  const { source: _source, ...r } = x;
  return r;
}

try {
  installBestBackend({ backend: req.backend.backend ?? 'auto', threads: req.backend.threads });
  if (req.op === 'analyze') {
    const a = analyzeModelJobs(req.dir, { ...req.options, onTensor: req.progress ? (done, total, t) => post({ type: 'analyzed', done, total, a: t }) : undefined }, req.backend.jobs);
    post({ type: 'done', result: dropSource(a) });
  } else {
    const { analysis, planned, ...options } = req.options;
    const source = openModel(req.dir, { dtype: planned?.plan.dtype ?? options.dtype });
    const attach = (d: AnalysisData | undefined): ModelAnalysis | undefined => (d ? { ...d, source } : undefined);
    const plan: PlanResult | undefined = planned ? { ...planned, source, analysis: attach(planned.analysis) } : undefined;
    const r = quantizeModel(req.dir, req.outDir, {
      ...options,
      analysis: attach(analysis),
      planned: plan,
      onAnalyze: req.progress ? (done, total, t) => post({ type: 'analyzed', done, total, a: t }) : undefined,
      onWrite: req.progress ? (done, total, name) => post({ type: 'written', done, total, name }) : undefined,
      onNotice: (line) => post({ type: 'notice', line }),
    });
    const { analysis: used, ...rest } = dropSource(r);
    post({ type: 'done', result: { ...rest, analysis: used ? dropSource(used) : undefined, dtype: r.source.dtype } });
  }
} catch (e) {
  post({ type: 'error', error: errorData(e) });
} finally {
  closeBackend();
}
