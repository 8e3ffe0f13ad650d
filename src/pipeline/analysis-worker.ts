/**
 * A worker thread of src/pipeline/parallel-analysis.ts: opens the model with the same options,
 * installs the same backend kind, then analyses the entries it is sent, one at a time.
 */
import { workerData } from 'node:worker_threads';
import { closeBackend, installBestBackend } from '../kernels/select.js';
import { analysisContext, analyzeEntry, type AnalysisContext } from '../measure/analyze.js';
import { errorData, replyTo, type AnalysisWorkerData } from './parallel-analysis.js';

const data = workerData as AnalysisWorkerData;
let ctx: AnalysisContext | undefined;
try {
  installBestBackend(data.backend);
  ctx = analysisContext(data.dir, data.options);
} catch (e) {
  closeBackend();
  replyTo(data, { index: -1, error: errorData(e) });
}
if (ctx) {
  const context = ctx;
  data.port.on('message', (index: number) => {
    try {
      replyTo(data, { index, result: analyzeEntry(context, index) });
    } catch (e) {
      replyTo(data, { index, error: errorData(e) });
    }
  });
  // The port closes when the analysis ends: the backend's threads go with the worker.
  data.port.on('close', () => closeBackend());
}
