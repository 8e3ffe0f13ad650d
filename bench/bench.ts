/**
 * `npm run bench`: measures swan's analysis on Qwen3-8B shapes, a Python baseline doing the
 * reference's operations on the same shapes, the per-tensor cost of `swan quantize`'s default path
 * (cheap metrics deciding), and end-to-end quantization of a generated Qwen3-0.6B-shaped checkpoint
 * with the CLI's defaults (and with --all-metrics), and the real SmolLM2-135M end to end next to the
 * baseline on the same tensors, with a CPU profile (perf/smollm2.ts); writes docs/performance.md.
 *
 * Usage: node dist/bench/bench.js [--quick] [--out FILE] [--threads N] [--backend auto|native|js|wasm] [--no-baseline]
 *                                  [--no-all-metrics] [--save-json FILE] [--render-json FILE]
 *                                  [--only smollm2] [--source DIR] [--no-profile]
 *   --quick             scaled-down shapes and a small checkpoint: a smoke run for CI (< 1 minute)
 *   --out FILE          where to write the report (default docs/performance.md)
 *   --no-baseline       skip the Python baseline (also skipped when SWAN_SKIP_PYTHON is set)
 *   --no-all-metrics    skip the end-to-end comparison run with --all-metrics (the default run always happens)
 *   --save-json FILE    also save the measurements; --render-json FILE re-renders them without measuring
 *                       (with --only smollm2: that section, from its own saved JSON)
 *   --only smollm2      measure the SmolLM2 section alone (a few minutes) and replace it in the report
 *   --source DIR        the SmolLM2 HF directory (default ../smollm2 beside the repo; skipped when absent)
 *   --no-profile        skip the SmolLM2 CPU-profile run
 * The full run needs the bench venv (scripts/setup-bench-venv.sh: torch from PyPI, several GB),
 * which it creates on first use; --quick uses it when present, else the mlx venv's numpy.
 *
 * Every measurement runs in its own child process (`--child KIND JSON`, see perf/measure.ts), so
 * peak RSS is per measurement and one section's memory is gone before the next starts. The parent
 * only generates checkpoints, spawns, and writes the report. The parts: perf/shapes.ts (what is
 * measured), perf/machine.ts (the machine and its load), perf/measure.ts (swan's children),
 * perf/baseline.ts (the Python baseline), perf/checkpoint.ts (layer subsets of the checkpoint),
 * perf/projection.ts (Qwen3-8B projection), perf/report.ts (the measurement JSON) and
 * perf/render.ts (the markdown, from that JSON alone).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

import type { BackendChoice } from '../src/kernels/select.js';
import { PACKAGE_ROOT } from '../src/python.js';
import { qwen3_0_6B, writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { baselinePython, runBaseline } from './perf/baseline.js';
import { dirBytes, layerSubset } from './perf/checkpoint.js';
import { loadavg, machineFacts, memAvailableBytes } from './perf/machine.js';
import { childE2e, childShapes, runChild, type E2eOutput, type ShapesOutput } from './perf/measure.js';
import { project } from './perf/projection.js';
import { render } from './perf/render.js';
import type { Report } from './perf/report.js';
import { measureSmolLM2, renderSmolLM2, replaceSmolSection, type SmolReport } from './perf/smollm2.js';
import { fitToMemory, FULL_SHAPES, QUICK_MODEL, QUICK_SHAPES, type ShapeSpec } from './perf/shapes.js';

interface Args {
  quick: boolean;
  out: string;
  threads?: number;
  backend: BackendChoice;
  baseline: boolean;
  saveJson?: string;
  renderJson?: string;
  noAllMetrics: boolean;
  only?: 'smollm2';
  source: string;
  profile: boolean;
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
  const only = get('--only');
  const backend = (get('--backend') ?? 'auto') as BackendChoice;
  if (!['auto', 'native', 'js', 'wasm'].includes(backend)) throw new Error(`--backend must be auto, native, js or wasm`);
  return {
    quick: argv.includes('--quick'),
    out: resolve(get('--out') ?? join(PACKAGE_ROOT, 'docs', 'performance.md')),
    threads: threads === undefined ? undefined : Number(threads),
    backend,
    baseline: !argv.includes('--no-baseline') && !process.env.SWAN_SKIP_PYTHON,
    saveJson: get('--save-json'),
    noAllMetrics: argv.includes('--no-all-metrics'),
    renderJson: get('--render-json'),
    only: only === undefined ? undefined : only === 'smollm2' ? 'smollm2' : (() => { throw new Error('--only takes smollm2'); })(),
    source: resolve(get('--source') ?? join(PACKAGE_ROOT, '..', 'smollm2')),
    profile: !argv.includes('--no-profile'),
  };
}

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

/** swan and the baseline, shape by shape, alternating so that each pair runs under similar load. */
function measureShapes(shapes: ShapeSpec[], opts: Args): { swan: ShapesOutput; baseline: Report['baseline'] } {
  const common = { threads: opts.threads, backend: opts.backend };
  const py = opts.baseline ? baselinePython(opts.quick) : null;
  let baseline: Report['baseline'] = { skipped: opts.baseline ? 'no Python found' : 'disabled (--no-baseline or SWAN_SKIP_PYTHON)' };
  let swan: ShapesOutput | undefined;
  // Quick mode batches the shapes into one process per side: start-up (torch import) dominates there.
  for (const batch of opts.quick ? [shapes] : shapes.map((s) => [s])) {
    const names = batch.map((s) => s.label).join(', ');
    log(`${names}: swan`);
    const one = runChild<ShapesOutput>('shapes', { shapes: batch, ...common });
    if (swan) swan.results.push(...one.results);
    else swan = one;
    if (py) {
      log(`${names}: Python baseline (${py})`);
      const b = runBaseline(py, batch);
      if ('skipped' in baseline) baseline = b;
      else baseline.shapes.push(...b.shapes);
    }
  }
  return { swan: swan!, baseline };
}

/** A generated checkpoint quantized end to end (defaults, then --all-metrics), and layer subsets of it for peak RSS. */
function measureEndToEnd(opts: Args, tmp: string): Pick<Report, 'e2e' | 'e2eAll' | 'rss'> {
  const common = { threads: opts.threads, backend: opts.backend };
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
  const e2e = runChild<E2eOutput>('e2e', { dir: full, out: join(tmp, 'out'), skipDecided: true, ...common });
  rmSync(join(tmp, 'out'), { recursive: true, force: true });
  log(`  ${e2e.wall.toFixed(1)} s, peak RSS ${e2e.maxRssMiB.toFixed(0)} MiB, ${e2e.fullMetricTensors} of ${e2e.linearTensors} linear tensors needed the full metrics`);
  let e2eAll: E2eOutput | null = null;
  if (!opts.noAllMetrics) {
    log('end to end with --all-metrics');
    e2eAll = runChild<E2eOutput>('e2e', { dir: full, out: join(tmp, 'out'), skipDecided: false, ...common });
    rmSync(join(tmp, 'out'), { recursive: true, force: true });
    log(`  ${e2eAll.wall.toFixed(1)} s, peak RSS ${e2eAll.maxRssMiB.toFixed(0)} MiB`);
  }

  const rss: (E2eOutput & { layers: number })[] = [];
  for (const layers of opts.quick ? [1] : [2, 8]) {
    const dir = join(tmp, `model-${layers}`);
    layerSubset(full, dir, layers);
    log(`${layers}-layer run`);
    rss.push({ ...runChild<E2eOutput>('e2e', { dir, out: join(tmp, `out-${layers}`), skipDecided: true, ...common }), layers });
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(tmp, `out-${layers}`), { recursive: true, force: true });
  }
  return { e2e: { ...e2e, label, genSeconds, layers: model.layers }, e2eAll, rss };
}

function measure(opts: Args): Report {
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const machine = machineFacts();
  const loadStart = loadavg();
  const fitted = fitToMemory(opts.quick ? QUICK_SHAPES : FULL_SHAPES, memAvailableBytes());
  for (const note of fitted.notes) log(note);
  const shapesStart = loadavg();
  const { swan, baseline } = measureShapes(fitted.shapes, opts);
  const shapesEnd = loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'swan-bench-'));
  try {
    const ends = measureEndToEnd(opts, tmp);
    const smollm2 = measureSmol(opts);
    const cpu1 = process.cpuUsage(cpu0);
    return {
      quick: opts.quick,
      date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
      machine,
      load: { start: loadStart, shapesStart, shapesEnd, end: loadavg() },
      shapes: fitted.shapes,
      swan,
      baseline,
      ...ends,
      projection: project(fitted.shapes, swan, ends.e2e),
      smollm2,
      benchSeconds: (performance.now() - started) / 1000,
      cpuSeconds: (cpu1.user + cpu1.system) / 1e6,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The SmolLM2 section, or why it is not measured (quick mode, no model directory). */
function measureSmol(opts: Args): SmolReport | { skipped: string } {
  if (opts.quick && !opts.only) return { skipped: 'quick mode' };
  if (!existsSync(join(opts.source, 'config.json'))) {
    if (opts.only) throw new Error(`${opts.source}: no SmolLM2 HF directory (build it with ../shared/fixtures/smollm2/make_smollm2.py, or pass --source DIR)`);
    return { skipped: `no SmolLM2 directory at ${basename(opts.source)} beside the repo (pass --source DIR)` };
  }
  const python = opts.baseline ? baselinePython(opts.quick) : null;
  return measureSmolLM2(opts.source, { threads: opts.threads, backend: opts.backend, python, profile: opts.profile });
}

function readReport(file: string): Report {
  const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<Report>;
  // Files saved before the machine and load were recorded as data have neither.
  if (typeof r.machine?.logicalCores !== 'number' || !r.load) throw new Error(`${file}: no machine or load records; measure again`);
  return r as Report;
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
  if (opts.only === 'smollm2') {
    const started = performance.now();
    // With --render-json: the section again from a saved `--only smollm2 --save-json` file.
    const saved = opts.renderJson ? (JSON.parse(readFileSync(opts.renderJson, 'utf8')) as { date: string; smollm2: SmolReport | { skipped: string } }) : undefined;
    const smol = saved?.smollm2 ?? measureSmol(opts);
    const date = saved?.date ?? new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    const doc = existsSync(opts.out) ? readFileSync(opts.out, 'utf8') : '# Performance\n';
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, replaceSmolSection(doc, renderSmolLM2(smol, date)));
    if (opts.saveJson && !saved) writeFileSync(opts.saveJson, JSON.stringify({ date, smollm2: smol }, null, 1) + '\n');
    log(`wrote the SmolLM2 section of ${opts.out} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return;
  }
  // --render-json re-renders a saved run: report wording changes need no new measurement.
  const report = opts.renderJson ? readReport(opts.renderJson) : measure(opts);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, render(report));
  if (opts.saveJson && !opts.renderJson) writeFileSync(opts.saveJson, JSON.stringify(report, null, 1) + '\n');
  log(`wrote ${opts.out}${opts.renderJson ? '' : ` in ${report.benchSeconds.toFixed(0)} s`}`);
}

main();
