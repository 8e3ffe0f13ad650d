/**
 * CPU time per Gaussian pair of the native normalPairs (native/normal.c) on one thread, against the
 * TypeScript fillNormal it reproduces: the minimum over reps of process CPU time (the build machine
 * is often shared, so wall time is printed too, and the load average).
 *
 *   node dist/bench/normal-bench.js [--reps N] [--pairs P] [--addon path/to/swan_blas.node]
 *
 * --addon times another build of the addon (e.g. an older one, for a before/after figure).
 */
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';

import { loadNativeAddon, type NativeAddon } from '../src/kernels/native-backend.js';
import { Rng } from '../src/rng.js';

const args = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const REPS = Number(opt('--reps') ?? 7);
const PAIRS = Number(opt('--pairs') ?? 2_000_000);

function addonFrom(path: string | undefined): NativeAddon {
  if (path) return createRequire(import.meta.url)(path) as NativeAddon;
  const loaded = loadNativeAddon();
  if (!('addon' in loaded)) throw new Error(`native addon not available: ${loaded.reason}`);
  return loaded.addon;
}

/** Minimum CPU and wall nanoseconds per pair of fn over REPS runs. */
function time(fn: (rep: number) => void): { cpu: number; wall: number } {
  let cpu = Infinity, wall = Infinity;
  for (let rep = 0; rep < REPS; rep++) {
    const c0 = process.cpuUsage(), w0 = process.hrtime.bigint();
    fn(rep);
    const w = Number(process.hrtime.bigint() - w0), c = process.cpuUsage(c0);
    cpu = Math.min(cpu, ((c.user + c.system) * 1000) / PAIRS);
    wall = Math.min(wall, w / PAIRS);
  }
  return { cpu, wall };
}

const addon = addonFrom(opt('--addon'));
addon.setThreads(1);
const out = new Float32Array(2 * PAIRS);
const redo = new Float64Array(3 * 256);
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${PAIRS} pairs, min of ${REPS} reps`);
const native = time((rep) => addon.normalPairs(new Rng(100 + rep).getState(), out, 0, PAIRS, 1, redo));
const ts = time((rep) => new Rng(100 + rep).fillNormal(out));
for (const [name, t] of [['native normalPairs, 1 thread', native], ['TypeScript fillNormal', ts]] as const)
  console.log(`${name.padEnd(30)} ${t.cpu.toFixed(1).padStart(6)} ns CPU/pair  ${t.wall.toFixed(1).padStart(6)} ns wall/pair`);
