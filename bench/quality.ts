/**
 * Quality at equal bytes: swan (SWAN thresholds; budget allocator with and without --rounding search)
 * against real `mlx_lm.convert` (uniform and mixed recipes) on stories260K, measured through real
 * mlx-lm (scripts/mlx_eval.py, protocol in docs/eval.md) on TinyStories-valid and WikiText-2 test.
 * Writes docs/quality.md.
 *
 *   npm run bench:quality [-- --quick] [-- --samples N] [-- --out FILE] [-- --keep DIR]
 *
 * --quick: 4 windows per text and output to a temp file unless --out is given (a smoke run).
 * --keep DIR: build the models in DIR and keep them. Every run saves its measurements as
 * DIR/bench-quality.json; --render FILE re-writes the report from such a file without measuring.
 * Nothing here is tuned on the evaluation texts: swan's plans are data-free; the texts are only read
 * by the evaluation at the end.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { evaluateModels, type EvalReport, type EvalResult } from '../src/eval/evaluate.js';
import { openHfModel } from '../src/io/hf-model.js';
import { PACKAGE_ROOT, venvPython } from '../src/python.js';

const args = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const QUICK = args.includes('--quick');
const SEQ_LEN = Number(opt('--seq-len') ?? 512);
const SAMPLES = Number(opt('--samples') ?? (QUICK ? 4 : 64));
const SEED = Number(opt('--seed') ?? 123);
const OUT = opt('--out') ?? (QUICK ? join(tmpdir(), 'swan-quality-quick.md') : join(PACKAGE_ROOT, 'docs', 'quality.md'));

const FIXTURES = join(PACKAGE_ROOT, '..', 'shared', 'fixtures');
const SOURCE = join(FIXTURES, 'stories260K');
const TEXTS = [
  { key: 'ts', name: 'TinyStories valid', file: join(FIXTURES, 'text', 'tinystories-valid.txt') },
  { key: 'wiki', name: 'WikiText-2 test', file: join(FIXTURES, 'text', 'wiki.test.raw') },
];
const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

interface Row {
  key: string;
  label: string;
  group: string;
  dir?: string;
  /** Why there is no model (flag not available, solver refused, …). */
  missing?: string;
  bytes?: number;
  params?: number;
  target?: number;
  mix?: string;
  seconds?: number;
  evals: Record<string, EvalResult | undefined>;
}

const t0 = Date.now();
const RENDER = opt('--render');
const work = opt('--keep') ?? mkdtempSync(join(tmpdir(), 'swan-quality-'));
mkdirSync(work, { recursive: true });
const log = (s: string) => process.stderr.write(`bench:quality: ${s}\n`);

/** Bytes = sum of tensor bytes (the index total_size where there is one); params as mlx-lm counts them. */
function sizeOf(dir: string): { bytes: number; params: number; mix: string } {
  const r = spawnSync(process.execPath, [CLI, 'inspect', dir, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`swan inspect ${dir}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { tensors: { quant: string; params: number; dtype: string }[]; total_bytes: number; total_params: number };
  const sum = openHfModel(dir).tensors.reduce((s, t) => s + t.byteLength, 0);
  if (sum !== j.total_bytes) throw new Error(`${dir}: tensor bytes disagree`);
  try {
    const idx = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    if (idx.metadata?.total_size !== sum) throw new Error(`${dir}: index total_size ${idx.metadata?.total_size} ≠ tensor bytes ${sum}`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const byQuant = new Map<string, number>();
  for (const t of j.tensors) {
    const k = t.quant === '-' ? 'float' : t.quant.replace('-bit g', 'b g');
    byQuant.set(k, (byQuant.get(k) ?? 0) + t.params);
  }
  const mix = [...byQuant.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${((100 * n) / j.total_params).toFixed(0)}%`)
    .join(', ');
  return { bytes: sum, params: j.total_params, mix };
}

function convert(key: string, label: string, extra: string[]): Row {
  const dir = join(work, key);
  rmSync(dir, { recursive: true, force: true });
  const t = Date.now();
  const r = spawnSync(venvPython(), ['-m', 'mlx_lm', 'convert', '--hf-path', SOURCE, '--mlx-path', dir, '-q', ...extra], { encoding: 'utf8' });
  if (r.status !== 0) return { key, label, group: key, missing: `mlx_lm.convert failed: ${(r.stderr ?? '').trim().split('\n').pop()}`, evals: {} };
  return { key, label, group: key, dir, seconds: (Date.now() - t) / 1000, ...sizeOf(dir), evals: {} };
}

function swanQuantize(key: string, label: string, group: string, extra: string[], target?: number): Row {
  const dir = join(work, key);
  const t = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'quantize', SOURCE, '-o', dir, '--overwrite', '--quiet', ...extra], { encoding: 'utf8' });
  if (r.status !== 0) {
    const err = (r.stderr ?? '').trim();
    const unknown = /unknown option '([^']+)'|error: option '([^']+)' argument '([^']+)' is invalid/.exec(err);
    const missing = unknown ? `not available yet (\`${unknown[1] ?? `${unknown[2]} ${unknown[3]}`}\` is not a swan option in this build)` : `swan failed: ${err.split('\n').pop()}`;
    return { key, label, group, missing, target, evals: {} };
  }
  return { key, label, group, dir, target, seconds: (Date.now() - t) / 1000, ...sizeOf(dir), evals: {} };
}

interface State {
  rows: Row[];
  reports: Record<string, EvalReport>;
  machine: string;
  loadAtStart: number;
  minutes: number;
  samples: number;
  seqLen: number;
  seed: number;
  quick: boolean;
  commit: string;
}

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function measure(): State {
  // 1. Models.
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${process.platform}/${process.arch}, Node ${process.version}`;
  const loadAtStart = loadavg()[0]!;
  const dirty = git(['status', '--porcelain', '--', 'src', 'scripts']).split('\n').filter(Boolean).length;
  const commit = `${git(['rev-parse', '--short', 'HEAD']) || 'unknown'}${dirty ? ` + ${dirty} uncommitted file(s) under src/ or scripts/` : ''}`;
  log(`work dir ${work}; ${SAMPLES} windows of ${SEQ_LEN} tokens per text, seed ${SEED}`);
  const source: Row = { key: 'source', label: 'source (bfloat16)', group: 'source', dir: SOURCE, ...sizeOf(SOURCE), evals: {} };
  const baselines: Row[] = [
    convert('u4g64', '`mlx_lm.convert` 4-bit g64', ['--q-bits', '4', '--q-group-size', '64']),
    convert('u4g32', '`mlx_lm.convert` 4-bit g32', ['--q-bits', '4', '--q-group-size', '32']),
    convert('u3g64', '`mlx_lm.convert` 3-bit g64', ['--q-bits', '3', '--q-group-size', '64']),
    convert('mixed_4_6', '`mlx_lm.convert` mixed_4_6', ['--quant-predicate', 'mixed_4_6']),
    convert('mixed_3_6', '`mlx_lm.convert` mixed_3_6', ['--quant-predicate', 'mixed_3_6']),
  ];
  log('mlx_lm.convert baselines written');
  let thresholds = swanQuantize('swan-thresholds', 'swan `--strategy thresholds` (SWAN as published)', 'thresholds', ['--strategy', 'thresholds']);
  // Before --strategy existed, thresholds was the only (default) strategy.
  if (thresholds.missing?.startsWith('not available')) thresholds = swanQuantize('swan-thresholds', 'swan thresholds (SWAN as published; default strategy)', 'thresholds', []);
  const rows: Row[] = [source, thresholds];
  for (const b of baselines) {
    rows.push(b);
    if (b.bytes === undefined) continue;
    const target = ['--strategy', 'budget', '--target-size', `${b.bytes}B`];
    rows.push(swanQuantize(`budget-${b.key}`, `swan budget @ ${b.key} bytes`, b.key, target, b.bytes));
    rows.push(swanQuantize(`budget-${b.key}-search`, `swan budget @ ${b.key} bytes + \`--rounding search\``, b.key, [...target, '--rounding', 'search'], b.bytes));
    // The same without the input-channel weighting (the default is --weighting norm): what it buys.
    rows.push(
      swanQuantize(`budget-${b.key}-search-none`, `swan budget @ ${b.key} bytes + \`--rounding search --weighting none\``, b.key, [...target, '--rounding', 'search', '--weighting', 'none'], b.bytes),
    );
  }
  log(`swan outputs written (${rows.filter((r) => r.missing).length} unavailable)`);

  // 2. Evaluation: every model for one text in one mlx-lm process, the source's log-probs shared.
  const reports: Record<string, EvalReport> = {};
  for (const t of TEXTS) {
    const models = rows.filter((r) => r.dir && r !== source);
    log(`evaluating ${models.length} models + source on ${t.name}`);
    const rep = evaluateModels(
      models.map((r) => r.dir!),
      { text: t.file, vs: SOURCE, seqLen: SEQ_LEN, samples: SAMPLES, seed: SEED, computeDtype: 'float32', progress: true },
    );
    reports[t.key] = rep;
    source.evals[t.key] = rep.source;
    models.forEach((r, i) => (r.evals[t.key] = rep.results[i]));
  }
  const minutes = (Date.now() - t0) / 60000;
  return { rows, reports, machine, loadAtStart, minutes, samples: SAMPLES, seqLen: SEQ_LEN, seed: SEED, quick: QUICK, commit };
}

// 3. Report.
const f4 = (x: number) => x.toFixed(4);
const signed = (x: number, d: number) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;

function render(st: State): { md: string; summary: string } {
  const { rows, reports } = st;
  const source = rows.find((r) => r.key === 'source')!;
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const baselines = rows.filter((r) => ['u4g64', 'u4g32', 'u3g64', 'mixed_4_6', 'mixed_3_6'].includes(r.key));
  const dppl = (r: Row, k: string): number | undefined => {
    const e = r.evals[k];
    const s = source.evals[k];
    return e && s ? e.ppl - s.ppl : undefined;
  };
  /** Paired standard error of log(PPL_a / PPL_b) over the shared windows. */
  const pairedSe = (a: Row, b: Row, k: string): number | undefined => {
    const x = a.evals[k]?.windowCe;
    const y = b.evals[k]?.windowCe;
    if (!x || !y || x.length !== y.length || x.length < 2) return undefined;
    const d = x.map((v, i) => v - y[i]!);
    const m = d.reduce((s, v) => s + v, 0) / d.length;
    return Math.sqrt(d.reduce((s, v) => s + (v - m) ** 2, 0) / (d.length - 1) / d.length);
  };
  const cells = (r: Row, k: string): string[] => {
    const e = r.evals[k];
    if (!e) return ['—', '—', '—'];
    const d = dppl(r, k)!;
    const rel = `${signed((100 * d) / source.evals[k]!.ppl, 1)}%`;
    return [f4(e.ppl), r === source ? '0' : `${signed(d, 4)} (${rel})`, r === source ? '0' : e.kl!.toFixed(5)];
  };
  const table = [
    `| model | bytes | vs target | true bpw | ${TEXTS.map((t) => `${t.name} PPL | ΔPPL | KL`).join(' | ')} |`,
    `|---|---:|---:|---:|${TEXTS.map(() => '---:|---:|---:').join('|')}|`,
  ];
  for (const r of rows) {
    if (r.missing) {
      table.push(`| ${r.label} | ${r.missing} | | | ${TEXTS.map(() => ' | | ').join(' | ')} |`);
      continue;
    }
    const vs = r.target ? `${signed((100 * (r.bytes! - r.target)) / r.target, 2)}%` : '';
    const bpw = ((8 * r.bytes!) / r.params!).toFixed(3);
    table.push(`| ${r.label} | ${r.bytes!.toLocaleString('en-US')} | ${vs} | ${bpw} | ${TEXTS.map((t) => cells(r, t.key).join(' | ')).join(' | ')} |`);
  }

  const mixTable = ['| model | share of parameters per format |', '|---|---|'];
  for (const r of rows) if (!r.missing) mixTable.push(`| ${r.label} | ${r.mix} |`);

  // Headline checks, each with the paired error of the comparison it rests on.
  const checks: string[] = [];
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '**not measured**' : ok ? '**yes**' : '**no**');
  for (const variant of ['', '-search']) {
    const name = variant ? 'budget + rounding search' : 'budget (RTN)';
    const u = byKey.get('u4g64')!;
    const b = byKey.get(`budget-u4g64${variant}`);
    const per = TEXTS.map((t) => {
      const du = dppl(u, t.key);
      const db = b ? dppl(b, t.key) : undefined;
      if (du === undefined || db === undefined) return { ok: undefined, s: `${t.name}: not measured${b?.missing ? ` (${b.missing})` : ''}` };
      return { ok: db <= du / 2, s: `${t.name}: ΔPPL ${signed(db, 4)} vs uniform ${signed(du, 4)} (ratio ${(db / du).toFixed(2)})` };
    });
    const ok = per.some((p) => p.ok === undefined) ? undefined : per.every((p) => p.ok);
    checks.push(`- At the bytes of uniform 4-bit g64, swan ${name} ΔPPL ≤ ½ of uniform's on both texts: ${verdict(ok)} — ${per.map((p) => p.s).join('; ')}.`);
  }
  for (const variant of ['', '-search']) {
    const name = variant ? 'budget + rounding search' : 'budget (RTN)';
    const m = byKey.get('mixed_4_6')!;
    const b = byKey.get(`budget-mixed_4_6${variant}`);
    const per = TEXTS.map((t) => {
      const pm = m.evals[t.key]?.ppl;
      const pb = b?.evals[t.key]?.ppl;
      if (pm === undefined || pb === undefined || !b) return { ok: undefined, s: `${t.name}: not measured${b?.missing ? ` (${b.missing})` : ''}` };
      const se = pairedSe(b, m, t.key);
      return { ok: pb < pm, s: `${t.name}: PPL ${f4(pb)} vs mixed_4_6 ${f4(pm)} (${signed(100 * Math.log(pb / pm), 1)}%${se !== undefined ? ` ± ${(100 * se).toFixed(1)}% paired` : ''})` };
    });
    const ok = per.some((p) => p.ok === undefined) ? undefined : per.every((p) => p.ok);
    checks.push(`- At the bytes of mixed_4_6, swan ${name} has lower PPL than mixed_4_6 on both texts: ${verdict(ok)} — ${per.map((p) => p.s).join('; ')}.`);
  }

  // Not a headline check, but the fidelity measure that does not wobble out of domain: KL.
  for (const variant of ['', '-search']) {
    const name = variant ? 'budget + rounding search' : 'budget (RTN)';
    const per = baselines.map((b) => {
      const r = byKey.get(`budget-${b.key}${variant}`);
      const wins = TEXTS.filter((t) => r?.evals[t.key]?.kl !== undefined && b.evals[t.key]?.kl !== undefined && r.evals[t.key]!.kl! < b.evals[t.key]!.kl!).length;
      const measured = TEXTS.every((t) => r?.evals[t.key]?.kl !== undefined && b.evals[t.key]?.kl !== undefined);
      return { key: b.key, measured, both: measured && wins === TEXTS.length };
    });
    const measured = per.filter((p) => p.measured);
    checks.push(
      `- (also) swan ${name} has lower KL than the mlx_lm output of the same bytes on both texts at ${measured.filter((p) => p.both).length} of ${measured.length} sizes` +
        (measured.length ? ` (${measured.map((p) => `${p.key} ${p.both ? 'yes' : 'no'}`).join(', ')}).` : '.'),
    );
  }

  // Which part bought how much: mlx_lm → budget (allocation) → budget + search (rounding).
  const split = [
    '| size of | text | mlx_lm ΔPPL / KL | budget ΔPPL / KL | budget + search ΔPPL / KL | allocation bought ΔPPL / KL | rounding bought ΔPPL / KL | norm weighting bought (search) ΔPPL / KL |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const b of baselines) {
    const a = byKey.get(`budget-${b.key}`);
    const s = byKey.get(`budget-${b.key}-search`);
    const n = byKey.get(`budget-${b.key}-search-none`);
    for (const t of TEXTS) {
      const pair = (r: Row | undefined) => (r && dppl(r, t.key) !== undefined ? { d: dppl(r, t.key)!, kl: r.evals[t.key]!.kl! } : undefined);
      const pu = pair(b);
      const pa = pair(a);
      const ps = pair(s);
      const pn = pair(n);
      const fmt = (p: { d: number; kl: number } | undefined) => (p ? `${signed(p.d, 4)} / ${p.kl.toFixed(4)}` : '—');
      const diff = (x: typeof pu, y: typeof pu) => (x && y ? `${signed(y.d - x.d, 4)} / ${signed(y.kl - x.kl, 4)}` : '—');
      split.push(`| ${b.key} | ${t.name} | ${fmt(pu)} | ${fmt(pa)} | ${fmt(ps)} | ${diff(pu, pa)} | ${diff(pa, ps)} | ${diff(pn, ps)} |`);
    }
  }

  const p0 = reports[TEXTS[0]!.key]!.protocol;
  const windowsLine = TEXTS.map((t) => {
    const p = reports[t.key]!.protocol;
    const se = source.evals[t.key]!;
    return `${t.name} (\`${basename(t.file)}\`): ${p.windowsUsed} of ${p.windowsAvailable} windows (${p.textTokens.toLocaleString('en-US')} tokens in the text); source PPL ${f4(se.ppl)} ± ${f4(se.pplStderr)} per token, ± ${f4(se.pplStderrWindows ?? NaN)} between windows`;
  });
  const md = `# Quality at equal bytes: swan vs mlx_lm.convert on stories260K

Written by \`npm run bench:quality\` (bench/quality.ts)${st.quick ? ' in **--quick** mode (a smoke run, not the reference numbers)' : ''}. Do not edit by hand.
Measured at commit ${st.commit}.

- Model: \`../shared/fixtures/stories260K\` (Karpathy's stories260K as an HF Llama directory, bfloat16, tied
  embeddings; 5 layers, dim 64, hidden 172 — \`down_proj\`'s input dim 172 is not divisible by any group
  size, so every tool keeps it in bfloat16, which is why even "4-bit" lands near 7 bits per weight).
- Baselines: real \`mlx_lm.convert\` (mlx-lm ${p0.mlxLm}, MLX ${p0.mlx}, CPU rounding rules on this Linux
  machine). swan outputs use swan's defaults (Metal rounding rules, fixed seed); all load in mlx-lm
  unchanged.
- swan budget targets the exact byte size of the mlx_lm output of its group: \`--target-size <bytes>B\`;
  "vs target" is where the result landed.
- **Bytes** are the sum of tensor bytes (weights, scales, biases and float tensors), which is the
  index \`total_size\` (for the source, the sum of its safetensors tensor sizes); file headers and
  the tokenizer are not counted. **True bpw** = 8 · bytes / parameters, parameters counted as mlx-lm's
  \`compute_bits_per_weight\` does (the index's \`total_parameters\`).
- Nothing is tuned on the evaluation texts: swan's plans are data-free (weights only); the texts are
  read only by the evaluation at the end.

## Evaluation protocol

\`swan eval\` / scripts/mlx_eval.py through real mlx-lm (docs/eval.md): the whole text is tokenized once with
the model's tokenizer (BOS first, no EOS), cut into non-overlapping ${st.seqLen}-token windows (tail dropped);
${st.samples} windows per text are drawn with \`numpy.random.default_rng(${st.seed})\` (the same windows for every
model); the first token of each window is context only. PPL = exp(mean cross-entropy over the
${(st.samples * (st.seqLen - 1)).toLocaleString('en-US')} scored tokens). ΔPPL = PPL − source PPL on the same windows. KL = mean over
those tokens of KL(P_source ‖ P_model) in nats. Compute dtype float32 (float params and scales cast to
float32 after loading: the dequantized weights are unchanged, bf16 activation rounding is removed).

${windowsLine.map((l) => `- ${l}`).join('\n')}

Comparisons between rows are paired (same windows) and far more precise than each PPL's ±; the
headline checks give the paired standard error of the log-PPL ratio they rest on. stories260K is a
TinyStories model: on WikiText-2 (PPL ≈ 120) it is far out of domain and PPL moves erratically with
small weight changes, so there KL is the better measure of how faithful a quantization is.

Machine: ${st.machine}; shared with other work (1-min load average ${st.loadAtStart.toFixed(1)} at start).
Bench wall time ${st.minutes.toFixed(1)} min.

## Results

${table.join('\n')}

## Headline checks

${checks.join('\n')}

How the budget allocation and \`--rounding search\` work, and what was tried: [allocation.md](allocation.md).

## Which part bought how much

At each mlx_lm size: ΔPPL / KL of the mlx_lm output, of swan budget with MLX round-to-nearest, and with
\`--rounding search\`. "allocation bought" = budget − mlx_lm, "rounding bought" = budget + search −
budget, "norm weighting bought" = budget + search (default \`--weighting norm\`) − the same with
\`--weighting none\` (negative is better). The weighting changes only what the search minimises (docs/allocation.md §6): the RTN budget row does not depend on it.

${split.join('\n')}

## Allocation of each model

${mixTable.join('\n')}
`;
  return { md, summary: `${table.join('\n')}\n\n${checks.join('\n')}` };
}

const state: State = RENDER ? (JSON.parse(readFileSync(RENDER, 'utf8')) as State) : measure();
if (!RENDER) {
  writeFileSync(join(work, 'bench-quality.json'), JSON.stringify(state));
  log(`measurements saved to ${join(work, 'bench-quality.json')}`);
}
const { md, summary } = render(state);
mkdirSync(join(OUT, '..'), { recursive: true });
writeFileSync(OUT, md);
process.stdout.write(`${summary}\n\nwrote ${OUT} (${state.minutes.toFixed(1)} min of measuring)\n`);
if (!opt('--keep')) rmSync(work, { recursive: true, force: true });
