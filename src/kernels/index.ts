/**
 * The active kernel backend. Metrics call getBackend() at use time, so a faster backend (WebAssembly)
 * installed with setBackend() takes effect everywhere without touching the metrics.
 */
import type { KernelBackend } from './backend.js';
import { jsBackend } from './js-backend.js';

export type { KernelBackend } from './backend.js';
export { JsBackend, jsBackend } from './js-backend.js';

let current: KernelBackend = jsBackend;

export function getBackend(): KernelBackend {
  return current;
}

/** Install a backend; returns the previous one (handy for tests that swap temporarily). */
export function setBackend(b: KernelBackend): KernelBackend {
  const prev = current;
  current = b;
  return prev;
}
