/**
 * `npm run bench`: measures swan's analysis on Qwen3-8B shapes, a Python baseline doing the
 * reference's operations on the same shapes, and end-to-end quantization of a generated
 * Qwen3-0.6B-shaped checkpoint; writes docs/performance.md (issue 4 §5).
 *
 * Usage: node dist/bench/bench.js [--quick] [--out FILE] [--threads N] [--backend auto|js|wasm] [--no-baseline]
 *                                  [--save-json FILE] [--render-json FILE]
 *   --quick             scaled-down shapes and a small checkpoint: a smoke run for CI (< 1 minute)
 *   --out FILE          where to write the report (default docs/performance.md)
 *   --no-baseline       skip the Python baseline (also skipped when SWAN_SKIP_PYTHON is set)
 *   --save-json FILE    also save the measurements; --render-json FILE re-renders them without measuring
 * The full run needs the bench venv (scripts/setup-bench-venv.sh: torch from PyPI, several GB),
 * which it creates on first use; --quick uses it when present, else the mlx venv's numpy.
 *
 * Every measurement runs in its own child process (`--child KIND JSON`), so peak RSS is per
 * measurement and one section's memory is gone before the next starts. The parent only generates
 * checkpoints, spawns, and writes the report.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { getBackend } from '../src/kernels/index.js';
import { closeBackend, installBestBackend, type BackendChoice } from '../src/kernels/select.js';
import { computeMetrics, type MetricSeconds, type RawMetrics } from '../src/metrics/index.js';
import { readSafetensorsHeader, readTensorBytes, readTensorF32 } from '../src/io/safetensors.js';
import { SafetensorsWriter } from '../src/io/safetensors-writer.js';
import { openModel } from '../src/pipeline/source.js';
import { measureCandidates } from '../src/plan/candidates.js';
import { searchRelativeError } from '../src/mlx/rounding-search.js';
import { roundToDType } from '../src/io/float.js';
import type { TensorRecord } from '../src/arch/types.js';
import { quantizeModel } from '../src/pipeline/quantize.js';
import { PACKAGE_ROOT } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { qwen3_0_6B, writeSynthCheckpoint, type SynthShape } from '../src/synth/checkpoint.js';

const SELF = fileURLToPath(import.meta.url);
const SEED = 20261126;
/** Tail weight of the generated matrices: excess kurtosis ≈ 3e^{4a²} − 3 ≈ 1.3, like Qwen3-8B's mean. */
const TAIL = 0.3;
const RANK = 256;
/** A quantizable tensor as far as the candidate measurement is concerned. */
const BENCH_RECORD: TensorRecord = { hfName: 'bench.weight', mlxName: 'bench.weight', modulePath: 'bench', role: 'other', layer: 0, quantizable: true };
const NITER = 2;
const PROBES = 32;

// ---------------------------------------------------------------------------------------------
// Shapes

interface ShapeSpec {
  label: string;
  /** Which Qwen3-8B tensors have it, and how many (36 layers, untied embedding and head). */
  tensors: string;
  count: number;
  rows: number;
  cols: number;
  /** Rows actually generated and measured (a row slice of the embedding when memory is short). */
  measureRows?: number;
  repeats: number;
}

const FULL_SHAPES: ShapeSpec[] = [
  { label: '4096×4096', tensors: 'q_proj, o_proj', count: 72, rows: 4096, cols: 4096, repeats: 3 },
  { label: '1024×4096', tensors: 'k_proj, v_proj', count: 72, rows: 1024, cols: 4096, repeats: 3 },
  { label: '12288×4096', tensors: 'gate_proj, up_proj', count: 72, rows: 12288, cols: 4096, repeats: 3 },
  { label: '4096×12288', tensors: 'down_proj', count: 36, rows: 4096, cols: 12288, repeats: 3 },
  { label: '151936×4096', tensors: 'embed_tokens, lm_head', count: 2, rows: 151936, cols: 4096, repeats: 1 },
];

/** --quick: every dimension ÷4 (the embedding's rows ÷18), one repeat. */
const QUICK_SHAPES: ShapeSpec[] = [
  { label: '1024×1024', tensors: 'q_proj, o_proj (÷4)', count: 72, rows: 1024, cols: 1024, repeats: 1 },
  { label: '256×1024', tensors: 'k_proj, v_proj (÷4)', count: 72, rows: 256, cols: 1024, repeats: 1 },
  { label: '3072×1024', tensors: 'gate_proj, up_proj (÷4)', count: 72, rows: 3072, cols: 1024, repeats: 1 },
  { label: '1024×3072', tensors: 'down_proj (÷4)', count: 36, rows: 1024, cols: 3072, repeats: 1 },
  { label: '8192×1024', tensors: 'embed_tokens, lm_head (÷18, ÷4)', count: 2, rows: 8192, cols: 1024, repeats: 1 },
];

/** A small qwen3 for --quick whose square tensors still take the randomized-SVD path (min dim > 512). */
const QUICK_MODEL: SynthShape = {
  modelType: 'qwen3', hidden: 640, intermediate: 1280, layers: 2, heads: 5, kvHeads: 1, headDim: 128, vocab: 2048, tied: true,
};

/** Flops of the randomized SVD as swan runs it (q = 256, niter = 2, Cholesky-QR between GEMMs). */
function rsvdFlops(m: number, n: number): number {
  const q = Math.min(RANK, m, n);
  if (Math.min(m, n) <= 2 * RANK) return 0; // exact path: a float64 Gram in JS, not GEMM
  const big = 2 * m * n * q * (2 * NITER + 2); // WᵀR, niter × (W·Q, Wᵀ·Q), B = W·Q
  // Cholesky-QR passes (Gram + Y·R⁻¹, 4·rows·q² each): n-panels 1 + (niter−1) + 2, m-panels niter.
  const orth = 4 * q * q * (n * (NITER + 2) + m * NITER);
  const gram = 2 * m * q * q; // final BᵀB in float64
  return big + orth + gram;
}

// ---------------------------------------------------------------------------------------------
// Load: other processes' CPU time during a measurement

interface CpuStat {
  busy: number;
  t: number;
}

function cpuStat(): CpuStat | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy excludes idle and iowait.
    const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return { busy: busy / 100, t: performance.now() / 1000 }; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}

/** Cores' worth of CPU that processes other than ours used between a and b. */
function otherCores(a: CpuStat | null, b: CpuStat | null, ownCpuSeconds: number): number | null {
  if (!a || !b || b.t <= a.t) return null;
  return Math.max(0, (b.busy - a.busy - ownCpuSeconds) / (b.t - a.t));
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

function memAvailableBytes(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return totalmem() / 2;
}

function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Children

interface ShapeResult {
  label: string;
  rows: number;
  cols: number;
  measuredRows: number;
  repeats: number;
  totals: number[];
  seconds: MetricSeconds;
  total: number;
  cpu: number;
  otherCores: number | null;
  gemmGflops: number | null;
  /** analyzeTensor's candidate measurement (18 affine formats) for the full shape, from a row slice. */
  candidates: { rows: number; count: number; seconds: number; secondsRtnOnly: number; searchSeconds: number };
  values: RawMetrics;
  maxRssMiB: number;
}

interface ShapesOutput {
  backend: string;
  threads: number;
  results: ShapeResult[];
}

/** w = z·exp(a·z')·norm, float32, seeded. Scale factors come from a table of 2¹⁶ draws (cheap). */
function heavyTailed(rows: number, cols: number, seed: number): Float32Array {
  const n = rows * cols;
  const out = new Float32Array(n);
  const rng = new Rng(seed);
  const table = new Float64Array(1 << 16);
  const norm = Math.exp(-TAIL * TAIL) / Math.sqrt(cols);
  for (let i = 0; i < table.length; i++) table[i] = Math.exp(TAIL * rng.normal()) * norm;
  for (let i = 0; i < n; i += 2) {
    const u1 = (rng.nextU32() + 1) / 4294967297;
    const t = (2 * Math.PI * rng.nextU32()) / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    const k = rng.nextU32();
    out[i] = r * Math.cos(t) * table[k & 0xffff]!;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * table[k >>> 16]!;
  }
  return out;
}

function childShapes(arg: { shapes: ShapeSpec[]; candidateRows: number; threads?: number; backend: BackendChoice }): ShapesOutput {
  const label = installBestBackend({ backend: arg.backend, threads: arg.threads });
  const backend = getBackend();
  const threads = /×(\d+)/.exec(label) ? Number(/×(\d+)/.exec(label)![1]) : 1;
  // Warm the JS metric code (and the rSVD path) before anything is timed.
  const warm = heavyTailed(640, 768, 1);
  computeMetrics({ rows: 640, cols: 768, data: warm }, SEED, 'warm-up');
  measureCandidates(BENCH_RECORD, [64, 768], roundToDType(warm.slice(0, 64 * 768), 'BF16'), { dtype: 'BF16', rules: 'metal', search: true });
  const results: ShapeResult[] = [];
  for (const [i, s] of arg.shapes.entries()) {
    const rows = s.measureRows ?? s.rows;
    const w = heavyTailed(rows, s.cols, SEED + i);
    const runs: { seconds: MetricSeconds; total: number; values: RawMetrics; cpu: number; other: number | null }[] = [];
    for (let r = 0; r < s.repeats; r++) {
      const a = cpuStat(), c0 = ownCpu();
      const { seconds, raw } = computeMetrics({ rows, cols: s.cols, data: w }, SEED, `bench/${s.label}`);
      const cpu = ownCpu() - c0;
      const total = seconds.svd + seconds.kurtosis + seconds.output_sensitivity + seconds.error_proxy;
      runs.push({ seconds, total, values: raw, cpu, other: otherCores(a, cpuStat(), cpu) });
      process.stderr.write(`  swan ${s.label}${rows !== s.rows ? ` (${rows} rows)` : ''}: ${total.toFixed(2)} s\n`);
    }
    // One bare GEMM of the rSVD's kind (W·Q, Q n×256) for the kernel's own rate on this shape.
    let gemmGflops: number | null = null;
    const q = Math.min(RANK, rows, s.cols);
    if (Math.min(rows, s.cols) > 2 * RANK && backend.alloc && backend.release) {
      const wa = backend.alloc(rows * s.cols), qa = backend.alloc(s.cols * q), ca = backend.alloc(rows * q);
      try {
        wa.set(w);
        qa.set(w.subarray(0, s.cols * q));
        const t0 = performance.now();
        backend.gemm(false, false, rows, q, s.cols, wa, qa, ca);
        gemmGflops = (2 * rows * s.cols * q) / ((performance.now() - t0) / 1000) / 1e9;
      } finally {
        backend.release(ca);
        backend.release(qa);
        backend.release(wa);
      }
    }
    // analyzeTensor also measures every affine candidate (bf16, metal rules, RTN error of all formats
    // plus, by default, the rounding-search error). It first casts W to bf16 in place. The RTN part
    // is per group (linear in rows: timed on a row slice and scaled); the search part runs on a
    // fixed-size sample of rows whatever the tensor size, so it is timed on the whole tensor.
    let t0 = performance.now();
    roundToDType(w, 'BF16');
    const castSec = (performance.now() - t0) / 1000;
    const cr = Math.min(rows, arg.candidateRows);
    t0 = performance.now();
    const rtn = measureCandidates(BENCH_RECORD, [cr, s.cols], w.subarray(0, cr * s.cols), { dtype: 'BF16', rules: 'metal', search: false });
    const rtnSec = ((performance.now() - t0) / 1000) * (rows / cr);
    t0 = performance.now();
    for (const c of rtn) {
      if (c.format.kind !== 'affine') continue;
      searchRelativeError(w, rows, s.cols, c.format.bits, c.format.groupSize, 'BF16', 'metal', c.relError);
    }
    const searchSec = (performance.now() - t0) / 1000;
    const k = s.rows / rows;
    const candidates = {
      rows: cr, count: rtn.length,
      seconds: (castSec + rtnSec) * k + searchSec, secondsRtnOnly: (castSec + rtnSec) * k, searchSeconds: searchSec,
    };
    runs.sort((x, y) => x.total - y.total);
    const med = runs[runs.length >> 1]!;
    results.push({
      label: s.label, rows: s.rows, cols: s.cols, measuredRows: rows, repeats: runs.length,
      totals: runs.map((x) => x.total), seconds: med.seconds, total: med.total, cpu: med.cpu,
      otherCores: med.other, gemmGflops, candidates, values: med.values,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    });
  }
  closeBackend();
  return { backend: label, threads, results };
}

interface E2eOutput {
  backend: string;
  wall: number;
  analyzeSeconds: number;
  writeSeconds: number;
  cpu: number;
  otherCores: number | null;
  maxRssMiB: number;
  bytesIn: number;
  bytesOut: number;
  tensors: number;
  quantized: number;
  /** Elements and count of the tensors whose affine candidates analysis measures. */
  quantizableParams: number;
  quantizableTensors: number;
  /** Read + bf16→f32 of every tensor once more after the run (page cache warm), GB/s of source bytes. */
  readGBs: number;
  loadBefore: string;
  loadAfter: string;
}

function childE2e(arg: { dir: string; out: string; threads?: number; backend: BackendChoice }): E2eOutput {
  const label = installBestBackend({ backend: arg.backend, threads: arg.threads });
  const loadBefore = loadavg();
  const a = cpuStat(), c0 = ownCpu();
  const t0 = performance.now();
  let analyzed = t0;
  const res = quantizeModel(arg.dir, arg.out, {
    strategy: 'thresholds',
    overwrite: true,
    onAnalyze: () => {
      analyzed = performance.now();
    },
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = ownCpu() - c0;
  const other = otherCores(a, cpuStat(), cpu);
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  const loadAfter = loadavg();
  closeBackend();
  const src = openModel(arg.dir);
  const bytesIn = src.entries.reduce((s, e) => s + e.info.byteLength, 0);
  const quantizable = src.entries.filter((e) => e.record.quantizable && e.record.mlxName !== null);
  const quantizableParams = quantizable.reduce((s, e) => s + e.info.shape.reduce((a, b) => a * b, 1), 0);
  const quantizableTensors = quantizable.length;
  const r0 = performance.now();
  for (const e of src.entries) readTensorF32(e.info);
  const readGBs = bytesIn / ((performance.now() - r0) / 1000) / 1e9;
  return {
    backend: label, wall, analyzeSeconds: (analyzed - t0) / 1000, writeSeconds: wall - (analyzed - t0) / 1000,
    cpu, otherCores: other, maxRssMiB, bytesIn, bytesOut: res.bytes, tensors: res.plan.entries.length,
    quantized: res.plan.entries.filter((e) => e.format.kind === 'affine').length,
    quantizableParams, quantizableTensors, readGBs, loadBefore, loadAfter,
  };
}

function runChild<T>(kind: string, arg: unknown): T {
  const r = spawnSync(process.execPath, [SELF, '--child', kind, JSON.stringify(arg)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`bench child ${kind} failed (status ${r.status}, signal ${r.signal})`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

// ---------------------------------------------------------------------------------------------
// Python baseline

interface BaselineRuntime {
  impl: 'torch' | 'numpy';
  python: string;
  numpy: string;
  torch?: string;
  threads: number;
  mkl?: boolean;
}

interface BaselineShape {
  label: string;
  rows: number;
  cols: number;
  measured_rows: number;
  repeats: number;
  totals: number[];
  seconds: MetricSeconds;
  total: number;
  wall: number;
  cpu: number;
  other_cores: number | null;
  values: RawMetrics;
  max_rss_mb: number;
}

interface BaselineOutput {
  python: string;
  runtime: BaselineRuntime;
  shapes: BaselineShape[];
}

/** The bench venv's python (created by scripts/setup-bench-venv.sh unless quick), else the mlx venv's (numpy). */
function baselinePython(quick: boolean): string | null {
  const bench = process.env.SWAN_BENCH_VENV ?? join(PACKAGE_ROOT, '.venv-bench');
  if (!quick && !existsSync(join(bench, '.swan-bench'))) {
    spawnSync('bash', [join(PACKAGE_ROOT, 'scripts', 'setup-bench-venv.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const candidates = [join(bench, 'bin', 'python'), join(process.env.SWAN_VENV ?? join(PACKAGE_ROOT, '.venv'), 'bin', 'python')];
  return candidates.find((p) => existsSync(p)) ?? null;
}

function runBaseline(python: string, shapes: ShapeSpec[]): BaselineOutput {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
  // The machine pins OpenBLAS to an older kernel for old-library safety; it slows a current numpy.
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const spec = {
    seed: SEED,
    shapes: shapes.map((s) => ({ label: s.label, rows: s.rows, cols: s.cols, measure_rows: s.measureRows ?? s.rows, repeats: s.repeats })),
  };
  const r = spawnSync(python, [join(PACKAGE_ROOT, 'bench', 'py', 'baseline.py'), JSON.stringify(spec)], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`baseline.py failed (status ${r.status}, signal ${r.signal})`);
  const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
  return {
    python,
    runtime: objs.find((o) => o.kind === 'runtime') as unknown as BaselineRuntime,
    shapes: objs.filter((o) => o.kind === 'shape') as unknown as BaselineShape[],
  };
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/** A copy of `src` holding only its first `layers` layers (plus embedding and norms): no regeneration. */
function layerSubset(src: string, dst: string, layers: number): void {
  mkdirSync(dst, { recursive: true });
  const header = readSafetensorsHeader(join(src, 'model.safetensors'));
  const keep = header.tensors.filter((t) => {
    const m = /layers\.(\d+)\./.exec(t.name);
    return !m || Number(m[1]) < layers;
  });
  const w = new SafetensorsWriter(join(dst, 'model.safetensors'), keep, { format: 'pt' });
  for (const t of keep) w.write(t.name, readTensorBytes(t));
  w.close();
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  config.num_hidden_layers = layers;
  writeFileSync(join(dst, 'config.json'), JSON.stringify(config, null, 2));
}

function dirBytes(dir: string): number {
  return statSync(join(dir, 'model.safetensors')).size;
}

// ---------------------------------------------------------------------------------------------
// Report

const f = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const fs3 = (x: number): string => (x < 0.1 ? x.toFixed(4) : x < 10 ? x.toFixed(3) : x.toFixed(1));
const mmss = (s: number): string => `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;

/** Per-tensor seconds of the full shape: a measured row slice is scaled by rows (every step is linear in m). */
function fullTensorSeconds(r: { total: number; rows: number; measuredRows?: number; measured_rows?: number }): number {
  const measured = r.measuredRows ?? r.measured_rows ?? r.rows;
  return r.total * (r.rows / measured);
}

interface Report {
  quick: boolean;
  date: string;
  machine: string[];
  loadStart: string;
  loadEnd: string;
  shapes: ShapeSpec[];
  swan: ShapesOutput;
  swanLoad: [string, string];
  baseline: BaselineOutput | { skipped: string };
  baselineLoad: [string, string] | null;
  e2e: E2eOutput & { label: string; genSeconds: number; layers: number };
  rss: (E2eOutput & { layers: number })[];
  projection: { metricSeconds: number; candidateSeconds: number; readSeconds: number; writeSeconds: number; bytes: number; total: number };
  benchSeconds: number;
  cpuSeconds: number;
}

function render(r: Report): string {
  const L: string[] = [];
  const p = (s = ''): void => void L.push(s);
  p('# Performance');
  p();
  p(`Written by \`npm run bench${r.quick ? ' -- --quick' : ''}\` (bench/bench.ts) on ${r.date}.` +
    (r.quick ? ' **Quick mode: scaled-down shapes and a small checkpoint; a smoke run, not a measurement.**' : ''));
  p();
  p('## Machine and load');
  p();
  for (const m of r.machine) p(`- ${m}`);
  p(`- Load average (1/5/15 min) at start: ${r.loadStart}; at end: ${r.loadEnd}. Per-shape runs (swan and baseline alternating shape by shape): ${r.swanLoad[0]} → ${r.swanLoad[1]}.`);
  p(`- The whole run took ${f(r.benchSeconds, 0)} s wall, including generating the matrices and checkpoints (not timed in the tables).`);
  p('- "other load" is the CPU time that processes other than the one measured used during the measurement, in cores' +
    ' (from /proc/stat). This machine has 2 cores and other jobs were running: where other load is near 1 core or more,' +
    ' multi-threaded wall times are up to ~2× what a quiet machine gives; compare ratios measured side by side rather than absolute numbers.');
  p();

  // ---- swan per shape
  p('## swan, per tensor shape (Qwen3-8B shapes)');
  p();
  p(`Backend: **${r.swan.backend}**. Seconds per tensor, median of the repeats (${r.shapes.map((s) => s.repeats).join('/')}).` +
    ' Matrices are generated on the fly: w = z·exp(0.3·z′)/√cols (excess kurtosis ≈ 1.3), float32, seeded. The svd time includes' +
    ' copying W into the backend\'s memory; kurtosis and error proxy are single-threaded JS; svd and output sensitivity run on all threads.');
  p();
  p('| shape | 8B tensors (count) | svd s | kurtosis s | output noise s | error proxy s | **metrics s/tensor** | candidates s: default / RTN only | **analysis s/tensor** | rSVD GFLOP/s | W·Q GEMM GFLOP/s | threads | CPU/wall | other load (cores) |');
  p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [i, s] of r.swan.results.entries()) {
    const spec = r.shapes[i]!;
    const sliced = s.measuredRows !== s.rows;
    const flops = rsvdFlops(s.measuredRows, s.cols);
    const k = s.rows / s.measuredRows;
    p(`| ${s.label}${sliced ? ` ¹` : ''} | ${spec.tensors} (${spec.count}) | ${fs3(s.seconds.svd * k)} | ${fs3(s.seconds.kurtosis * k)} | ` +
      `${fs3(s.seconds.output_sensitivity * k)} | ${fs3(s.seconds.error_proxy * k)} | **${fs3(fullTensorSeconds(s))}** | ` +
      `${fs3(s.candidates.seconds)} / ${fs3(s.candidates.secondsRtnOnly)} | **${fs3(fullTensorSeconds(s) + s.candidates.seconds)}** | ` +
      `${flops ? f(flops / s.seconds.svd / 1e9, 1) : 'exact path'} | ${f(s.gemmGflops, 1)} | ${r.swan.threads} | ${f(s.cpu / s.total, 2)} | ${f(s.otherCores)} |`);
  }
  const sliced = r.swan.results.find((s) => s.measuredRows !== s.rows);
  p();
  p('rSVD GFLOP/s counts 2·m·n·256·6 for the six big GEMMs plus the Cholesky-QR and final Gram work ' +
    '(4·rows·256² per pass; 2·m·256² float64 Gram), divided by the whole svd time. W·Q is one bare backend GEMM (m×n)·(n×256) on the same matrix.' +
    (sliced ? ` ¹ Measured on a ${sliced.measuredRows}-row slice (memory) and scaled by rows; every step is linear in the row count.` : ''));
  const c0 = r.swan.results[0]!.candidates;
  p();
  p(`"candidates": since the budget-allocation change, analysis (every strategy, the default thresholds one included) also measures` +
    ` the relative error of all ${c0.count} affine formats (bits 2–8 × groups 32/64/128) of every quantizable tensor, by default with the` +
    ' per-group rounding search as well ("default"), single-threaded JS; "RTN only" is the same without the search. The thresholds plan' +
    ' does not use these numbers; they go into the manifest. Timed as analysis runs it (bf16, metal rules): the in-place bf16 cast and the RTN errors' +
    ` on a ${c0.rows}-row slice scaled by rows (that work is per group), the search on the whole tensor (it samples ≈32K weights per format whatever the size).` +
    ' "analysis" = metrics + candidates (default), the per-tensor cost of `swan quantize` today, reading excluded.');
  p();

  // ---- baseline
  p('## Python baseline (the reference\'s operations) vs swan');
  p();
  if ('skipped' in r.baseline) {
    p(`Skipped: ${r.baseline.skipped}.`);
  } else {
    const b = r.baseline;
    const rt = b.runtime;
    p(rt.impl === 'torch'
      ? `bench/py/baseline.py in the bench venv: torch ${rt.torch} (CPU, MKL ${rt.mkl ? 'yes' : 'no'}), ${rt.threads} threads, numpy ${rt.numpy}, Python ${rt.python}.` +
        ' Operations: `torch.svd_lowrank(W, q=256, niter=2)` (torch.linalg.svd when min dim ≤ 512), kurtosis with torch reductions,' +
        ' 32-probe output noise with a full m×n noise matrix and W+E, 4-bit g128 min-max RTN error proxy — as the reference does them (spec §1.3).'
      : `**torch was not available; the baseline ran in numpy ${rt.numpy}** (Python ${rt.python}) with the same algorithm as torch.svd_lowrank` +
        ' (Gaussian sketch, numpy.linalg.qr Householder QR, niter=2, SVD of the small B) and the same other three metrics.');
    p(' Same shapes and same distribution as the swan rows, not the same values. OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for it.');
    p();
    p('| shape | baseline svd s | kurtosis s | output noise s | error proxy s | **baseline total s** | swan total s | **ratio baseline/swan** | svd ratio | baseline peak RSS MiB | other load (cores) |');
    p('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of b.shapes) {
      const sw = r.swan.results.find((x) => x.label === s.label)!;
      const k = s.rows / s.measured_rows;
      const kw = sw.rows / sw.measuredRows;
      const bt = fullTensorSeconds(s), st = fullTensorSeconds(sw);
      p(`| ${s.label}${s.measured_rows !== s.rows ? ' ¹' : ''} | ${fs3(s.seconds.svd * k)} | ${fs3(s.seconds.kurtosis * k)} | ${fs3(s.seconds.output_sensitivity * k)} | ` +
        `${fs3(s.seconds.error_proxy * k)} | **${fs3(bt)}** | ${fs3(st)} | **${f(bt / st)}×** | ${f((s.seconds.svd * k) / (sw.seconds.svd * kw))}× | ${f(s.max_rss_mb, 0)} | ${f(s.other_cores)} |`);
    }
    const bsl = b.shapes.find((s) => s.measured_rows !== s.rows);
    if (bsl) p(`\n¹ Measured on a ${bsl.measured_rows}-row slice (memory) and scaled by rows.`);
    const uneven = b.shapes.filter((s) => {
      const o = r.swan.results.find((x) => x.label === s.label)!.otherCores;
      return o !== null && s.other_cores !== null && Math.abs(o - s.other_cores) > 0.5;
    });
    if (uneven.length) {
      p(`\n**Uneven load:** ${uneven.map((s) => s.label).join(', ')}: the two sides ran under other loads that differ by more than half a core` +
        ' (see the "other load" columns of both tables), so that ratio says more about the load than about the code.');
    }
    p();
    p('Raw metric values (a sanity check that both sides compute the same quantities on the same distribution):');
    p();
    p('| shape | svd concentration swan / baseline | kurtosis swan / baseline | output δ swan / baseline | NRMSE swan / baseline |');
    p('|---|---|---|---|---|');
    for (const s of b.shapes) {
      const v = r.swan.results.find((x) => x.label === s.label)!.values;
      const w = s.values;
      p(`| ${s.label} | ${f(v.svd_concentration, 4)} / ${f(w.svd_concentration, 4)} | ${f(v.kurtosis, 3)} / ${f(w.kurtosis, 3)} | ` +
        `${f(v.output_delta, 4)} / ${f(w.output_delta, 4)} | ${f(v.error_nrmse, 4)} / ${f(w.error_nrmse, 4)} |`);
    }
  }
  p();

  // ---- end to end
  const e = r.e2e;
  p(`## End to end: ${e.label}`);
  p();
  p('`quantizeModel` (= `swan quantize`, default thresholds strategy): read, analyse every tensor, plan, quantize and write the MLX' +
    ` directory. Generated bf16 checkpoint (${f(e.bytesIn / 1e9, 2)} GB, generation ${f(e.genSeconds, 0)} s, not timed),` +
    ' in the page cache when the run starts. Measured in a child process; peak RSS is that process\'s maxRSS.');
  p();
  p('| wall s | analyse s | quantize+write s | CPU s | source MB/s | peak RSS MiB | tensors (quantized) | output MB | other load (cores) | loadavg before → after |');
  p('|---:|---:|---:|---:|---:|---:|---|---:|---:|---|');
  p(`| ${f(e.wall, 1)} | ${f(e.analyzeSeconds, 1)} | ${f(e.writeSeconds, 1)} | ${f(e.cpu, 1)} | ${f(e.bytesIn / 1e6 / e.wall, 0)} | ${f(e.maxRssMiB, 0)} | ` +
    `${e.tensors} (${e.quantized}) | ${f(e.bytesOut / 1e6, 0)} | ${f(e.otherCores)} | ${e.loadBefore} → ${e.loadAfter} |`);
  p();
  {
    // Candidate cost model from the per-shape rows: cast + RTN per weight, search per tensor.
    const big = r.swan.results.reduce((x, y) => (x.rows * x.cols >= y.rows * y.cols ? x : y));
    const perElem = big.candidates.secondsRtnOnly / (big.rows * big.cols);
    const perTensor = r.swan.results.reduce((acc, x) => acc + x.candidates.searchSeconds, 0) / r.swan.results.length;
    const est = perElem * e.quantizableParams + perTensor * e.quantizableTensors;
    p(`Of the analyse phase, the candidate measurement is about ${f(est, 0)} s (${f((100 * est) / e.analyzeSeconds, 0)}%), estimated from the per-shape rows: ` +
      `${f(e.quantizableParams / 1e6, 0)} M quantizable weights × ${f(perElem * 1e9, 0)} ns (cast + RTN) + ${e.quantizableTensors} tensors × ${f(perTensor, 2)} s (search).`);
    p();
  }
  p('### Peak RSS against layer count (must be flat)');
  p();
  p('Same model with fewer layers (tensors copied from the checkpoint above), each run in its own process.');
  p();
  p('| layers | source MB | wall s | peak RSS MiB |');
  p('|---:|---:|---:|---:|');
  for (const x of [...r.rss, { ...e, layers: e.layers }].sort((a, b) => a.layers - b.layers)) {
    p(`| ${x.layers} | ${f(x.bytesIn / 1e6, 0)} | ${f(x.wall, 1)} | ${f(x.maxRssMiB, 0)} |`);
  }
  p();

  // ---- projection
  const pr = r.projection;
  p('## Projected Qwen3-8B analyse + quantize + write');
  p();
  if (r.quick) p('**Quick mode: computed from the scaled-down shapes with the 8B counts; it only checks the arithmetic, it projects nothing.**\n');
  p('Σ over the shapes above of count × measured seconds per tensor (252 tensors; metrics and candidate measurement), plus reading and converting the' +
    ` ${f(pr.bytes / 1e9, 1)} GB bf16 checkpoint once for analysis (at the read rate measured after the end-to-end run,` +
    ` ${f(e.readGBs, 2)} GB/s, page cache warm), plus the quantize+write phase at the end-to-end run\'s seconds per source byte.` +
    ' Norms (1-D) are not analysed and are negligible. A real end-to-end run on a generated 8B-shaped checkpoint (16 GB) was not' +
    ' done: generating it alone takes longer than this benchmark\'s budget on 2 cores.');
  p();
  p('| part | seconds |');
  p('|---|---:|');
  p(`| SWAN metrics (per-shape table × counts) | ${f(pr.metricSeconds, 0)} |`);
  p(`| candidate measurement, as analysis does it today (18 formats, RTN + search) | ${f(pr.candidateSeconds, 0)} |`);
  p(`| read + bf16→f32 for analysis | ${f(pr.readSeconds, 0)} |`);
  p(`| quantize + write (scaled from the end-to-end run) | ${f(pr.writeSeconds, 0)} |`);
  p(`| **total, \`swan quantize\` as it is now** | **${f(pr.total, 0)} (${mmss(pr.total)})** |`);
  const noCand = pr.total - pr.candidateSeconds;
  p(`| total without the candidate measurement (thresholds strategy does not use it) | ${f(noCand, 0)} (${mmss(noCand)}) |`);
  if (!('skipped' in r.baseline)) {
    const bsum = r.shapes.reduce((s, sh) => {
      const b = (r.baseline as BaselineOutput).shapes.find((x) => x.label === sh.label);
      return s + (b ? sh.count * fullTensorSeconds(b) : 0);
    }, 0);
    p(`| baseline metrics on the same counts, for comparison | ${f(bsum, 0)} (${mmss(bsum)}) |`);
  }
  p();

  // ---- goals
  if (!r.quick) {
    p('## Issue 4 goals on this run');
    p();
    const ratio = (label: string): number | null => {
      if ('skipped' in r.baseline) return null;
      const b = r.baseline.shapes.find((x) => x.label === label), s = r.swan.results.find((x) => x.label === label);
      return b && s ? fullTensorSeconds(b) / fullTensorSeconds(s) : null;
    };
    const mark = (ok: boolean | null): string => (ok === null ? '–' : ok ? 'met' : '**not met**');
    const r1 = ratio('4096×4096'), r2 = ratio('4096×12288');
    const rssMax = Math.max(e.maxRssMiB, ...r.rss.map((x) => x.maxRssMiB));
    const small = r.rss.reduce((a, b) => (a.layers < b.layers ? a : b));
    const big = r.rss.reduce((a, b) => (a.layers > b.layers ? a : b));
    p(`| goal | this run | |`);
    p(`|---|---|---|`);
    p(`| Qwen3-8B analyse+quantize+write ≤ 5 min on 2 cores | ${mmss(pr.total)} projected | ${mark(pr.total <= 300)} |`);
    p(`| the same without the candidate measurement | ${mmss(pr.total - pr.candidateSeconds)} projected | ${mark(pr.total - pr.candidateSeconds <= 300)} |`);
    p(`| ratio ≥ 2× over the baseline on 4096×4096 | ${f(r1)}× | ${mark(r1 === null ? null : r1 >= 2)} |`);
    p(`| ratio ≥ 2× over the baseline on 4096×12288 | ${f(r2)}× | ${mark(r2 === null ? null : r2 >= 2)} |`);
    p(`| peak RSS ≤ 2 GiB on the 0.6B-shaped run | ${f(rssMax, 0)} MiB | ${mark(rssMax <= 2048)} |`);
    p(`| peak RSS flat from ${small.layers} to ${big.layers} layers | ${f(small.maxRssMiB, 0)} → ${f(big.maxRssMiB, 0)} MiB | ${mark(big.maxRssMiB <= small.maxRssMiB * 1.1)} |`);
    p();
  }
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Main

function machineLines(backendNote: string): string[] {
  const c = cpus();
  let flags = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const fl = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
    flags = ['avx512f', 'avx2', 'amx_tile'].filter((x) => fl.split(' ').includes(x)).join(', ');
  } catch {
    // not Linux
  }
  return [
    `CPU: ${c[0]?.model ?? 'unknown'} × ${c.length} logical cores${flags ? ` (${flags})` : ''}; RAM ${f(totalmem() / 2 ** 30, 1)} GiB.`,
    `Node ${process.version}; ${backendNote}.`,
  ];
}

interface Args {
  quick: boolean;
  out: string;
  threads?: number;
  backend: BackendChoice;
  baseline: boolean;
  saveJson?: string;
  renderJson?: string;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  const threads = get('--threads');
  const backend = (get('--backend') ?? 'auto') as BackendChoice;
  if (!['auto', 'js', 'wasm'].includes(backend)) throw new Error(`--backend must be auto, js or wasm`);
  return {
    quick: argv.includes('--quick'),
    out: resolve(get('--out') ?? join(PACKAGE_ROOT, 'docs', 'performance.md')),
    threads: threads === undefined ? undefined : Number(threads),
    backend,
    baseline: !argv.includes('--no-baseline') && !process.env.SWAN_SKIP_PYTHON,
    saveJson: get('--save-json'),
    renderJson: get('--render-json'),
  };
}

function main(): void {
  const argv = process.argv.slice(2);
  const ci = argv.indexOf('--child');
  if (ci >= 0) {
    const kind = argv[ci + 1];
    const arg = JSON.parse(argv[ci + 2]!) as never;
    const out = kind === 'shapes' ? childShapes(arg) : kind === 'e2e' ? childE2e(arg) : null;
    if (out === null) throw new Error(`unknown child ${kind}`);
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }

  const opts = parseArgs(argv);
  if (opts.renderJson) {
    // Re-render a saved run (report wording changes need no new measurement).
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, render(JSON.parse(readFileSync(opts.renderJson, 'utf8')) as Report));
    return;
  }
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);
  const loadStart = loadavg();
  const shapes = (opts.quick ? QUICK_SHAPES : FULL_SHAPES).map((s) => ({ ...s }));
  // Memory check for the big shape: swan holds W twice (JS + backend memory) plus panels; the
  // reference's output-noise step holds W, E and W+E at once.
  const avail = memAvailableBytes();
  for (const s of shapes) {
    const bytes = s.rows * s.cols * 4;
    const need = bytes * 4.5 + 2 ** 30;
    if (need > avail) {
      s.measureRows = Math.max(8, Math.floor((s.rows * (avail - 2 ** 30)) / 4.5 / bytes / 8) * 8);
      log(`${s.label}: ${(avail / 2 ** 30).toFixed(1)} GiB available, measuring ${s.measureRows} rows and scaling`);
    }
  }
  const common = { threads: opts.threads, backend: opts.backend };

  // swan and the baseline alternate shape by shape, so each pair runs under similar load.
  const py = opts.baseline ? baselinePython(opts.quick) : null;
  let baseline: Report['baseline'] = { skipped: opts.baseline ? 'no Python found' : 'disabled (--no-baseline or SWAN_SKIP_PYTHON)' };
  const l0 = loadavg();
  let swan: ShapesOutput | undefined;
  // Quick mode batches the shapes into one process per side: start-up (torch import) dominates there.
  for (const batch of opts.quick ? [shapes] : shapes.map((s) => [s])) {
    const names = batch.map((s) => s.label).join(', ');
    log(`${names}: swan`);
    const one = runChild<ShapesOutput>('shapes', { shapes: batch, candidateRows: opts.quick ? 32 : 256, ...common });
    if (swan) swan.results.push(...one.results);
    else swan = one;
    if (py) {
      log(`${names}: Python baseline (${py})`);
      const b = runBaseline(py, batch);
      if ('skipped' in baseline) baseline = b;
      else baseline.shapes.push(...b.shapes);
    }
  }
  const swanLoad: [string, string] = [l0, loadavg()];
  const baselineLoad: Report['baselineLoad'] = null;

  const tmp = mkdtempSync(join(tmpdir(), 'swan-bench-'));
  try {
    const model = opts.quick ? QUICK_MODEL : qwen3_0_6B(28);
    const label = opts.quick
      ? `small qwen3 (${model.layers} layers, hidden ${model.hidden}, intermediate ${model.intermediate}, vocab ${model.vocab})`
      : 'Qwen3-0.6B shapes (28 layers, hidden 1024, intermediate 3072, 16/8 heads of 128, vocab 151936, tied)';
    const full = join(tmp, 'model');
    log(`generating ${label}`);
    const g0 = performance.now();
    writeSynthCheckpoint(full, model, { seed: 7 });
    const genSeconds = (performance.now() - g0) / 1000;
    log(`  ${(dirBytes(full) / 1e9).toFixed(2)} GB in ${genSeconds.toFixed(0)} s; end to end`);
    const e2e = runChild<E2eOutput>('e2e', { dir: full, out: join(tmp, 'out'), ...common });
    rmSync(join(tmp, 'out'), { recursive: true, force: true });
    log(`  ${e2e.wall.toFixed(1)} s, peak RSS ${e2e.maxRssMiB.toFixed(0)} MiB`);

    const rss: (E2eOutput & { layers: number })[] = [];
    for (const layers of opts.quick ? [1] : [2, 8]) {
      const dir = join(tmp, `model-${layers}`);
      layerSubset(full, dir, layers);
      log(`${layers}-layer run`);
      rss.push({ ...runChild<E2eOutput>('e2e', { dir, out: join(tmp, `out-${layers}`), ...common }), layers });
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(tmp, `out-${layers}`), { recursive: true, force: true });
    }

    // Qwen3-8B: 36 layers, hidden 4096, intermediate 12288, 32/8 heads of 128, vocab 151936, untied: 8.19e9 parameters.
    const params8b = shapes.reduce((s, sh) => s + sh.count * sh.rows * sh.cols, 0) + (36 * 2 + 1) * 4096 + 36 * 2 * 128;
    const bytes = params8b * 2;
    const sw = (sh: ShapeSpec): ShapeResult => swan!.results.find((x) => x.label === sh.label)!;
    const metricSeconds = shapes.reduce((s, sh) => s + sh.count * fullTensorSeconds(sw(sh)), 0);
    const candidateSeconds = shapes.reduce((s, sh) => s + sh.count * sw(sh).candidates.seconds, 0);
    const readSeconds = bytes / (e2e.readGBs * 1e9);
    const writeSeconds = (e2e.writeSeconds / e2e.bytesIn) * bytes;
    const projection = {
      metricSeconds, candidateSeconds, readSeconds, writeSeconds, bytes,
      total: metricSeconds + candidateSeconds + readSeconds + writeSeconds,
    };

    const cpu1 = process.cpuUsage(cpu0);
    const report: Report = {
      quick: opts.quick,
      date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
      machine: machineLines(`backend ${swan!.backend}`),
      loadStart,
      loadEnd: loadavg(),
      shapes,
      swan: swan!,
      swanLoad,
      baseline,
      baselineLoad,
      e2e: { ...e2e, label, genSeconds, layers: model.layers },
      rss,
      projection,
      benchSeconds: (performance.now() - started) / 1000,
      cpuSeconds: (cpu1.user + cpu1.system) / 1e6,
    };
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, render(report));
    if (opts.saveJson) writeFileSync(opts.saveJson, JSON.stringify(report, null, 1) + '\n');
    log(`wrote ${opts.out} in ${report.benchSeconds.toFixed(0)} s`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
