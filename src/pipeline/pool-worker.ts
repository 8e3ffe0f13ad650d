/**
 * A worker thread of a WorkerPool (src/pipeline/worker-pool.ts): installs the pool's backend kind,
 * then runs the stages it is sent, one task at a time.
 */
import { workerData } from 'node:worker_threads';
import { analysisStage } from './parallel-analysis.js';
import { encodeStage } from './parallel-encode.js';
import { serveStages, type PoolWorkerData } from './worker-pool.js';

serveStages(workerData as PoolWorkerData, { analyze: analysisStage, encode: encodeStage });
