/**
 * A worker thread of src/pipeline/parallel-encode.ts: opens the model, then encodes the entries it
 * is sent, one at a time (serveTasks installs the same backend kind); the bytes move back, uncopied.
 */
import { workerData } from 'node:worker_threads';
import { openModel } from '../arch/source.js';
import { encodeEntry } from './encode-tensor.js';
import { forTransfer, type EncodeTask } from './parallel-encode.js';
import { serveTasks, type PoolWorkerData } from './worker-pool.js';

serveTasks(workerData as PoolWorkerData<EncodeTask>, (task) => {
  const source = openModel(task.dir, { dtype: task.exec.dtype });
  const infos = new Map(source.entries.map((e) => [e.info.name, e.info]));
  return (k) => {
    const item = task.items[k]!;
    const info = infos.get(item.hfName);
    if (!info) throw new Error(`encode worker: no tensor ${item.hfName} in ${task.dir}`);
    return forTransfer(encodeEntry(info, item, task.exec));
  };
});
