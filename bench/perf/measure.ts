/**
 * The measurements of swan, each run in a child process of its own (`bench.js --child KIND JSON`)
 * so that peak RSS is per measurement and one section's memory is gone before the next starts:
 * per-shape metrics, the default quantize path and candidate measurement ('shapes'), and
 * end-to-end quantization of a checkpoint ('e2e').
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { getBackend } from '../../src/kernels/index.js';
import { closeBackend, installBestBackend, type BackendChoice } from '../../src/kernels/select.js';
import { computeMetrics, type MetricSeconds, type RawMetrics } from '../../src/metrics/index.js';
import { readTensorF32 } from '../../src/io/safetensors.js';
import { openModel } from '../../src/arch/source.js';
import { measureCandidates } from '../../src/measure/candidates.js';
import { measurableFormats } from '../../src/plan/eligibility.js';
import { quantizeAffineOn } from '../../src/mlx/affine.js';
import { decodeToF32, encodeFromF32, roundToDType } from '../../src/io/float.js';
import type { TensorRecord } from '../../src/arch/types.js';
import type { TensorAnalysis } from '../../src/measure/analyze.js';
import { quantizeModel } from '../../src/pipeline/quantize.js';
import { modelSize, workerJobs } from '../../src/pipeline/worker-pool.js';
import type { Strategy } from '../../src/options.js';
import { benchEnv, cpuStat, loadavg, otherCores, ownCpu, type LoadAvg } from './machine.js';
import { heavyTailed, RANK, SEED, type ShapeSpec } from './shapes.js';

/** The entry point that runs a child measurement (`--child`): bench/bench.ts, one folder up. */
const ENTRY = fileURLToPath(new URL('../bench.js', import.meta.url));
/** A quantizable tensor as far as the candidate measurement is concerned. */
const BENCH_RECORD: TensorRecord = { hfName: 'bench.weight', mlxName: 'bench.weight', modulePath: 'bench', role: 'other', layer: 0, quantizable: true };

export interface ShapeResult {
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
  /**
   * The quantize path of one tensor whose bits the cheap metrics decide (thresholds, the CLI default):
   * bf16→f32 decode (done twice: analysis read and write read), kurtosis, error proxy, the in-place
   * bf16 cast, quantizeAffine 4-bit g64 and encoding scales/biases. Median of the repeats, seconds.
   */
  quant: QuantPath;
  /** Candidate measurement of `swan analyze` / the budget strategy (18 formats on the row sample): RTN, and RTN + search. */
  candidates: { count: number; rtnSeconds: number; searchSeconds: number };
  values: RawMetrics;
  maxRssMiB: number;
}

export interface QuantPath {
  decode: number;
  kurtosis: number;
  errorProxy: number;
  cast: number;
  quantize: number;
  pack: number;
  /** decode×2 + kurtosis + error proxy + cast + quantize + pack. */
  total: number;
  otherCores: number | null;
}

export interface ShapesOutput {
  /** installBestBackend's label, e.g. "native-openblas (Zen kernels) ×2 threads". */
  backend: string;
  threads: number;
  /** The native backend's BLAS: its kernel set (OpenBLAS's corename, "" for Accelerate) and build; null on wasm and JS. */
  blas: { kernels: string; config: string } | null;
  results: ShapeResult[];
}

function blasInfo(): ShapesOutput['blas'] {
  const info = (getBackend() as { info?: { corename?: string; config?: string } }).info;
  return info ? { kernels: info.corename ?? '', config: info.config ?? '' } : null;
}

export function childShapes(arg: { shapes: ShapeSpec[]; threads?: number; backend: BackendChoice }): ShapesOutput {
  const label = installBestBackend({ backend: arg.backend, threads: arg.threads });
  const backend = getBackend();
  const threads = /×(\d+)/.exec(label) ? Number(/×(\d+)/.exec(label)![1]) : 1;
  // Warm the JS metric code (and the rSVD path) before anything is timed.
  const warm = heavyTailed(640, 768, 1);
  computeMetrics({ rows: 640, cols: 768, data: warm }, SEED, 'warm-up');
  computeMetrics({ rows: 640, cols: 768, data: warm }, SEED, 'warm-up', () => false);
  quantizeAffineOn(backend, roundToDType(warm, 'BF16'), 640, 768, 4, 64, 'metal');
  measureCandidates(measurableFormats(BENCH_RECORD, [640, 768]), [640, 768], warm, { dtype: 'BF16', rules: 'metal', search: true, weighting: 'none' });
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
    if (Math.min(rows, s.cols) > 2 * RANK) {
      // Operands in the backend's own memory where it has one (wasm), else plain arrays (native, JS).
      const own = backend.alloc && backend.release ? backend : null;
      const mk = (n: number) => (own ? own.alloc!(n) : new Float32Array(n));
      const wa = mk(rows * s.cols), qa = mk(s.cols * q), ca = mk(rows * q);
      try {
        wa.set(w);
        qa.set(w.subarray(0, s.cols * q));
        const t0 = performance.now();
        backend.gemm(false, false, rows, q, s.cols, wa, qa, ca);
        gemmGflops = (2 * rows * s.cols * q) / ((performance.now() - t0) / 1000) / 1e9;
      } finally {
        for (const x of [ca, qa, wa]) own?.release!(x);
      }
    }
    // The quantize path when kurtosis + error proxy decide the bits (thresholds, CLI default): the
    // tensor is read and decoded from bf16 for analysis, the two cheap metrics run (computeMetrics
    // with the spectral part declined, exactly as analyzeTensor calls it), then the writer reads and
    // decodes it again, casts it to bf16 in place, quantizes (4-bit g64, metal rules) and encodes the
    // scales and biases. The bf16 bytes are made once, untimed; decoding goes into w itself.
    const bytes = encodeFromF32(w, 'BF16');
    const qruns: QuantPath[] = [];
    for (let r = 0; r < s.repeats; r++) {
      const a = cpuStat(), c0 = ownCpu();
      let t0 = performance.now();
      decodeToF32(bytes, 'BF16', w);
      const decode = (performance.now() - t0) / 1000;
      const cheap = computeMetrics({ rows, cols: s.cols, data: w }, SEED, `bench/${s.label}`, () => false);
      t0 = performance.now();
      roundToDType(w, 'BF16');
      const cast = (performance.now() - t0) / 1000;
      t0 = performance.now();
      const q = quantizeAffineOn(backend, w, rows, s.cols, 4, 64, 'metal');
      const quantize = (performance.now() - t0) / 1000;
      t0 = performance.now();
      encodeFromF32(q.scales, 'BF16');
      encodeFromF32(q.biases, 'BF16');
      const pack = (performance.now() - t0) / 1000;
      const total = 2 * decode + cheap.seconds.kurtosis + cheap.seconds.error_proxy + cast + quantize + pack;
      const cpu = ownCpu() - c0;
      qruns.push({ decode, kurtosis: cheap.seconds.kurtosis, errorProxy: cheap.seconds.error_proxy, cast, quantize, pack, total, otherCores: otherCores(a, cpuStat(), cpu) });
      process.stderr.write(`  swan ${s.label} quantize path (cheap metrics decide): ${total.toFixed(3)} s\n`);
    }
    qruns.sort((x, y) => x.total - y.total);
    // `swan analyze` and the budget strategy also measure the 18 affine candidates, on a row sample of
    // at most CANDIDATE_SAMPLE_ELEMENTS weights (w is bf16-exact here, as analysis has it).
    let t0 = performance.now();
    const rtn = measureCandidates(measurableFormats(BENCH_RECORD, [rows, s.cols]), [rows, s.cols], w, { dtype: 'BF16', rules: 'metal', search: false, weighting: 'none' });
    const rtnSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    measureCandidates(measurableFormats(BENCH_RECORD, [rows, s.cols]), [rows, s.cols], w, { dtype: 'BF16', rules: 'metal', search: true, weighting: 'none' });
    const searchSeconds = (performance.now() - t0) / 1000;
    const candidates = { count: rtn.length, rtnSeconds, searchSeconds };
    runs.sort((x, y) => x.total - y.total);
    const med = runs[runs.length >> 1]!;
    results.push({
      label: s.label, rows: s.rows, cols: s.cols, measuredRows: rows, repeats: runs.length,
      totals: runs.map((x) => x.total), seconds: med.seconds, total: med.total, cpu: med.cpu,
      otherCores: med.other, gemmGflops, quant: qruns[qruns.length >> 1]!, candidates, values: med.values,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    });
  }
  const blas = blasInfo();
  closeBackend();
  return { backend: label, threads, blas, results };
}

export interface E2eOutput {
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
  /** Options of the run: skipDecided = the CLI default (true) or --all-metrics (false). */
  skipDecided: boolean;
  /** Strategy, --score-protected and --jobs of the run (absent in runs saved before they were options: thresholds, false, 1). */
  strategy?: Strategy;
  scoreProtected?: boolean;
  jobs?: number;
  /** 2-D tensors scored with all four metrics / with kurtosis + error proxy only / not scored (protected, dropped, 1-D). */
  fullMetricTensors: number;
  cheapMetricTensors: number;
  unscoredTensors: number;
  /** Linear (default-class, scored) tensors and how many of them needed the full metrics. */
  linearTensors: number;
  /** Analysis seconds summed over the full-metric tensors and over the cheap ones. */
  fullMetricSeconds: number;
  cheapMetricSeconds: number;
  /** Plan entries by stored format: bits of affine ones, "float" for the rest. */
  bits: Record<string, number>;
  /** Read + bf16→f32 of every tensor once more after the run (page cache warm), GB/s of source bytes. */
  readGBs: number;
  loadBefore: LoadAvg;
  loadAfter: LoadAvg;
}

export interface E2eArgs {
  dir: string;
  out: string;
  threads?: number;
  backend: BackendChoice;
  skipDecided: boolean;
  /** Default thresholds (the generated checkpoint's runs); the SmolLM2 section also runs the budget. */
  strategy?: Strategy;
  scoreProtected?: boolean;
  /** --jobs (default: the library's, workerJobs). */
  jobs?: number;
}

export function childE2e(arg: E2eArgs): E2eOutput {
  const label = installBestBackend({ backend: arg.backend, threads: arg.threads });
  const loadBefore = loadavg();
  const a = cpuStat(), c0 = ownCpu();
  const t0 = performance.now();
  let analyzed = t0;
  const analyses: TensorAnalysis[] = [];
  // Thresholds, protected tensors unscored, skipDecided unless --all-metrics, unless the arguments say otherwise.
  const strategy = arg.strategy ?? 'thresholds';
  const scoreProtected = arg.scoreProtected ?? false;
  const jobs = arg.jobs ?? workerJobs(undefined, modelSize(openModel(arg.dir)));
  const res = quantizeModel(arg.dir, arg.out, {
    strategy,
    overwrite: true,
    scoreProtected,
    skipDecided: arg.skipDecided,
    jobs,
    onAnalyze: (_done, _total, t) => {
      analyses.push(t);
      analyzed = performance.now();
    },
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = ownCpu() - c0;
  const other = otherCores(a, cpuStat(), cpu);
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  const loadAfter = loadavg();
  closeBackend();
  const full = analyses.filter((t) => t.raw !== null && Number.isFinite(t.raw.svd_concentration));
  const cheap = analyses.filter((t) => t.raw !== null && !Number.isFinite(t.raw.svd_concentration));
  const linear = analyses.filter((t) => t.raw !== null && t.classification !== 'protected');
  const bits: Record<string, number> = {};
  for (const e of res.plan.entries) {
    const k = e.format.kind === 'affine' ? String(e.format.bits) : 'float';
    bits[k] = (bits[k] ?? 0) + 1;
  }
  const src = openModel(arg.dir);
  const bytesIn = src.entries.reduce((s, e) => s + e.info.byteLength, 0);
  const r0 = performance.now();
  for (const e of src.entries) readTensorF32(e.info);
  const readGBs = bytesIn / ((performance.now() - r0) / 1000) / 1e9;
  return {
    backend: label, wall, analyzeSeconds: (analyzed - t0) / 1000, writeSeconds: wall - (analyzed - t0) / 1000,
    cpu, otherCores: other, maxRssMiB, bytesIn, bytesOut: res.bytes, tensors: res.plan.entries.length,
    quantized: res.plan.entries.filter((e) => e.format.kind === 'affine').length,
    skipDecided: arg.skipDecided,
    strategy,
    scoreProtected,
    jobs,
    fullMetricTensors: full.length, cheapMetricTensors: cheap.length, unscoredTensors: analyses.length - full.length - cheap.length,
    linearTensors: linear.length,
    fullMetricSeconds: full.reduce((s, t) => s + t.seconds, 0), cheapMetricSeconds: cheap.reduce((s, t) => s + t.seconds, 0),
    bits, readGBs, loadBefore, loadAfter,
  };
}

/** Run `bench.js --child KIND ARG` in its own process (`nodeArgs`: e.g. --cpu-prof) and parse its last stdout line. */
export function runChild<T>(kind: string, arg: unknown, nodeArgs: string[] = []): T {
  const r = spawnSync(process.execPath, [...nodeArgs, ENTRY, '--child', kind, JSON.stringify(arg)], {
    env: benchEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`bench child ${kind} failed (status ${r.status}, signal ${r.signal})`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}
