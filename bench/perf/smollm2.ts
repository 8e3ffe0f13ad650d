/**
 * The real-model section of `npm run bench` (`--only smollm2` runs it alone): SmolLM2-135M-Instruct
 * (30 layers, 272 tensors; the HF directory built by ../shared/fixtures/smollm2/make_smollm2.py, at
 * ../smollm2 beside the repo unless --source DIR) quantized end to end — every metric on every tensor
 * (the reference analyzer's work), --jobs 1 for the same, the thresholds default, and the default
 * budget — next to the Python baseline doing the reference's operations on the same tensors
 * (bench/py/baseline.py model mode; the every-metric run and the baseline alternately, PAIRS times),
 * and a CPU profile of the every-metric run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { BackendChoice } from '../../src/kernels/select.js';
import { runModelBaseline, type ModelBaselineOutput } from './baseline.js';
import { loadavg, type LoadAvg } from './machine.js';
import { runChild, type E2eArgs, type E2eOutput } from './measure.js';
import { summariseProfiles, type ProfileSummary } from './profile.js';

export interface SmolRun {
  label: string;
  /** The CLI flags the run corresponds to. */
  flags: string;
  out: E2eOutput;
}

export interface SmolReport {
  source: string;
  /** runs[0] is the median (by wall) of the every-metric runs in `pairs`. */
  runs: SmolRun[];
  /** The baseline run of median wall time among `pairs`. */
  baseline: ModelBaselineOutput | { skipped: string };
  /** Wall seconds of the every-metric runs and of the baseline, measured alternately (swan, baseline, swan, …). */
  pairs?: { swan: number[]; baseline: number[] };
  profile: (ProfileSummary & { flags: string; wall: number }) | null;
  load: { start: LoadAvg; end: LoadAvg };
}

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

/** The runs, in the order measured; the every-metric ones first, each next to the baseline. */
const RUNS: { label: string; flags: string; args: Omit<E2eArgs, 'dir' | 'out' | 'threads' | 'backend'> }[] = [
  { label: 'every metric, every tensor (the reference\'s work)', flags: '--strategy thresholds --all-metrics --score-protected', args: { strategy: 'thresholds', skipDecided: false, scoreProtected: true } },
  { label: 'the same, one tensor at a time', flags: '--strategy thresholds --all-metrics --score-protected --jobs 1', args: { strategy: 'thresholds', skipDecided: false, scoreProtected: true, jobs: 1 } },
  { label: 'thresholds, skipping what cannot change a decision', flags: '--strategy thresholds', args: { strategy: 'thresholds', skipDecided: true } },
  { label: 'default (budget at the thresholds\' bytes, rounding search)', flags: '(none)', args: { strategy: 'budget', skipDecided: false } },
];

/** Alternating every-metric / baseline pairs measured (an odd number: the medians are runs). */
const PAIRS = 5;

/** The element of median key (the lower middle for an even count). */
function medianBy<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[(xs.length - 1) >> 1]!;
}

export function measureSmolLM2(source: string, opts: { threads?: number; backend: BackendChoice; python: string | null; profile: boolean }): SmolReport {
  if (!existsSync(join(source, 'config.json'))) throw new Error(`${source}: no SmolLM2 HF directory (build it with ../shared/fixtures/smollm2/make_smollm2.py, or pass --source DIR)`);
  const start = loadavg();
  const tmp = mkdtempSync(join(tmpdir(), 'swan-bench-smol-'));
  try {
    const common = { dir: source, out: join(tmp, 'out'), threads: opts.threads, backend: opts.backend };
    const runs: SmolRun[] = [];
    let baseline: SmolReport['baseline'] = { skipped: opts.python ? 'not run' : 'no Python found (or disabled)' };
    const measure = (r: (typeof RUNS)[number]): E2eOutput => {
      log(`SmolLM2: swan quantize ${r.flags}`);
      const out = runChild<E2eOutput>('e2e', { ...common, ...r.args });
      rmSync(common.out, { recursive: true, force: true });
      log(`  ${out.wall.toFixed(1)} s wall, ${out.cpu.toFixed(1)} s CPU, peak RSS ${out.maxRssMiB.toFixed(0)} MiB`);
      return out;
    };
    // The compared pair, PAIRS times alternately (swan, baseline, swan, …): the baseline's wall time
    // varies by ±10% here from run to run, so one pair can land on either side of a ratio.
    const swanRuns: E2eOutput[] = [];
    const baselines: ModelBaselineOutput[] = [];
    for (let k = 0; k < (opts.python ? PAIRS : 1); k++) {
      swanRuns.push(measure(RUNS[0]!));
      if (opts.python) {
        log(`SmolLM2: Python baseline (${opts.python})`);
        const b = runModelBaseline(opts.python, source);
        log(`  ${b.model.wall.toFixed(1)} s wall, ${b.model.cpu.toFixed(1)} s CPU`);
        baselines.push(b);
      }
    }
    runs.push({ label: RUNS[0]!.label, flags: RUNS[0]!.flags, out: medianBy(swanRuns, (o) => o.wall) });
    if (baselines.length) baseline = medianBy(baselines, (b) => b.model.wall);
    const pairs = baselines.length ? { swan: swanRuns.map((o) => o.wall), baseline: baselines.map((b) => b.model.wall) } : undefined;
    for (const r of RUNS.slice(1)) runs.push({ label: r.label, flags: r.flags, out: measure(r) });
    let profile: SmolReport['profile'] = null;
    if (opts.profile) {
      const dir = join(tmp, 'prof');
      log(`SmolLM2: profiling swan quantize ${RUNS[0]!.flags}`);
      const out = runChild<E2eOutput>('e2e', { ...common, ...RUNS[0]!.args }, ['--cpu-prof', '--cpu-prof-dir', dir]);
      rmSync(common.out, { recursive: true, force: true });
      profile = { ...summariseProfiles(dir, 15), flags: RUNS[0]!.flags, wall: out.wall };
    }
    return { source: 'SmolLM2-135M-Instruct (30 layers, hidden 576, 272 tensors, bf16)', runs, baseline, pairs, profile, load: { start, end: loadavg() } };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const f = (x: number | null | undefined, d = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const la = (l: LoadAvg): string => (l ? l.map((x) => x.toFixed(2)).join(' ') : 'n/a');

export const SMOL_BEGIN = '<!-- bench: smollm2 begin -->';
export const SMOL_END = '<!-- bench: smollm2 end -->';

/** The section's markdown, between markers so that `--only smollm2` can replace it in place. */
export function renderSmolLM2(r: SmolReport | { skipped: string }, date: string): string[] {
  const L: string[] = [SMOL_BEGIN, '## End to end on a real model: SmolLM2-135M', ''];
  if ('skipped' in r) return [...L, `Not measured: ${r.skipped}.`, '', SMOL_END, ''];
  L.push(
    `Measured ${date} by \`npm run bench\` (\`-- --only smollm2\` reruns this section alone). ${r.source}. Load average ` +
      `(1, 5, 15 min) at the start ${la(r.load.start)}, at the end ${la(r.load.end)}; "other cores" is the CPU the rest of the ` +
      'machine used during the run (cores busy on average): compare rows only where it is low.',
    '',
    '| run | `swan quantize` flags | backend | jobs | wall s | CPU s | CPU/wall | other cores | peak RSS MiB | load before → after |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const { label, flags, out } of r.runs) {
    L.push(`| ${label} | \`${flags}\` | ${out.backend} | ${out.jobs ?? 1} | ${f(out.wall)} | ${f(out.cpu)} | ${f(out.cpu / out.wall, 2)} | ${f(out.otherCores, 2)} | ${f(out.maxRssMiB, 0)} | ${la(out.loadBefore)} → ${la(out.loadAfter)} |`);
  }
  const b = r.baseline;
  if ('skipped' in b) {
    L.push('', `Python baseline: not run (${b.skipped}).`);
  } else {
    const m = b.model;
    const rt = b.runtime;
    L.push(
      `| Python baseline: the reference's four operations on the same tensors | ${rt.impl} ${rt.torch ?? rt.numpy}, ${rt.threads} threads | | | ${f(m.wall)} | ${f(m.cpu)} | ${f(m.cpu / m.wall, 2)} | ${f(m.other_cores, 2)} | ${f(m.max_rss_mb, 0)} | |`,
      '',
      `The baseline reads each tensor as float32 and, as the reference analyzer, skips 1-D and [1, N] tensors and those under 1024 weights ` +
        `(${m.skipped} here) and runs all four metrics on the other ${m.scored}, the embedding included: svd ${f(m.seconds.svd)} s ` +
        `(torch.linalg.svd when the smaller side is ≤ 512, else torch.svd_lowrank q=256 niter=2), kurtosis ${f(m.seconds.kurtosis)} s, ` +
        `32-probe output noise ${f(m.seconds.output_sensitivity)} s, 4-bit g128 RTN error proxy ${f(m.seconds.error_proxy)} s. ` +
        'Its wall time includes reading the checkpoint; it writes nothing (the reference converts in a second step).',
    );
    const all = r.runs[0]!.out;
    const p = r.pairs;
    const list = (xs: number[]): string => xs.map((x) => f(x, 2)).join(', ');
    if (p && p.swan.length > 1) {
      const ratios = p.swan.map((w, i) => p.baseline[i]! / w);
      L.push('', `The every-metric run and the baseline were measured ${p.swan.length} times alternately; the table shows the runs of median wall time. ` +
        `swan ${list(p.swan)} s; baseline ${list(p.baseline)} s; the pairs' ratios ${ratios.map((x) => f(x, 2)).join(', ')}.`);
    }
    L.push('', `**Every metric, every tensor: swan ${f(all.wall)} s against the baseline's ${f(m.wall)} s wall${p && p.swan.length > 1 ? ' (medians)' : ''}: ${f(m.wall / all.wall, 2)}× ` +
      `(CPU ${f(all.cpu)} s against ${f(m.cpu)} s), and swan writes the MLX model in that time too.**`);
  }
  if (r.profile) {
    const p = r.profile;
    L.push(
      '',
      `### Where the CPU goes (\`node --cpu-prof\`, \`swan quantize ${p.flags}\`)`,
      '',
      `Sampled self time summed over ${p.threads} threads (this thread and the analysis workers; waiting excluded): ${f(p.busySeconds)} s in a ${f(p.wall)} s run. ` +
        'The profiler samples wall-clock time, so a thread waiting for a core on a busy machine still counts: read the shares, not the seconds. ' +
        'The next regression shows as a function climbing this table.',
      '',
      '| function | file | self s | share |',
      '|---|---|---:|---:|',
      ...p.top.map((t) => `| \`${t.fn}\` | ${t.file || '(native)'} | ${f(t.seconds, 2)} | ${f(100 * t.share)}% |`),
    );
  }
  return [...L, '', SMOL_END, ''];
}

/** `doc` with its SmolLM2 section replaced by `section` (appended when it has none). */
export function replaceSmolSection(doc: string, section: string[]): string {
  const text = section.join('\n');
  const a = doc.indexOf(SMOL_BEGIN);
  const b = doc.indexOf(SMOL_END);
  if (a < 0 || b < a) return doc.replace(/\n*$/, '\n\n') + text;
  return doc.slice(0, a) + text.replace(/\n$/, '') + doc.slice(b + SMOL_END.length);
}
