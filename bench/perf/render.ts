/**
 * The report (docs/performance.md) from a run's measurement JSON: a pure function of it. Every
 * figure, ratio and met/missed verdict is computed from the JSON; the fixed text only says what
 * each table measures.
 */
import { renderSmolLM2 } from './smollm2.js';
import type { BaselineOutput } from './baseline.js';
import type { LoadAvg } from './machine.js';
import type { E2eOutput, ShapeResult } from './measure.js';
import { fullTensorSeconds, projectedTotal, type Report } from './report.js';
import { rsvdFlops, TAIL } from './shapes.js';

/** The goals the report checks. */
const GOAL_SECONDS = 300;
const GOAL_TIME = `${GOAL_SECONDS / 60} min`;
const GOAL_RATIO = 2;
const GOAL_RSS_MIB = 2048;
/** "Flat": the most layers' peak RSS within this factor of the fewest layers'. */
const FLAT_RSS = 1.1;
/** Other load (cores) at which a measurement counts as load-affected. */
const BUSY_CORES = 0.5;

type Lines = string[];

/** Fixed decimals, "n/a" for missing or non-finite values. */
const f = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
/** Seconds to about three significant digits. */
const fs3 = (x: number): string => (x < 0.1 ? x.toFixed(4) : x < 10 ? x.toFixed(3) : x.toFixed(1));
const mmss = (s: number): string => {
  const r = Math.round(s);
  return `${Math.floor(r / 60)} min ${r % 60} s`;
};

const la = (l: LoadAvg): string => (l ? l.map((x) => x.toFixed(2)).join(' ') : 'n/a');
const mark = (ok: boolean | null): string => (ok === null ? '–' : ok ? 'met' : '**missed**');
const sliceMark = (rows: number, measured: number): string => (measured !== rows ? ' ¹' : '');

function baselineOf(r: Report): BaselineOutput | null {
  return 'skipped' in r.baseline ? null : r.baseline;
}

/** Baseline seconds / swan seconds per tensor on a shape (all four metrics), or null without a baseline row. */
function ratio(r: Report, label: string): number | null {
  const b = baselineOf(r)?.shapes.find((x) => x.label === label);
  const s = r.swan.results.find((x) => x.label === label);
  return b && s ? fullTensorSeconds(b) / fullTensorSeconds(s) : null;
}

/**
 * Why the swan/baseline ratio of a shape is unreliable, or null: the two sides' other load differs by
 * more than half a core, or one side ran with half a core or more of other load (its multi-threaded
 * wall time then includes waiting for the CPU).
 */
function loadFlag(r: Report, label: string): string | null {
  const o = r.swan.results.find((x) => x.label === label)?.otherCores ?? null;
  const b = baselineOf(r)?.shapes.find((x) => x.label === label)?.other_cores ?? null;
  if (o === null || b === null) return null;
  if (Math.abs(o - b) > BUSY_CORES) return `other load swan ${f(o)} vs baseline ${f(b)} cores: uneven`;
  if (Math.max(o, b) >= BUSY_CORES) return `other load swan ${f(o)}, baseline ${f(b)} cores`;
  return null;
}

/** Every measurement's other load (cores), named. */
function otherLoads(r: Report): { what: string; cores: number }[] {
  const all: { what: string; cores: number | null }[] = [
    ...r.swan.results.flatMap((s) => [
      { what: `swan metrics ${s.label}`, cores: s.otherCores },
      { what: `swan quantize path ${s.label}`, cores: s.quant.otherCores },
    ]),
    ...(baselineOf(r)?.shapes ?? []).map((s) => ({ what: `baseline ${s.label}`, cores: s.other_cores })),
    { what: 'end to end, default', cores: r.e2e.otherCores },
    ...(r.e2eAll ? [{ what: 'end to end, --all-metrics', cores: r.e2eAll.otherCores }] : []),
    ...r.rss.map((x) => ({ what: `end to end, ${x.layers} layer${x.layers === 1 ? '' : 's'}`, cores: x.otherCores })),
  ];
  return all.filter((x): x is { what: string; cores: number } => x.cores !== null);
}

function machineSection(r: Report): Lines {
  const m = r.machine;
  const loads = otherLoads(r);
  const top = loads.reduce<{ what: string; cores: number } | null>((a, b) => (a && a.cores >= b.cores ? a : b), null);
  const busy = loads.filter((x) => x.cores >= BUSY_CORES).length;
  const avail = m.memoryAvailableBytes === null ? 'n/a' : f(m.memoryAvailableBytes / 2 ** 30, 1);
  return [
    '## Machine and load',
    '',
    '| | this run |',
    '|---|---|',
    `| CPU | ${m.cpuModel} |`,
    `| logical cores | ${m.logicalCores} |`,
    `| CPU features (of avx512f, avx2, amx_tile) | ${m.cpuFeatures === null ? 'n/a' : m.cpuFeatures.join(', ') || 'none'} |`,
    `| memory | ${f(m.memoryBytes / 2 ** 30, 1)} GiB, ${avail} GiB available at start |`,
    `| OS | ${m.os} |`,
    `| Node | ${m.node} |`,
    `| swan backend | ${r.swan.backend} |`,
    `| BLAS kernel set | ${r.swan.blas ? r.swan.blas.kernels || 'n/a' : 'none (no BLAS backend)'} |`,
    `| BLAS build | ${r.swan.blas?.config || 'n/a'} |`,
    ...Object.entries(m.unsetForMeasurement).map(
      ([name, value]) => `| ${name} in the bench's environment | ${value === null ? 'not set' : `${value} (removed for every measured process)`} |`,
    ),
    `| load average (1/5/15 min) at start | ${la(r.load.start)} |`,
    `| load average before → after the per-shape runs | ${la(r.load.shapesStart)} → ${la(r.load.shapesEnd)} |`,
    `| load average at end | ${la(r.load.end)} |`,
    `| highest other load in a measurement | ${top ? `${f(top.cores)} cores (${top.what})` : 'n/a'} |`,
    `| measurements with other load ≥ ${BUSY_CORES} cores | ${busy} of ${loads.length} |`,
    `| whole run | ${f(r.benchSeconds, 0)} s wall, including generating the matrices and checkpoints (not timed in the tables) |`,
    '',
    '"Other load" is the CPU time that processes other than the measured one used during a measurement, in cores (from /proc/stat).' +
      ' Every measured process, swan\'s and the baseline\'s, runs with the variables above removed from its environment, so OpenBLAS picks its kernels for the CPU.',
    '',
  ];
}

function shapeSection(r: Report): Lines {
  const L: Lines = [
    '## swan, per tensor shape (Qwen3-8B shapes)',
    '',
    '### All four metrics (`swan analyze`, `swan quantize --all-metrics`, and the work the reference does)',
    '',
    `Backend: **${r.swan.backend}**. Seconds per tensor, median of the repeats (${r.shapes.map((s) => s.repeats).join('/')}).` +
      ` Matrices are generated on the fly: w = z·exp(${TAIL}·z′)/√cols, float32, seeded.` +
      ' The svd time includes copying W into the' +
      ' backend\'s memory where it has its own (wasm); kurtosis, error proxy and the output-noise draws run on one thread, the GEMMs on all.' +
      ' With the default `swan quantize`, embed_tokens and lm_head are not scored (protected; `--score-protected` scores them).',
    '',
    '| shape | 8B tensors (count) | svd s | kurtosis s | output noise s | error proxy s | **metrics s/tensor** | rSVD GFLOP/s | W·Q GEMM GFLOP/s | threads | CPU/wall | other load (cores) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [i, s] of r.swan.results.entries()) {
    const spec = r.shapes[i]!;
    const flops = rsvdFlops(s.measuredRows, s.cols);
    const k = s.rows / s.measuredRows;
    L.push(`| ${s.label}${sliceMark(s.rows, s.measuredRows)} | ${spec.tensors} (${spec.count}) | ${fs3(s.seconds.svd * k)} | ${fs3(s.seconds.kurtosis * k)} | ` +
      `${fs3(s.seconds.output_sensitivity * k)} | ${fs3(s.seconds.error_proxy * k)} | **${fs3(fullTensorSeconds(s))}** | ` +
      `${flops ? f(flops / s.seconds.svd / 1e9, 1) : 'exact path'} | ${f(s.gemmGflops, 1)} | ${r.swan.threads} | ${f(s.cpu / s.total, 2)} | ${f(s.otherCores)} |`);
  }
  const sliced = r.swan.results.find((s) => s.measuredRows !== s.rows);
  L.push('',
    'rSVD GFLOP/s counts the flops of the route swan takes (bench/perf/shapes.ts rsvdFlops): on these shapes torch\'s own sequence, ' +
      '2·m·n·256·6 for the six big GEMMs plus the Cholesky-QR and final Gram work (2·rows·256² per pass: a half-GEMM Gram and a triangular solve; ' +
      '2·m·256² final Gram); matrices whose smaller side is below ~6·256 iterate in the space of their smaller Gram instead (src/metrics/svd.ts sketchRoute). ' +
      'Divided by the whole svd time. W·Q is one bare backend GEMM (m×n)·(n×256) on the same matrix.' +
      (sliced ? ` ¹ Measured on a ${sliced.measuredRows}-row slice (memory) and scaled by rows; every step is linear in the row count.` : ''),
    '',
    ...quantizePathSection(r.swan.results));
  return L;
}

function quantizePathSection(results: ShapeResult[]): Lines {
  const L: Lines = [
    '### The quantize path when kurtosis and the error proxy decide the bits (`swan quantize` default)',
    '',
    '`swan quantize` (thresholds strategy) computes kurtosis and the error proxy first and skips the SVD and the output-noise probe' +
      ' when no value of those two scores could change the bits. Per tensor: bf16→f32 decode twice (analysis read and write read; the file read' +
      ' itself is in the I/O rate below), the two cheap metrics, the bf16 cast in place, `quantizeAffine` (4-bit g64, metal rules) and the bf16' +
      ' encoding of scales and biases. Same matrices and repeats as above. "with full metrics" adds the svd and output-noise columns above.' +
      ` "candidates" is what \`swan analyze\` and \`--strategy budget\` add per tensor (${results[0]?.candidates.count ?? 'n/a'} affine formats on a row sample; "RTN + search" with` +
      ' `--rounding search`); the default `swan quantize` does not measure them.',
    '',
    '| shape | decode bf16→f32 s (×2) | kurtosis s | error proxy s | cast s | quantizeAffine 4b g64 s | pack s | **quantize path s/tensor** | with full metrics s/tensor | candidates s: RTN / RTN + search | other load (cores) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of results) {
    const k = s.rows / s.measuredRows;
    const q = s.quant;
    const withFull = (q.total + s.seconds.svd + s.seconds.output_sensitivity) * k;
    L.push(`| ${s.label}${sliceMark(s.rows, s.measuredRows)} | ${fs3(q.decode * k)} | ${fs3(q.kurtosis * k)} | ${fs3(q.errorProxy * k)} | ${fs3(q.cast * k)} | ` +
      `${fs3(q.quantize * k)} | ${fs3(q.pack * k)} | **${fs3(q.total * k)}** | ${fs3(withFull)} | ${fs3(s.candidates.rtnSeconds)} / ${fs3(s.candidates.searchSeconds)} | ${f(q.otherCores)} |`);
  }
  L.push('', 'With the defaults, embed_tokens and lm_head are copied as bf16, neither scored nor quantized; their row shows the cost if they were.', '');
  return L;
}

function baselineSection(r: Report): Lines {
  const L: Lines = [
    '## Python baseline (the reference\'s operations) vs swan',
    '',
    'Earlier commits against this code on one machine (the figures below are this run\'s only): docs/performance-history.md.',
    '',
  ];
  const b = baselineOf(r);
  if (!b) return [...L, `Skipped: ${(r.baseline as { skipped: string }).skipped}.`, ''];
  const rt = b.runtime;
  L.push(rt.impl === 'torch'
    ? `bench/py/baseline.py with torch ${rt.torch} (CPU, MKL ${rt.mkl ? 'yes' : 'no'}), ${rt.threads} threads, numpy ${rt.numpy}, Python ${rt.python}:` +
      ' `torch.svd_lowrank(W, q=256, niter=2)` (torch.linalg.svd when min dim ≤ 512), kurtosis with torch reductions,' +
      ' 32-probe output noise with a full m×n noise matrix and W+E, 4-bit g128 min-max RTN error proxy, as the reference analyzer does them.'
    : `bench/py/baseline.py **without torch: numpy ${rt.numpy}** (Python ${rt.python}, ${rt.threads} threads), the same algorithm as torch.svd_lowrank` +
      ' (Gaussian sketch, numpy.linalg.qr Householder QR, niter=2, SVD of the small B) and the same other three metrics.' +
    ' Same shapes and distribution as the swan rows, not the same values.',
  '',
  '| shape | baseline svd s | kurtosis s | output noise s | error proxy s | **baseline total s** | swan total s | **ratio baseline/swan** | svd ratio | baseline peak RSS MiB | other load (cores) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const pairs = b.shapes.flatMap((s) => {
    const sw = r.swan.results.find((x) => x.label === s.label);
    return sw ? [{ s, sw }] : [];
  });
  for (const { s, sw } of pairs) {
    const k = s.rows / s.measured_rows;
    const kw = sw.rows / sw.measuredRows;
    const bt = fullTensorSeconds(s), st = fullTensorSeconds(sw);
    L.push(`| ${s.label}${sliceMark(s.rows, s.measured_rows)} | ${fs3(s.seconds.svd * k)} | ${fs3(s.seconds.kurtosis * k)} | ${fs3(s.seconds.output_sensitivity * k)} | ` +
      `${fs3(s.seconds.error_proxy * k)} | **${fs3(bt)}** | ${fs3(st)} | **${f(bt / st)}×** | ${f((s.seconds.svd * k) / (sw.seconds.svd * kw))}× | ${f(s.max_rss_mb, 0)} | ${f(s.other_cores)} |`);
  }
  const bsl = b.shapes.find((s) => s.measured_rows !== s.rows);
  if (bsl) L.push('', `¹ Measured on a ${bsl.measured_rows}-row slice (memory) and scaled by rows.`);
  const flagged = b.shapes.map((s) => ({ s, why: loadFlag(r, s.label) })).filter((x) => x.why !== null);
  if (flagged.length) {
    L.push('', `**Load-affected ratios** (the two sides' other load differs by more than ${BUSY_CORES} cores, or one side had ${BUSY_CORES} cores or more):` +
      ` ${flagged.map((x) => `${x.s.label} (${x.why})`).join('; ')}.`);
  }
  L.push('', 'Raw metric values (both sides compute the same quantities on the same distribution):', '',
    '| shape | svd concentration swan / baseline | kurtosis swan / baseline | output δ swan / baseline | NRMSE swan / baseline |',
    '|---|---|---|---|---|');
  for (const { s, sw } of pairs) {
    const v = sw.values, w = s.values;
    L.push(`| ${s.label} | ${f(v.svd_concentration, 4)} / ${f(w.svd_concentration, 4)} | ${f(v.kurtosis, 3)} / ${f(w.kurtosis, 3)} | ` +
      `${f(v.output_delta, 4)} / ${f(w.output_delta, 4)} | ${f(v.error_nrmse, 4)} / ${f(w.error_nrmse, 4)} |`);
  }
  L.push('');
  return L;
}

const bitsText = (b: Record<string, number>): string => Object.entries(b).map(([k, v]) => `${v}× ${k === 'float' ? 'bf16' : `${k}-bit`}`).join(', ');

/** Every end-to-end run of the checkpoint and its layer subsets, fewest layers first. */
function rssRuns(r: Report): (E2eOutput & { layers: number })[] {
  return [...r.rss, r.e2e].sort((a, b) => a.layers - b.layers);
}

function endToEndSection(r: Report): Lines {
  const e = r.e2e;
  const L: Lines = [
    `## End to end: ${e.label}`,
    '',
    '`quantizeModel` with the CLI\'s defaults (= `swan quantize`: thresholds strategy, protected tensors unscored, `skipDecided` on):' +
      ' read, analyse, plan, quantize and write the MLX directory; and the same with `--all-metrics` (`skipDecided` off).' +
      ` Generated bf16 checkpoint (${f(e.bytesIn / 1e9, 2)} GB, generation ${f(e.genSeconds, 0)} s, not timed), in the page cache when the run starts.` +
      ' Each run in its own child process; peak RSS is that process\'s maxRSS.',
    '',
    '| run | wall s | analyse s | quantize+write s | CPU s | source MB/s | peak RSS MiB | linear tensors: full metrics / cheap only | tensors (quantized) | output MB | other load (cores) | loadavg before → after |',
    '|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|',
  ];
  for (const [name, x] of [['default', e], ['--all-metrics', r.e2eAll]] as const) {
    if (!x) continue;
    L.push(`| ${name} | ${f(x.wall, 1)} | ${f(x.analyzeSeconds, 1)} | ${f(x.writeSeconds, 1)} | ${f(x.cpu, 1)} | ${f(x.bytesIn / 1e6 / x.wall, 0)} | ${f(x.maxRssMiB, 0)} | ` +
      `${x.fullMetricTensors} / ${x.cheapMetricTensors} | ${x.tensors} (${x.quantized}) | ${f(x.bytesOut / 1e6, 0)} | ${f(x.otherCores)} | ${la(x.loadBefore)} → ${la(x.loadAfter)} |`);
  }
  L.push('',
    `Default run: ${e.fullMetricTensors} of the ${e.linearTensors} linear tensors needed the SVD and output metrics (f = ${f(e.fullMetricTensors / e.linearTensors, 3)}` +
      ', a property of the generated checkpoint\'s tails, not of a real model);' +
      ` their analysis took ${f(e.fullMetricSeconds, 1)} s in all, the other ${e.cheapMetricTensors} took ${f(e.cheapMetricSeconds, 1)} s (read and decode included);` +
      ` ${e.unscoredTensors} tensors (embedding, norms) were not scored. Plan: ${bitsText(e.bits)}.`);
  if (r.e2eAll) {
    const a = r.e2eAll;
    const same = a.bytesOut === e.bytesOut && JSON.stringify(a.bits) === JSON.stringify(e.bits);
    L.push(`With --all-metrics: ${a.fullMetricTensors} tensors scored with all four metrics; plan ${bitsText(a.bits)}; output ${same ? 'the same size and plan' : '**different** size or plan'}` +
      ` (byte identity is checked by test/cli.test.ts). Speed-up of the default over --all-metrics: ${f(a.wall / e.wall)}× wall, ${f(a.analyzeSeconds / e.analyzeSeconds)}× analysis.`);
  } else {
    L.push('The --all-metrics run was skipped (--no-all-metrics).');
  }
  const runs = rssRuns(r);
  const first = runs[0]!, last = runs[runs.length - 1]!;
  L.push('', '### Peak RSS against layer count', '',
    'Same model with fewer layers (tensors copied from the checkpoint above), each run in its own process, CLI defaults.', '',
    '| layers | source MB | wall s | peak RSS MiB |',
    '|---:|---:|---:|---:|',
    ...runs.map((x) => `| ${x.layers} | ${f(x.bytesIn / 1e6, 0)} | ${f(x.wall, 1)} | ${f(x.maxRssMiB, 0)} |`),
    '',
    `From ${first.layers} to ${last.layers} layers the source grows ${f(last.bytesIn / first.bytesIn, 1)}× and peak RSS ${f(last.maxRssMiB / first.maxRssMiB, 2)}×.` +
      ` Load per run (other processes' CPU, cores; loadavg before → after): ${r.rss.map((x) => `${x.layers} layer${x.layers === 1 ? '' : 's'}: ${f(x.otherCores)}; ${la(x.loadBefore)} → ${la(x.loadAfter)}`).join(' · ')}.`,
    '');
  return L;
}

function projectionSection(r: Report): Lines {
  const e = r.e2e, pr = r.projection;
  const L: Lines = ['## Projected Qwen3-8B analyse + quantize + write', ''];
  if (r.quick) L.push('**Quick mode: computed from the scaled-down shapes with the 8B counts; it only checks the arithmetic, it projects nothing.**', '');
  L.push(`Arithmetic on this run's measurements, no 8B checkpoint is quantized: the per-shape tables × the 8B counts (${pr.linearTensors} linear tensors;` +
      ' embed_tokens and lm_head are not read for analysis with the defaults) and the end-to-end run\'s rates: read + bf16→f32 at' +
      ` ${f(e.readGBs, 2)} GB/s (all tensors read again after the end-to-end run, page cache warm; a cold read adds the disk's time),` +
      ` quantize + write at the default run's ${f((e.writeSeconds / e.bytesIn) * 1e9, 2)} s per source GB (${f(e.bytesIn / 1e6 / e.writeSeconds, 0)} MB/s:` +
      ' read, decode, cast, quantize, encode and write of every tensor). Norms (1-D) are left out.',
    '',
    '| part | seconds |',
    '|---|---:|',
    `| read + bf16→f32 of the linear tensors for analysis (${f(pr.linearBytes / 1e9, 1)} GB) | ${f(pr.readSeconds, 0)} |`,
    `| kurtosis + error proxy, all ${pr.linearTensors} linear tensors | ${f(pr.cheapSeconds, 0)} |`,
    `| SVD + output noise, all ${pr.linearTensors} linear tensors (f = 1; the default pays f × this) | ${f(pr.spectralSeconds, 0)} |`,
    `| quantize + write, ${f(pr.bytes / 1e9, 1)} GB (end-to-end rate) | ${f(pr.writeSeconds, 0)} |`,
    `| (cross-check: decode + cast + quantizeAffine + pack of the linear tensors from the per-shape table, no disk) | (${f(pr.writeComputeSeconds, 0)}) |`,
    `| all four metrics of embed_tokens + lm_head (only with --score-protected) | ${f(pr.protectedMetricSeconds, 0)} |`,
    '',
    '**f, the fraction of linear tensors that needs the SVD and output metrics, is not measured for Qwen3-8B: 0.1 and 0.25 below are assumptions.**' +
      (pr.kurtosisBoundary === null
        ? ' With the default thresholds and an error-proxy score of 1, kurtosis decides the bits at every excess kurtosis up to 10.'
        : ` With the default thresholds and an error-proxy score of 1, a tensor needs them when its excess kurtosis is ${f(pr.kurtosisBoundary, 2)} or more` +
          ' (`decidedWithout`, bisected when measuring).') +
      ` The generated checkpoint above gave f = ${f(pr.synthF, 3)}; f = 1 is \`--all-metrics\`.`,
    '',
    `| scenario | f | **projected total** | ≤ ${GOAL_TIME}? |`,
    '|---|---:|---:|---|');
  const scen: [string, number, boolean][] = [
    ['`swan quantize` (defaults), f = 0.1', 0.1, false],
    ['`swan quantize` (defaults), f = 0.25', 0.25, false],
    [`\`swan quantize\` (defaults), f = ${f(pr.synthF, 3)} as on the generated checkpoint`, pr.synthF, false],
    ['`swan quantize --all-metrics`', 1, false],
    ['`swan quantize --all-metrics --score-protected` (the reference\'s analysis work)', 1, true],
  ];
  for (const [name, fr, sp] of scen) {
    const t = projectedTotal(pr, fr, sp);
    L.push(`| **total, ${name}** | ${f(fr, 3)} | **${f(t, 0)} (${mmss(t)})** | ${t <= GOAL_SECONDS ? 'yes' : '**no**'} |`);
  }
  const b = baselineOf(r);
  if (b) {
    const counted = r.shapes.flatMap((sh) => b.shapes.filter((x) => x.label === sh.label).map((x) => ({ count: sh.count, seconds: fullTensorSeconds(x) })));
    const bsum = counted.reduce((s, x) => s + x.count * x.seconds, 0);
    const n = counted.reduce((s, x) => s + x.count, 0);
    L.push(`| baseline (${b.runtime.impl}) metrics on all ${n} tensors, analysis only, for comparison | 1 | ${f(bsum, 0)} (${mmss(bsum)}) | |`);
  }
  const fixed = projectedTotal(pr, 0);
  const fMax = pr.spectralSeconds > 0 ? (GOAL_SECONDS - fixed) / pr.spectralSeconds : NaN;
  L.push('', fixed > GOAL_SECONDS
    ? `Even with f = 0 the projection is ${mmss(fixed)}: the fixed part (read, cheap metrics, quantize+write) alone exceeds ${GOAL_TIME}.`
    : `The default path stays within ${GOAL_TIME} while f ≤ ${f(Math.min(1, fMax), 2)} (fixed part ${mmss(fixed)} + f × ${f(pr.spectralSeconds, 0)} s).`,
  '');
  return L;
}

function goalsSection(r: Report): Lines {
  const pr = r.projection;
  const runs = rssRuns(r);
  const first = runs[0]!, last = runs[runs.length - 1]!;
  const rssMax = Math.max(r.e2e.maxRssMiB, r.e2eAll?.maxRssMiB ?? 0, ...r.rss.map((x) => x.maxRssMiB));
  const L: Lines = ['## Goals on this run', '', '| goal | this run | |', '|---|---|---|'];
  for (const [what, fr] of [['defaults, f = 0.1 (assumed)', 0.1], ['defaults, f = 0.25 (assumed)', 0.25], ['--all-metrics (f = 1)', 1]] as const) {
    const t = projectedTotal(pr, fr);
    L.push(`| Qwen3-8B analyse+quantize+write ≤ ${GOAL_TIME} on this machine (${r.machine.logicalCores} logical cores), ${what} | ${mmss(t)} projected | ${mark(t <= GOAL_SECONDS)} |`);
  }
  // 12288×4096 is the same work as 4096×12288 transposed: shown for comparison.
  for (const label of ['4096×4096', '4096×12288', '12288×4096']) {
    const x = ratio(r, label);
    if (x === null && label === '12288×4096') continue;
    const why = loadFlag(r, label);
    const load = x === null ? '' : why ? ` (load-affected: ${why})` : ' (both sides quiet)';
    const goal = label === '12288×4096' ? `(for comparison: ${label}, the same work transposed)` : `ratio ≥ ${GOAL_RATIO}× over the baseline on ${label} (all metrics)`;
    L.push(`| ${goal} | ${f(x)}×${load} | ${mark(x === null ? null : x >= GOAL_RATIO)} |`);
  }
  L.push(`| peak RSS ≤ ${GOAL_RSS_MIB} MiB on the end-to-end runs | ${f(rssMax, 0)} MiB | ${mark(rssMax <= GOAL_RSS_MIB)} |`,
    `| peak RSS flat (≤ ${FLAT_RSS}×) from ${first.layers} to ${last.layers} layers | ${f(first.maxRssMiB, 0)} → ${f(last.maxRssMiB, 0)} MiB | ${mark(last.maxRssMiB <= first.maxRssMiB * FLAT_RSS)} |`,
    '');
  return L;
}

export function render(r: Report): string {
  const L: Lines = [
    '# Performance',
    '',
    `Written by \`npm run bench${r.quick ? ' -- --quick' : ''}\` (bench/bench.ts) on ${r.date}.` +
      (r.quick ? ' **Quick mode: scaled-down shapes and a small checkpoint; a smoke run, not a measurement.**' : ''),
    '',
    ...machineSection(r),
    ...shapeSection(r),
    ...baselineSection(r),
    ...endToEndSection(r),
    ...(r.smollm2 ? renderSmolLM2(r.smollm2, r.date) : []),
    ...projectionSection(r),
    // The goals are stated for the Qwen3-8B shapes, which --quick does not measure.
    ...(r.quick ? [] : goalsSection(r)),
    '## Mixture of experts',
    '',
    'Peak RSS against MoE layer count and the time of a MoE layer against a dense layer of the same bytes: docs/performance-moe.md (bench/moe-bench.ts).',
    '',
  ];
  return L.join('\n') + '\n';
}
