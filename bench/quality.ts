/**
 * Quality at equal bytes: swan (SWAN thresholds; swan's default; the size-targeted budget with its
 * default rounding, with RTN, and with an importance matrix from the model's own samples) against real `mlx_lm.convert` (uniform and
 * mixed recipes), measured through real mlx-lm (scripts/mlx_eval.py, protocol in docs/eval.md) on
 * TinyStories valid and WikiText-2 test. Writes docs/quality.md (SmolLM2) or docs/quality-stories260K.md.
 *
 *   npm run bench:quality [-- --model smollm2|stories260K] [-- --source DIR] [-- --rows KEY,KEY,…]
 *       [-- --samples N] [-- --seq-len N] [-- --out FILE] [-- --cache DIR] [-- --quick] [-- --render FILE]
 *       [-- --self-tokens N]
 *
 * --model: smollm2 (default; the HF directory built by ../shared/fixtures/smollm2/make_smollm2.py,
 *   looked for at ../smollm2 next to the repo unless --source DIR) or stories260K (fast, tiny).
 * --rows: evaluate only these rows (keys as printed by --list-rows; a trailing * matches a prefix).
 *   Models other rows' targets need (the mlx_lm outputs whose bytes swan targets) are still built.
 * --cache DIR (default .bench-cache/quality/MODEL in the repo): mlx_lm.convert outputs are kept and
 *   reused; every evaluation is stored under a fingerprint of the model's files and the protocol, so a
 *   model whose bytes did not change is not evaluated again. swan outputs are rebuilt on every run.
 *   The rendered table holds every row that has an evaluation in the cache.
 * --reuse-swan: reuse swan outputs already in the cache (default: rebuilt, as swan's code may have changed).
 * --quick: 4 windows per text and output to a temp file unless --out is given (a smoke run).
 * --render FILE: re-write the report from a saved DIR/bench-quality.json without measuring.
 * --self-tokens N (default 8192): the `--imatrix` rows' importance matrix is `swan imatrix SOURCE
 *   --self N` (the model's own samples, seed 0), made once per source and N and kept in the cache.
 * Nothing here is tuned on the evaluation texts: swan's plans are data-free or self-calibrated on the
 * model's own samples; the texts are only read by the evaluation at the end.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { evaluateModels, type EvalProtocol, type EvalResult } from '../src/eval/evaluate.js';
import { openHfModel } from '../src/io/hf-model.js';
import { PACKAGE_ROOT, venvPython } from '../src/python.js';

const args = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const MODEL = (opt('--model') ?? 'smollm2') as 'smollm2' | 'stories260K';
if (MODEL !== 'smollm2' && MODEL !== 'stories260K') throw new Error(`--model must be smollm2 or stories260K (got ${MODEL})`);
const QUICK = args.includes('--quick');
const SEQ_LEN = Number(opt('--seq-len') ?? 512);
const SAMPLES = Number(opt('--samples') ?? (QUICK ? 4 : 64));
const SEED = Number(opt('--seed') ?? 123);
const DOC = MODEL === 'smollm2' ? 'quality.md' : 'quality-stories260K.md';
const OUT = opt('--out') ?? (QUICK ? join(tmpdir(), `swan-quality-quick-${MODEL}.md`) : join(PACKAGE_ROOT, 'docs', DOC));
const ROWS = opt('--rows')?.split(',').filter(Boolean);
/** Reuse swan outputs already in the cache instead of rebuilding them (when only the evaluation is wanted). */
const REUSE = args.includes('--reuse-swan');
/**
 * Tokens the model samples itself for the `--imatrix` rows (`swan imatrix --self N`): 8192 = 16
 * sequences of up to 512 tokens, one batch of the worker when no sequence ends early. E[x_j²] per
 * channel is a mean over every token, so a few thousand tokens fix it well for a 576/1536-wide model
 * (allocation.md §8 has what N bought); more costs generation time linearly.
 */
const SELF_TOKENS = Number(opt('--self-tokens') ?? 8192);
const SELF_SEED = 0;

const FIXTURES = join(PACKAGE_ROOT, '..', 'shared', 'fixtures');
const SOURCE = resolve(opt('--source') ?? (MODEL === 'smollm2' ? join(PACKAGE_ROOT, '..', 'smollm2') : join(FIXTURES, 'stories260K')));
const TEXTS = [
  { key: 'ts', name: 'TinyStories valid', file: join(FIXTURES, 'text', 'tinystories-valid.txt') },
  { key: 'wiki', name: 'WikiText-2 test', file: join(FIXTURES, 'text', 'wiki.test.raw') },
];
const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');

const MODEL_NOTES: Record<typeof MODEL, string> = {
  smollm2: `- Model: SmolLM2-135M-Instruct (HuggingFace Llama, 30 layers, hidden 576, MLP 1536, GQA 9/3, vocab
  49,152, tied embeddings, Apache-2.0), built by \`../shared/fixtures/smollm2/make_smollm2.py\` from the
  only copy reachable here, llama.cpp's Q4_1 GGUF. **Its weights are dequantized llama.cpp codes**: every
  linear weight is Q4_1 (4-bit, blocks of 32 inputs) and the tied embedding Q8_0, rounded to bfloat16. MLX
  4-bit **g32** nearly reproduces the linear layers, so every g32 row flatters its quantizer; g64, 3-bit and
  mixed rows requantize onto a genuinely different grid.`,
  stories260K: `- Model: \`../shared/fixtures/stories260K\` (Karpathy's stories260K as an HF Llama directory, bfloat16, tied
  embeddings; 5 layers, dim 64, hidden 172 — \`down_proj\`'s input dim 172 is not divisible by any group
  size, so every tool keeps it in bfloat16, which is why even "4-bit" lands near 7 bits per weight).`,
};

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
const cache = resolve(opt('--cache') ?? (QUICK ? mkdtempSync(join(tmpdir(), 'swan-quality-')) : join(PACKAGE_ROOT, '.bench-cache', 'quality', MODEL)));
mkdirSync(cache, { recursive: true });
const log = (s: string) => process.stderr.write(`bench:quality: ${s}\n`);

/** Whether a row is evaluated in this run. */
function selected(key: string): boolean {
  if (!ROWS) return true;
  return ROWS.some((r) => (r.endsWith('*') ? key.startsWith(r.slice(0, -1)) : key === r));
}

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

/** mlx_lm.convert output, reused from the cache when it was written with the same arguments. */
function convert(key: string, label: string, extra: string[]): Row {
  const dir = join(cache, key);
  const stamp = join(cache, `${key}.args.json`);
  const want = JSON.stringify({ source: SOURCE, extra });
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want && existsSync(join(dir, 'config.json'))) {
    return { key, label, group: key, dir, ...sizeOf(dir), evals: {} };
  }
  rmSync(dir, { recursive: true, force: true });
  const t = Date.now();
  const r = spawnSync(venvPython(), ['-m', 'mlx_lm', 'convert', '--hf-path', SOURCE, '--mlx-path', dir, '-q', ...extra], { encoding: 'utf8' });
  if (r.status !== 0) return { key, label, group: key, missing: `mlx_lm.convert failed: ${(r.stderr ?? '').trim().split('\n').pop()}`, evals: {} };
  writeFileSync(stamp, want);
  return { key, label, group: key, dir, seconds: (Date.now() - t) / 1000, ...sizeOf(dir), evals: {} };
}

/**
 * `swan analyze` of the source, once per source and measuring code (the plans of the thresholds and
 * size-targeted rows are made from it with --manifest: the same plan as a fresh analysis, tested in
 * test/budget-plan.test.ts, without re-measuring SmolLM2 for every row).
 */
function analysis(): string {
  const h = createHash('sha256').update(fingerprint(SOURCE));
  for (const d of ['measure', 'metrics', 'mlx', 'kernels', 'arch']) {
    const dir = join(PACKAGE_ROOT, 'dist', 'src', d);
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.js')) h.update(f).update(readFileSync(join(dir, f)));
  }
  const file = join(cache, `analysis-${h.digest('hex').slice(0, 16)}.json`);
  if (!existsSync(file)) {
    log(`swan analyze ${SOURCE} (once per source and measuring code)`);
    const r = spawnSync(process.execPath, [CLI, 'analyze', SOURCE, '-o', file, '-q'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`swan analyze failed: ${(r.stderr ?? '').trim().split('\n').pop()}`);
  }
  return file;
}

function swanQuantize(key: string, label: string, group: string, extra: string[], target?: number, fromAnalysis = true): Row {
  const dir = join(cache, key);
  if (REUSE && existsSync(join(dir, 'config.json'))) return { key, label, group, dir, target, ...sizeOf(dir), evals: {} };
  const t = Date.now();
  const manifest = fromAnalysis ? ['--manifest', analysis()] : [];
  const r = spawnSync(process.execPath, [CLI, 'quantize', SOURCE, '-o', dir, '--overwrite', '--quiet', ...manifest, ...extra], { encoding: 'utf8' });
  if (r.status !== 0) {
    const err = (r.stderr ?? '').trim();
    const unknown = /unknown option '([^']+)'|error: option '([^']+)' argument '([^']+)' is invalid/.exec(err);
    const missing = unknown ? `not available yet (\`${unknown[1] ?? `${unknown[2]} ${unknown[3]}`}\` is not a swan option in this build)` : `swan failed: ${err.split('\n').pop()}`;
    return { key, label, group, missing, target, evals: {} };
  }
  return { key, label, group, dir, target, seconds: (Date.now() - t) / 1000, ...sizeOf(dir), evals: {} };
}

/** How the `--imatrix` rows' importance matrix was made (for the report). */
interface ImatrixMade {
  command: string;
  seed: number;
  tokens: number;
  seconds: number;
  commit: string;
}

/**
 * `swan imatrix SOURCE --self N` (the model's own samples; no text is read), once per source, N,
 * seed and worker script; kept in the cache with how it was made.
 */
function selfImatrix(commit: string): { file: string; made: ImatrixMade } {
  const h = createHash('sha256').update(fingerprint(SOURCE)).update(readFileSync(join(PACKAGE_ROOT, 'scripts', 'mlx_imatrix.py')));
  const file = join(cache, `imatrix-self${SELF_TOKENS}-seed${SELF_SEED}-${h.digest('hex').slice(0, 12)}.json`);
  const stamp = `${file}.made.json`;
  if (existsSync(file) && existsSync(stamp)) return { file, made: JSON.parse(readFileSync(stamp, 'utf8')) as ImatrixMade };
  const command = `swan imatrix SOURCE -o imatrix.json --self ${SELF_TOKENS} --seed ${SELF_SEED} --covariance`;
  log(`${command} (once per source and N)`);
  const t = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'imatrix', SOURCE, '-o', file, '--self', String(SELF_TOKENS), '--seed', String(SELF_SEED), '--covariance', '--overwrite'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`swan imatrix failed: ${(r.stderr ?? '').trim().split('\n').pop()}`);
  const tokens = (JSON.parse(readFileSync(file, 'utf8')) as { tokens: number }).tokens;
  const made: ImatrixMade = { command, seed: SELF_SEED, tokens, seconds: (Date.now() - t) / 1000, commit };
  writeFileSync(stamp, JSON.stringify(made));
  return { file, made };
}

/** A model's identity for the evaluation cache: its config and weight files' bytes. */
function fingerprint(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) {
    if (f === 'config.json' || f.endsWith('.safetensors')) h.update(f + '\0').update(readFileSync(join(dir, f)));
  }
  return h.digest('hex').slice(0, 32);
}

interface EvalCache {
  [key: string]: { source: EvalResult; result: EvalResult; protocol: EvalProtocol };
}
const EVALS_FILE = join(cache, 'evals.json');
const evalCache: EvalCache = existsSync(EVALS_FILE) ? (JSON.parse(readFileSync(EVALS_FILE, 'utf8')) as EvalCache) : {};
const evalKey = (textFile: string, fp: string, srcFp: string) => `${basename(textFile)}|${SEQ_LEN}|${SAMPLES}|${SEED}|float32|${srcFp}|${fp}`;

// 3. (state saved for --render)
interface State {
  model: string;
  rows: Row[];
  protocols: Record<string, EvalProtocol>;
  machine: string;
  loadAtStart: number;
  minutes: number;
  samples: number;
  seqLen: number;
  seed: number;
  quick: boolean;
  /** Commit each row's model was built at (rows from earlier runs keep theirs). */
  commits: Record<string, string>;
  /** The `--imatrix` rows' importance matrix, when this run or an earlier one made it. */
  imatrix?: ImatrixMade;
}

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

const BASELINES: [string, string, string[]][] = [
  ['u4g64', '`mlx_lm.convert` 4-bit g64', ['--q-bits', '4', '--q-group-size', '64']],
  ['u4g32', '`mlx_lm.convert` 4-bit g32', ['--q-bits', '4', '--q-group-size', '32']],
  ['u3g64', '`mlx_lm.convert` 3-bit g64', ['--q-bits', '3', '--q-group-size', '64']],
  ['mixed_4_6', '`mlx_lm.convert` mixed_4_6', ['--quant-predicate', 'mixed_4_6']],
  ['mixed_3_6', '`mlx_lm.convert` mixed_3_6', ['--quant-predicate', 'mixed_3_6']],
];
/**
 * swan's size-targeted variants: its defaults (rounding search, DEFAULTS.budgetRounding, so an
 * explicit `--rounding search` row would be the same model), RTN, and self-calibrated with an
 * importance matrix of the model's own samples made with `--covariance` (`imatrix`: the same
 * data-free plan; by default rounded by GPTQ under the covariances, and with `--rounding search`
 * under the diagonal only; at the sizes in IMATRIX_SIZES).
 */
interface Variant {
  suffix: string;
  label: string;
  extra: string[];
  imatrix?: boolean;
}
const VARIANTS: Variant[] = [
  { suffix: '', label: '`--target-size` (defaults)', extra: [] },
  { suffix: '-rtn', label: '`--target-size --rounding rtn`', extra: ['--rounding', 'rtn'] },
  { suffix: '-imatrix', label: '`--target-size --imatrix` (self-calibrated: GPTQ)', extra: [], imatrix: true },
  { suffix: '-imatrix-search', label: '`--target-size --imatrix --rounding search` (self-calibrated, diagonal only)', extra: ['--rounding', 'search'], imatrix: true },
];
const IMATRIX_SIZES = new Set(['u4g64', 'mixed_4_6', 'mixed_3_6']);
const variantsAt = (size: string) => VARIANTS.filter((v) => !v.imatrix || IMATRIX_SIZES.has(size));

/** Every row key, in table order (for --rows and --list-rows). */
function rowKeys(): string[] {
  const keys = ['source', 'thresholds', 'default'];
  for (const [b] of [...BASELINES, ['thresholds'] as [string]]) {
    if (b !== 'thresholds') keys.push(b);
    for (const v of variantsAt(b)) keys.push(`budget-${b}${v.suffix}`);
  }
  return keys;
}

/** Row metadata of earlier runs (so a partial run renders the whole table). */
const ROWS_FILE = join(cache, 'rows.json');
/** How the importance matrix of the `--imatrix` rows in the cache was made. */
const IMATRIX_FILE = join(cache, 'imatrix-made.json');
type SavedRow = Omit<Row, 'evals'> & { fingerprint?: string; commit: string };

function measure(): State {
  // 1. Models.
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} logical cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${process.platform}/${process.arch}, Node ${process.version}`;
  const loadAtStart = loadavg()[0]!;
  const dirty = git(['status', '--porcelain', '--', 'src', 'scripts']).split('\n').filter(Boolean).length;
  const commit = `${git(['rev-parse', '--short', 'HEAD']) || 'unknown'}${dirty ? ` + ${dirty} uncommitted file(s)` : ''}`;
  log(`cache ${cache}; ${SAMPLES} windows of ${SEQ_LEN} tokens per text, seed ${SEED}; rows: ${ROWS?.join(',') ?? 'all'}`);
  const saved: Record<string, SavedRow> = existsSync(ROWS_FILE) ? JSON.parse(readFileSync(ROWS_FILE, 'utf8')) : {};
  const built: Row[] = [];
  const source: Row = { key: 'source', label: `source (bfloat16${MODEL === 'smollm2' ? '; dequantized Q4_1/Q8_0' : ''})`, group: 'source', dir: SOURCE, ...sizeOf(SOURCE), evals: {} };
  built.push(source);
  const wantBudget = (b: string) => variantsAt(b).some((v) => selected(`budget-${b}${v.suffix}`));
  const baselines = BASELINES.map(([key, label, extra]) => (selected(key) || wantBudget(key) ? convert(key, label, extra) : undefined));
  log('mlx_lm.convert baselines ready');
  const thresholds = selected('thresholds') || wantBudget('thresholds') ? swanQuantize('thresholds', 'swan `--strategy thresholds` (SWAN as published)', 'thresholds', ['--strategy', 'thresholds']) : undefined;
  if (thresholds) built.push(thresholds);
  if (selected('default')) built.push(swanQuantize('default', 'swan default (`swan quantize M -o out`, no options)', 'default', [], undefined, false));
  const targets: Row[] = [...baselines.filter((b): b is Row => b !== undefined), ...(thresholds ? [thresholds] : [])];
  const savedImatrix = existsSync(IMATRIX_FILE) ? (JSON.parse(readFileSync(IMATRIX_FILE, 'utf8')) as ImatrixMade) : undefined;
  const wantImatrix = targets.some((b) => variantsAt(b.key).some((v) => v.imatrix && selected(`budget-${b.key}${v.suffix}`)));
  const imatrix = wantImatrix ? selfImatrix(commit) : undefined;
  if (imatrix) writeFileSync(IMATRIX_FILE, JSON.stringify(imatrix.made));
  for (const b of targets) {
    if (b.key !== 'thresholds') built.push(b);
    if (b.bytes === undefined) continue;
    for (const v of variantsAt(b.key)) {
      const key = `budget-${b.key}${v.suffix}`;
      if (!selected(key)) continue;
      const extra = v.imatrix ? ['--imatrix', imatrix!.file, ...v.extra] : v.extra;
      built.push(swanQuantize(key, `swan ${v.label} @ ${b.key} bytes`, b.key, ['--target-size', `${b.bytes}B`, ...extra], b.bytes));
    }
  }
  log(`models ready (${built.filter((r) => r.missing).length} unavailable)`);

  // 2. Evaluation: the selected models without a cached evaluation, one mlx-lm process per text.
  const srcFp = fingerprint(SOURCE);
  const fps = new Map(built.filter((r) => r.dir).map((r) => [r.key, fingerprint(r.dir!)]));
  const protocols: Record<string, EvalProtocol> = {};
  for (const t of TEXTS) {
    const todo = built.filter((r) => r.dir && r !== source && selected(r.key) && !evalCache[evalKey(t.file, fps.get(r.key)!, srcFp)]);
    const uniq = [...new Map(todo.map((r) => [fps.get(r.key)!, r])).values()];
    const needSource = !evalCache[evalKey(t.file, srcFp, srcFp)];
    if (uniq.length === 0 && !needSource) continue;
    log(`evaluating ${uniq.length} models + source on ${t.name}`);
    const rep = evaluateModels(
      uniq.length ? uniq.map((r) => r.dir!) : [SOURCE],
      { text: t.file, vs: SOURCE, seqLen: SEQ_LEN, samples: SAMPLES, seed: SEED, computeDtype: 'float32', progress: true },
    );
    evalCache[evalKey(t.file, srcFp, srcFp)] = { source: rep.source!, result: rep.source!, protocol: rep.protocol };
    uniq.forEach((r, i) => (evalCache[evalKey(t.file, fps.get(r.key)!, srcFp)] = { source: rep.source!, result: rep.results[i]!, protocol: rep.protocol }));
    // Another bench run may have added evaluations meanwhile: merge, never clobber.
    const onDisk: EvalCache = existsSync(EVALS_FILE) ? (JSON.parse(readFileSync(EVALS_FILE, 'utf8')) as EvalCache) : {};
    Object.assign(evalCache, { ...onDisk, ...evalCache });
    writeFileSync(EVALS_FILE, JSON.stringify(evalCache));
  }

  // 3. Every row with a model (this run's, else an earlier run's), with whatever evaluations the cache has.
  const commits: Record<string, string> = {};
  for (const r of built) {
    if (!r.missing) saved[r.key] = { key: r.key, label: r.label, group: r.group, dir: r.dir, bytes: r.bytes, params: r.params, target: r.target, mix: r.mix, seconds: r.seconds, fingerprint: fps.get(r.key), commit };
  }
  const savedNow: Record<string, SavedRow> = existsSync(ROWS_FILE) ? JSON.parse(readFileSync(ROWS_FILE, 'utf8')) : {};
  for (const r of built) if (!r.missing) savedNow[r.key] = saved[r.key]!;
  Object.assign(saved, savedNow);
  writeFileSync(ROWS_FILE, JSON.stringify(saved, null, 1));
  const onDisk: EvalCache = existsSync(EVALS_FILE) ? (JSON.parse(readFileSync(EVALS_FILE, 'utf8')) as EvalCache) : {};
  for (const [k, v] of Object.entries(onDisk)) evalCache[k] ??= v;
  const rows: Row[] = [];
  for (const key of rowKeys()) {
    const b = built.find((r) => r.key === key);
    if (b?.missing) {
      rows.push(b);
      continue;
    }
    const sr = saved[key];
    if (!sr?.fingerprint) continue;
    const row: Row = { ...sr, evals: {} };
    for (const t of TEXTS) {
      const c = evalCache[evalKey(t.file, sr.fingerprint, srcFp)];
      if (!c) continue;
      row.evals[t.key] = c.result;
      protocols[t.key] ??= c.protocol;
    }
    if (key === 'source' || Object.keys(row.evals).length) {
      rows.push(row);
      commits[key] = sr.commit;
    }
  }
  const minutes = (Date.now() - t0) / 60000;
  const imatrixMade = rows.some((r) => r.key.includes('-imatrix')) ? (imatrix?.made ?? savedImatrix) : undefined;
  return { model: MODEL, rows, protocols, machine, loadAtStart, minutes, samples: SAMPLES, seqLen: SEQ_LEN, seed: SEED, quick: QUICK, commits, imatrix: imatrixMade };
}

// 4. Report.
const f4 = (x: number) => x.toFixed(4);
const signed = (x: number, d: number) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;

function render(st: State): { md: string; summary: string } {
  const { rows, protocols } = st;
  const source = rows.find((r) => r.key === 'source')!;
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const texts = TEXTS.filter((t) => protocols[t.key]);
  const dppl = (r: Row | undefined, k: string): number | undefined => {
    const e = r?.evals[k];
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
    if (r === source) return [f4(e.ppl), '0', '0'];
    const d = dppl(r, k)!;
    const se = pairedSe(r, source, k);
    const rel = `${signed((100 * d) / source.evals[k]!.ppl, 1)}%`;
    return [f4(e.ppl), `${signed(d, 3)} ± ${se === undefined ? '—' : (e.ppl * se).toFixed(3)} (${rel})`, `${e.kl!.toFixed(4)} ± ${(e.klStderr ?? NaN).toFixed(4)}`];
  };
  const table = [
    `| model | bytes | vs target | true bpw | ${texts.map((t) => `${t.name} PPL | ΔPPL ± paired se | KL ± se`).join(' | ')} |`,
    `|---|---:|---:|---:|${texts.map(() => '---:|---:|---:').join('|')}|`,
  ];
  for (const r of rows) {
    if (r.missing) {
      table.push(`| ${r.label} | ${r.missing} | | | ${texts.map(() => ' | | ').join(' | ')} |`);
      continue;
    }
    const vs = r.target ? `${signed((100 * (r.bytes! - r.target)) / r.target, 2)}%` : '';
    const bpw = ((8 * r.bytes!) / r.params!).toFixed(3);
    table.push(`| ${r.label} | ${r.bytes!.toLocaleString('en-US')} | ${vs} | ${bpw} | ${texts.map((t) => cells(r, t.key).join(' | ')).join(' | ')} |`);
  }

  const mixTable = ['| model | share of parameters per format |', '|---|---|'];
  for (const r of rows) if (!r.missing) mixTable.push(`| ${r.label} | ${r.mix} |`);

  // Headline checks, each with the paired error of the comparison it rests on.
  const checks: string[] = [];
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '**not measured**' : ok ? '**yes**' : '**no**');
  // The issue's targets at u4g64 bytes: data-free ½ of uniform's ΔPPL, self-calibrated ⅓.
  for (const v of VARIANTS) {
    const [goal, goalText] = v.imatrix ? [1 / 3, '⅓'] : [1 / 2, '½'];
    const u = byKey.get('u4g64');
    const b = byKey.get(`budget-u4g64${v.suffix}`);
    const per = TEXTS.map((t) => {
      const du = dppl(u, t.key);
      const db = dppl(b, t.key);
      if (du === undefined || db === undefined) return { ok: undefined, s: `${t.name}: not measured` };
      return { ok: db <= du * goal, s: `${t.name}: ΔPPL ${signed(db, 3)} vs uniform ${signed(du, 3)} (ratio ${(db / du).toFixed(2)})` };
    });
    const ok = per.some((p) => p.ok === undefined) ? undefined : per.every((p) => p.ok);
    if (!b && v.suffix !== '' && !v.imatrix) continue;
    checks.push(`- At the bytes of uniform 4-bit g64, swan ${v.label} ΔPPL ≤ ${goalText} of uniform's on both texts: ${verdict(ok)} — ${per.map((p) => p.s).join('; ')}.`);
  }
  for (const ref of ['mixed_4_6', 'mixed_3_6', 'thresholds']) {
    for (const v of variantsAt(ref)) {
      const m = byKey.get(ref);
      const b = byKey.get(`budget-${ref}${v.suffix}`);
      const per = TEXTS.map((t) => {
        const pm = m?.evals[t.key]?.ppl;
        const pb = b?.evals[t.key]?.ppl;
        if (pm === undefined || pb === undefined) return { ok: undefined, s: `${t.name}: not measured` };
        const se = pairedSe(b!, m!, t.key);
        return { ok: pb < pm, s: `${t.name}: PPL ${f4(pb)} vs ${ref} ${f4(pm)} (${signed(100 * Math.log(pb / pm), 1)}%${se !== undefined ? ` ± ${(100 * se).toFixed(1)}% paired` : ''})` };
      });
      const ok = per.some((p) => p.ok === undefined) ? undefined : per.every((p) => p.ok);
      if (per.every((p) => p.ok === undefined) && v.suffix !== '') continue;
      checks.push(`- At the bytes of ${ref}, swan ${v.label} has lower PPL than ${ref} on both texts: ${verdict(ok)} — ${per.map((p) => p.s).join('; ')}.`);
    }
  }

  const windowsLine = texts.map((t) => {
    const p = protocols[t.key]!;
    const se = source.evals[t.key]!;
    return `${t.name} (\`${basename(t.file)}\`): ${p.windowsUsed} of ${p.windowsAvailable} windows (${p.textTokens.toLocaleString('en-US')} tokens in the text); source PPL ${f4(se.ppl)} ± ${f4(se.pplStderr)} per token, ± ${f4(se.pplStderrWindows ?? NaN)} between windows`;
  });
  const p0 = protocols[texts[0]?.key ?? '']!;
  const commitSet = [...new Set(Object.values(st.commits))];
  const commitLine =
    commitSet.length <= 1
      ? `Models built at commit ${commitSet[0] ?? 'unknown'}.`
      : `Models built at several commits (the cache keeps rows of earlier runs): ${Object.entries(st.commits).map(([k, c]) => `${k} ${c}`).join(', ')}.`;
  const md = `# Quality at equal bytes: swan vs mlx_lm.convert on ${st.model === 'smollm2' ? 'SmolLM2-135M' : 'stories260K'}

Written by \`npm run bench:quality -- --model ${st.model}\` (bench/quality.ts)${st.quick ? ' in **--quick** mode (a smoke run, not the reference numbers)' : ''}. Do not edit by hand.
${commitLine}

${MODEL_NOTES[st.model as typeof MODEL]}
- Baselines: real \`mlx_lm.convert\` (mlx-lm ${p0?.mlxLm}, MLX ${p0?.mlx}, CPU rounding rules on this Linux
  machine). swan outputs use swan's defaults (Metal rounding rules, fixed seed); all load in mlx-lm
  unchanged.
- swan's size-targeted rows target the exact byte size of the row they sit under: \`--target-size <bytes>B\`;
  "vs target" is where the result landed.
- **Bytes** are the sum of tensor bytes (weights, scales, biases and float tensors), which is the
  index \`total_size\`; file headers and the tokenizer are not counted. **True bpw** = 8 · bytes /
  parameters, parameters counted as mlx-lm's \`compute_bits_per_weight\` does.
- Nothing is tuned on the evaluation texts: swan's plans are data-free (weights only), except the
  \`--imatrix\` rows, self-calibrated on the model's own samples (below); the texts are read only by
  the evaluation at the end.${imatrixNote(st.imatrix)}

## Evaluation protocol

\`swan eval\` / scripts/mlx_eval.py through real mlx-lm (docs/eval.md): the whole text is tokenized once with
the model's tokenizer, cut into non-overlapping ${st.seqLen}-token windows (tail dropped);
${st.samples} windows per text are drawn with \`numpy.random.default_rng(${st.seed})\` (the same windows for every
model); the first token of each window is context only. PPL = exp(mean cross-entropy over the
${(st.samples * (st.seqLen - 1)).toLocaleString('en-US')} scored tokens). ΔPPL = PPL − source PPL on the same windows, ± its paired
standard error (PPL × the standard error over windows of the per-window mean cross-entropy difference).
KL = mean over those tokens of KL(P_source ‖ P_model) in nats, ± its standard error over tokens.
Compute dtype float32; quantized layers run dequantized (docs/eval.md).

${windowsLine.map((l) => `- ${l}`).join('\n')}

Machine: ${st.machine}; shared with other work (1-min load average ${st.loadAtStart.toFixed(1)} at start).

## Results

${table.join('\n')}

## Headline checks

${checks.join('\n')}

"not measured": the row was not evaluated (on this shared 2-core machine a SmolLM2 evaluation of one
model on one text takes minutes; \`--rows\` runs a subset and the cache keeps every result). How the
budget allocation and the rounding work, what was tried for these targets and what each attempt bought:
[allocation.md](allocation.md) §8.

## Allocation of each model

${mixTable.join('\n')}
`;
  return { md, summary: `${table.join('\n')}\n\n${checks.join('\n')}` };
}

/** How the `--imatrix` rows' importance matrix was made, for the report's notes. */
function imatrixNote(m: ImatrixMade | undefined): string {
  if (!m) return '';
  return `
- \`--imatrix\` rows: \`${m.command}\` (commit ${m.commit}; ${m.tokens.toLocaleString('en-US')} tokens, ${Math.round(m.seconds)} s here),
  then \`swan quantize SOURCE --target-size <bytes>B --imatrix imatrix.json\` (the data-free plan, planned
  from the same \`swan analyze\` manifest as the other size-targeted rows; rounded by GPTQ under each layer
  input's covariance, or with \`--rounding search\` under the diagonal's weights only: allocation.md §8).
  The tokens are sequences
  the model samples itself (temperature 1, \`mx.random.seed(${SELF_SEED} + round)\`) from its chat template's
  generation prompt for an empty user turn: no outside text, and never the evaluation texts.`;
}

if (args.includes('--list-rows')) {
  process.stdout.write(rowKeys().join('\n') + '\n');
  process.exit(0);
}
const state: State = RENDER ? (JSON.parse(readFileSync(RENDER, 'utf8')) as State) : measure();
if (!RENDER) {
  writeFileSync(join(cache, 'bench-quality.json'), JSON.stringify(state));
  log(`measurements saved to ${join(cache, 'bench-quality.json')}`);
}
const { md, summary } = render(state);
mkdirSync(join(OUT, '..'), { recursive: true });
writeFileSync(OUT, md);
process.stdout.write(`${summary}\n\nwrote ${OUT}\n`);
if (QUICK && !opt('--cache')) rmSync(cache, { recursive: true, force: true });
