/**
 * The benchmark report is a pure function of the measurement JSON: rendered from a small hand-made
 * run, it states that run's machine and load, and computes the baseline ratios and goal verdicts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BaselineShape } from '../bench/perf/baseline.js';
import type { E2eOutput, ShapeResult } from '../bench/perf/measure.js';
import { render } from '../bench/perf/render.js';
import type { Report } from '../bench/perf/report.js';
import { FULL_SHAPES } from '../bench/perf/shapes.js';
import { renderSmolLM2, type SmolReport } from '../bench/perf/smollm2.js';

const metricSeconds = (total: number) => ({ svd: total * 0.7, kurtosis: total * 0.1, output_sensitivity: total * 0.1, error_proxy: total * 0.1 });
const values = { svd_concentration: 0.12, kurtosis: 1.3, output_delta: 0.4, error_nrmse: 0.1166 };

function swanShape(label: string, rows: number, cols: number, total: number): ShapeResult {
  const quant = { decode: 0.01, kurtosis: 0.01, errorProxy: 0.01, cast: 0.01, quantize: 0.01, pack: 0.001, total: 0.051, otherCores: 0 };
  return {
    label, rows, cols, measuredRows: rows, repeats: 1, totals: [total], seconds: metricSeconds(total), total, cpu: total * 1.5,
    otherCores: 0.02, gemmGflops: 300, quant, candidates: { count: 18, rtnSeconds: 0.1, searchSeconds: 0.3 }, values, maxRssMiB: 400,
  };
}

function baselineShape(label: string, rows: number, cols: number, total: number, otherCores: number): BaselineShape {
  return {
    label, rows, cols, measured_rows: rows, repeats: 1, totals: [total], seconds: metricSeconds(total), total, wall: total, cpu: total,
    other_cores: otherCores, values, max_rss_mb: 800,
  };
}

function e2e(layers: number, maxRssMiB: number): E2eOutput & { layers: number } {
  return {
    backend: 'native-openblas (TestCore kernels) ×8 threads', wall: 10, analyzeSeconds: 7, writeSeconds: 3, cpu: 12, otherCores: 0.01, maxRssMiB,
    bytesIn: 1e9, bytesOut: 5e8, tensors: 310, quantized: 196, skipDecided: true, fullMetricTensors: 32, cheapMetricTensors: 164,
    unscoredTensors: 114, linearTensors: 196, fullMetricSeconds: 4.5, cheapMetricSeconds: 2.2, bits: { '4': 194, '8': 2, float: 114 },
    readGBs: 1, loadBefore: [0.5, 0.4, 0.3], loadAfter: [0.6, 0.4, 0.3], layers,
  };
}

/** A full (not --quick) run: swan 0.4 s on 4096×4096 against a baseline 1.0 s; 1.5 s on 4096×12288 against 2.25 s. */
function report(): Report {
  const swanTotals: Record<string, number> = { '4096×4096': 0.4, '1024×4096': 0.2, '12288×4096': 0.9, '4096×12288': 1.5, '151936×4096': 11 };
  const baseTotals: Record<string, number> = { '4096×4096': 1.0, '1024×4096': 0.25, '12288×4096': 2.3, '4096×12288': 2.25, '151936×4096': 37 };
  return {
    quick: false,
    date: '2030-01-02 03:04:05 UTC',
    machine: {
      cpuModel: 'Test CPU 9000', logicalCores: 8, cpuFeatures: ['avx2'], memoryBytes: 64 * 2 ** 30, memoryAvailableBytes: 60 * 2 ** 30,
      os: 'linux 6.1.0 x64', node: 'v20.0.0', unsetForMeasurement: { OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: null },
    },
    load: { start: [0.25, 0.5, 0.75], shapesStart: [0.3, 0.5, 0.75], shapesEnd: [1.5, 0.9, 0.8], end: [1.25, 1, 0.9] },
    shapes: FULL_SHAPES,
    swan: {
      backend: 'native-openblas (TestCore kernels) ×8 threads', threads: 8, blas: { kernels: 'TestCore', config: 'OpenBLAS 0.3.99 TestCore' },
      results: FULL_SHAPES.map((s) => swanShape(s.label, s.rows, s.cols, swanTotals[s.label]!)),
    },
    baseline: {
      python: '/venv/bin/python',
      runtime: { impl: 'torch', python: '3.11.0', numpy: '2.0.0', torch: '2.5.0', threads: 8, mkl: true },
      // 4096×12288's baseline ran with a whole other core busy: its ratio is flagged.
      shapes: FULL_SHAPES.map((s) => baselineShape(s.label, s.rows, s.cols, baseTotals[s.label]!, s.label === '4096×12288' ? 1.2 : 0.01)),
    },
    e2e: { ...e2e(28, 468), label: 'Qwen3-0.6B shapes', genSeconds: 70 },
    e2eAll: { ...e2e(28, 442), skipDecided: false, wall: 26, analyzeSeconds: 24 },
    rss: [e2e(2, 437), e2e(8, 447)],
    projection: {
      bytes: 16.4e9, linearBytes: 13.9e9, linearTensors: 252, readSeconds: 13, cheapSeconds: 31, spectralSeconds: 101, protectedMetricSeconds: 22,
      writeSeconds: 37, writeComputeSeconds: 41, synthF: 32 / 196, kurtosisBoundary: 2.2222,
    },
    benchSeconds: 285,
    cpuSeconds: 80,
  };
}

const row = (doc: string, first: string): string => doc.split('\n').find((l) => l.startsWith(`| ${first} |`)) ?? `(no row "${first}")`;

test('render states the recorded machine and load', () => {
  const doc = render(report());
  assert.match(doc, /on 2030-01-02 03:04:05 UTC\./);
  assert.equal(row(doc, 'CPU'), '| CPU | Test CPU 9000 |');
  assert.equal(row(doc, 'logical cores'), '| logical cores | 8 |');
  assert.equal(row(doc, 'memory'), '| memory | 64.0 GiB, 60.0 GiB available at start |');
  assert.equal(row(doc, 'BLAS kernel set'), '| BLAS kernel set | TestCore |');
  assert.equal(row(doc, 'OPENBLAS_CORETYPE in the bench\'s environment'), '| OPENBLAS_CORETYPE in the bench\'s environment | Haswell (removed for every measured process) |');
  assert.equal(row(doc, 'OPENBLAS_L2_SIZE in the bench\'s environment'), '| OPENBLAS_L2_SIZE in the bench\'s environment | not set |');
  assert.equal(row(doc, 'load average (1/5/15 min) at start'), '| load average (1/5/15 min) at start | 0.25 0.50 0.75 |');
  assert.equal(row(doc, 'load average before → after the per-shape runs'), '| load average before → after the per-shape runs | 0.30 0.50 0.75 → 1.50 0.90 0.80 |');
  assert.equal(row(doc, 'highest other load in a measurement'), '| highest other load in a measurement | 1.20 cores (baseline 4096×12288) |');
  assert.match(doc, /with torch 2\.5\.0 \(CPU, MKL yes\), 8 threads/);
  // No machine is described but the recorded one.
  assert.doesNotMatch(doc, /EPYC|2 cores|issue \d|spec §/);
});

test('render computes the baseline ratios and the goal verdicts from the figures', () => {
  const doc = render(report());
  // 1.0 / 0.4 and 2.25 / 1.5, in the baseline table and in the goals.
  assert.match(doc, /^\| 4096×4096 \| .* \| \*\*1\.000\*\* \| 0\.400 \| \*\*2\.50×\*\* \|/m);
  assert.match(doc, /^\| 4096×12288 \| .* \| \*\*2\.250\*\* \| 1\.500 \| \*\*1\.50×\*\* \|/m);
  assert.equal(row(doc, 'ratio ≥ 2× over the baseline on 4096×4096 (all metrics)'), '| ratio ≥ 2× over the baseline on 4096×4096 (all metrics) | 2.50× (both sides quiet) | met |');
  assert.equal(
    row(doc, 'ratio ≥ 2× over the baseline on 4096×12288 (all metrics)'),
    '| ratio ≥ 2× over the baseline on 4096×12288 (all metrics) | 1.50× (load-affected: other load swan 0.02 vs baseline 1.20 cores: uneven) | **missed** |',
  );
  assert.match(doc, /\*\*Load-affected ratios\*\* .*: 4096×12288 \(other load swan 0\.02 vs baseline 1\.20 cores: uneven\)\./);
  // 13 + 31 + 0.1 × 101 + 37 = 91.1 s projected; the goal's core count is the recorded one.
  assert.match(doc, /\| Qwen3-8B analyse\+quantize\+write ≤ 5 min on this machine \(8 logical cores\), defaults, f = 0\.1 \(assumed\) \| 1 min 31 s projected \| met \|/);
  assert.match(doc, /\| peak RSS flat \(≤ 1\.1×\) from 2 to 28 layers \| 437 → 468 MiB \| met \|/);
  assert.match(doc, /a tensor needs them when its excess kurtosis is 2\.22 or more/);
});

test('render of a --quick run states the smoke run and leaves out the goals', () => {
  const doc = render({ ...report(), quick: true, baseline: { skipped: 'disabled (--no-baseline or SWAN_SKIP_PYTHON)' } });
  assert.match(doc, /Quick mode: scaled-down shapes/);
  assert.match(doc, /Skipped: disabled \(--no-baseline or SWAN_SKIP_PYTHON\)\./);
  assert.doesNotMatch(doc, /## Goals on this run/);
});

test('SmolLM2 section: alternating pairs listed, the ratio of the median runs', () => {
  const run = (wall: number): E2eOutput => ({ backend: 'native', wall, cpu: wall * 1.9, otherCores: 0, maxRssMiB: 400, jobs: 2 }) as unknown as E2eOutput;
  const baseline = (wall: number) => ({
    python: 'py',
    runtime: { impl: 'torch' as const, python: '3.11', numpy: '2', torch: '2.15', threads: 2 },
    model: { scored: 211, skipped: 61, seconds: metricSeconds(wall), wall, cpu: wall * 2, other_cores: 0, max_rss_mb: 1200 },
  });
  const report: SmolReport = {
    source: 'SmolLM2',
    runs: [{ label: 'every metric', flags: '--all-metrics', out: run(7) }],
    baseline: baseline(21),
    pairs: { swan: [7.5, 7, 6.5], baseline: [21, 19, 23] },
    profile: null,
    load: { start: [0.5, 0.5, 0.5], end: [1, 1, 1] },
  };
  const md = renderSmolLM2(report, '2026-11-29').join('\n');
  assert.match(md, /measured 3 times alternately/);
  assert.match(md, /swan 7\.50, 7\.00, 6\.50 s; baseline 21\.00, 19\.00, 23\.00 s; the pairs' ratios 2\.80, 2\.71, 3\.54/);
  assert.match(md, /swan 7\.0 s against the baseline's 21\.0 s wall \(medians\): 3\.00×/);
});
