import { setBf16Codec } from '../io/float.js';
import { jsBackend } from './js-backend.js';
import { setBackend } from './index.js';
import { createNativeBackend, type NativeBackend } from './native-backend.js';
import { createWasmBackend, type WasmBackend } from './wasm-backend.js';

import type { BackendChoice } from '../options.js';

export type { BackendChoice };

let active: WasmBackend | undefined;
let native: NativeBackend | undefined;

function threadLabel(n: number): string {
  return `×${n} thread${n > 1 ? 's' : ''}`;
}

/**
 * Install the fastest backend that loads: the native BLAS addon when it was built (see
 * native-backend.ts), else WebAssembly SIMD (relaxed FMA when the engine has it), else plain JS.
 * 'native' and 'wasm' insist on that backend and throw when it does not load. Returns a label
 * such as "native-openblas ×2 threads" or "wasm-relaxed ×2 threads".
 */
export function installBestBackend(opts: { backend?: BackendChoice; threads?: number } = {}): string {
  const choice = opts.backend ?? 'auto';
  closeBackend();
  if (choice === 'native' || choice === 'auto') {
    try {
      native = createNativeBackend({ threads: opts.threads });
      setBackend(native);
      setBf16Codec(native.bf16);
      const core = native.info.corename ? ` (${native.info.corename} kernels)` : '';
      return `${native.name}${core} ${threadLabel(native.threads)}`;
    } catch (e) {
      if (choice === 'native') throw e;
    }
  }
  if (choice !== 'js') {
    try {
      active = createWasmBackend({ threads: opts.threads });
      setBackend(active);
      return `wasm-${active.variant} ${threadLabel(active.threads)}`;
    } catch (e) {
      if (choice === 'wasm') throw e;
    }
  }
  setBackend(jsBackend);
  return 'js';
}

/** Stop the wasm worker threads so the process can exit (the native backend needs no closing). */
export function closeBackend(): void {
  if (native) {
    setBackend(jsBackend);
    setBf16Codec(undefined);
    native = undefined;
  }
  if (active) {
    setBackend(jsBackend);
    active.close();
    active = undefined;
  }
}
