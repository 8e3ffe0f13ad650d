/**
 * GEMM throughput of the wasm backend on the rSVD shapes: C = A·B (NN) and C = Aᵀ·B (TN) with
 * A 4096×4096 and B 4096×266, at 1 and 2 threads, plus the JS backend when it exists.
 * Prints wall-clock GFLOP/s and process CPU time, since the build machine is often shared.
 *
 *   node dist/bench/gemm-bench.js [--reps N] [--size M] [--no-js] [--simd] [--all]
 *
 * --simd also runs the plain-SIMD build; --all adds the other rSVD shapes (Gram YᵀY, Y·R, AᵀQ
 * with a tall A) at 1 and 2 threads.
 */
import { cpus } from 'node:os';

import type { KernelBackend } from '../src/kernels/backend.js';
import { createWasmBackend, type WasmVariant } from '../src/kernels/wasm-backend.js';

const args = process.argv.slice(2);
function opt(name: string, def: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
}
const REPS = opt('--reps', 3);
const M = opt('--size', 4096); // A is M×M
const N = 266;

function fill(x: Float32Array, seed: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
}

interface Row {
  backend: string;
  op: string;
  gflops: number;
  wallS: number;
  cpuS: number;
}

function time(be: KernelBackend, transA: boolean, a: Float32Array, b: Float32Array, c: Float32Array, reps: number): Row {
  be.gemm(transA, false, M, N, M, a, b, c); // warm (tier-up, page faults, workers started)
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) be.gemm(transA, false, M, N, M, a, b, c);
  const wallS = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(cpu0);
  const flop = 2 * M * N * M * reps;
  return {
    backend: be.name,
    op: transA ? 'TN (AᵀB)' : 'NN (AB)',
    gflops: flop / wallS / 1e9,
    wallS: wallS / reps,
    cpuS: (cu.user + cu.system) / 1e6 / reps,
  };
}

function print(row: Row): void {
  const flop = 2 * M * N * M;
  // CPU-time rate: what the threads achieve while they run, less sensitive to other load.
  const perCpu = flop / row.cpuS / 1e9;
  console.log(
    `${row.backend.padEnd(18)} ${row.op.padEnd(9)} ${row.gflops.toFixed(1).padStart(6)} GFLOP/s  ` +
      `wall ${(row.wallS * 1000).toFixed(0).padStart(5)} ms  cpu ${(row.cpuS * 1000).toFixed(0).padStart(5)} ms  ` +
      `(${perCpu.toFixed(1)} GFLOP/s per CPU-second)`,
  );
}

async function main(): Promise<void> {
  console.log(`C = op(A)·B, A ${M}×${M}, B ${M}×${N}: ${((2 * M * N * M) / 1e9).toFixed(2)} GFLOP per call, ${REPS} timed calls`);
  console.log(`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}`);
  const variants: WasmVariant[] = args.includes('--simd') ? ['relaxed', 'simd'] : ['relaxed'];
  for (const variant of variants) {
    for (const threads of [1, 2]) {
      const be = createWasmBackend({ threads, variant });
      const a = be.alloc(M * M), b = be.alloc(M * N), c = be.alloc(M * N);
      fill(a, 1);
      fill(b, 2);
      print(time(be, false, a, b, c, REPS));
      print(time(be, true, a, b, c, REPS));
      if (threads === 2) {
        // Plain Float32Arrays are copied into wasm memory on each call.
        const pa = new Float32Array(a), pb = new Float32Array(b), pc = new Float32Array(M * N);
        const row = time(be, false, pa, pb, pc, REPS);
        print({ ...row, op: 'NN staged' });
      }
      be.close();
    }
  }
  if (args.includes('--all')) {
    // [label, transA, transB, m, n, k]
    const shapes: Array<[string, boolean, boolean, number, number, number]> = [
      ['YᵀY Y 12288×266', true, false, N, N, 12288],
      ['Y·R Y 12288×266', false, false, 12288, N, N],
      ['AᵀQ A 32768×4096', true, false, 4096, N, 32768],
      ['AQ A 32768×4096', false, false, 32768, N, 4096],
    ];
    for (const threads of [1, 2]) {
      const be = createWasmBackend({ threads });
      for (const [label, ta, tb, m, n, k] of shapes) {
        const a = be.alloc(m * k), b = be.alloc(k * n), c = be.alloc(m * n);
        fill(a, 3);
        fill(b, 4);
        be.gemm(ta, tb, m, n, k, a, b, c);
        const reps = Math.max(1, Math.round(3e9 / (2 * m * n * k)));
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        for (let r = 0; r < reps; r++) be.gemm(ta, tb, m, n, k, a, b, c);
        const wallS = (performance.now() - t0) / 1000 / reps;
        const cu = process.cpuUsage(cpu0);
        const cpuS = (cu.user + cu.system) / 1e6 / reps;
        const flop = 2 * m * n * k;
        console.log(
          `${be.name.padEnd(18)} ${label.padEnd(17)} ${(flop / wallS / 1e9).toFixed(1).padStart(6)} GFLOP/s  ` +
            `wall ${(wallS * 1000).toFixed(1).padStart(7)} ms  cpu ${(cpuS * 1000).toFixed(1).padStart(7)} ms  ` +
            `(${(flop / cpuS / 1e9).toFixed(1)} GFLOP/s per CPU-second)`,
        );
        be.release(a);
        be.release(b);
        be.release(c);
      }
      be.close();
    }
  }
  if (!args.includes('--no-js')) {
    let js: KernelBackend | undefined;
    try {
      // Optional: the JS backend is a separate module that may not exist in every checkout.
      const mod = (await import(new URL('../src/kernels/js-backend.js', import.meta.url).href)) as {
        jsBackend?: KernelBackend;
      };
      js = mod.jsBackend;
    } catch {
      js = undefined;
    }
    if (js) {
      const a = new Float32Array(M * M), b = new Float32Array(M * N), c = new Float32Array(M * N);
      fill(a, 1);
      fill(b, 2);
      print(time(js, false, a, b, c, 1));
      print(time(js, true, a, b, c, 1));
    } else {
      console.log('js backend: not present');
    }
  }
}

await main();
