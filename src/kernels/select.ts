import { jsBackend } from './js-backend.js';
import { setBackend } from './index.js';
import { createWasmBackend, type WasmBackend } from './wasm-backend.js';

export type BackendChoice = 'auto' | 'js' | 'wasm';

let active: WasmBackend | undefined;

/**
 * Install the fastest backend that loads: WebAssembly SIMD (relaxed FMA when the engine has it),
 * else plain JS. Returns a label such as "wasm-relaxed ×2 threads".
 */
export function installBestBackend(opts: { backend?: BackendChoice; threads?: number } = {}): string {
  const choice = opts.backend ?? 'auto';
  closeBackend();
  if (choice !== 'js') {
    try {
      active = createWasmBackend({ threads: opts.threads });
      setBackend(active);
      return `wasm-${active.variant} ×${active.threads} thread${active.threads > 1 ? 's' : ''}`;
    } catch (e) {
      if (choice === 'wasm') throw e;
    }
  }
  setBackend(jsBackend);
  return 'js';
}

/** Stop the wasm worker threads so the process can exit. */
export function closeBackend(): void {
  if (active) {
    setBackend(jsBackend);
    active.close();
    active = undefined;
  }
}
