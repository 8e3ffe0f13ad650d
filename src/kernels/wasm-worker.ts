/**
 * Worker thread of the wasm backend: instantiates the shared module on the shared memory and
 * computes chunks of each posted GEMM (see runChunks in wasm-backend.ts).
 */
import { workerData } from 'node:worker_threads';

import {
  CTRL, runChunks, Wasm, type GemmExports, type WasmMemory, type WasmModule,
} from './wasm-backend.js';

interface WorkerInit {
  module: WasmModule;
  memory: WasmMemory;
  scratch: number;
}

const init = workerData as WorkerInit;
const instance = new Wasm.Instance(init.module, { env: { memory: init.memory } });
const ex = instance.exports as unknown as GemmExports;
const ctrl = new Int32Array(init.memory.buffer, 0, CTRL.WORDS);
const params = new Uint32Array(init.memory.buffer, 0, CTRL.WORDS);

for (;;) {
  if (Atomics.load(ctrl, CTRL.STOP)) break;
  try {
    const n = runChunks(ctrl, params, ex, init.scratch);
    if (n > 0) Atomics.add(ctrl, CTRL.WORKER_CHUNKS, n);
  } catch (e) {
    Atomics.store(ctrl, CTRL.ERROR, 1);
    Atomics.notify(ctrl, CTRL.DONE);
    throw e;
  }
  const v = Atomics.load(ctrl, CTRL.CLAIM);
  if ((v & 0xfff) < Atomics.load(ctrl, CTRL.NCHUNKS)) continue;
  Atomics.wait(ctrl, CTRL.CLAIM, v);
}
