/**
 * Fuzz: seeded mutations of stories260K's safetensors header and data, its config.json, a weight
 * index, and a swan manifest (test/fuzz/cases.ts), run through the real CLI in-process
 * (test/fuzz/worker.ts, two workers in parallel). For every case:
 *  - exit 0 only with an output directory; a sample of those is loaded by real mlx-lm (strict) and
 *    must give finite logits on 4 tokens (unless the case passed --allow-nonfinite);
 *  - any other exit: exactly one line, `swan: error: …`, naming a file of the case, and nothing
 *    left behind (no output, no temporary sibling, no lock);
 *  - no hang (the worker has a time limit) and bounded memory (its peak RSS).
 * Cases that ever failed are kept in test/fuzz/regressions.json ({family, seed}) and always run.
 * SWAN_FUZZ_CASES=N scales the number of generated cases (default 510); SWAN_FUZZ_FIRST_SEED=S
 * explores other seeds (default 1, what CI runs).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runPython } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { FAMILIES, type Family, type FuzzCase } from './fuzz/cases.js';
import type { CaseResult } from './fuzz/worker.js';
import { swan } from './helpers/cli.js';
import { PY, REPO, STORIES, tempDir } from './helpers/paths.js';

const TOTAL = Number(process.env.SWAN_FUZZ_CASES ?? 510);
const FIRST_SEED = Number(process.env.SWAN_FUZZ_FIRST_SEED ?? 1);
/** Share of the cases per family. */
const SHARE: Record<Family, number> = { header: 0.3, data: 0.12, config: 0.24, index: 0.14, manifest: 0.2 };
const WORKER_SECONDS = 900;
const MAX_RSS_MIB = 1536;
/** Written outputs loaded in mlx-lm per run (SWAN_FUZZ_LOAD_SAMPLE to load more). */
const LOAD_SAMPLE = Number(process.env.SWAN_FUZZ_LOAD_SAMPLE ?? 6);

const tmp = tempDir('swan-fuzz-');
after(() => tmp.cleanup());

function cases(): FuzzCase[] {
  const out: FuzzCase[] = JSON.parse(readFileSync(join(REPO, 'test', 'fuzz', 'regressions.json'), 'utf8'));
  for (const family of FAMILIES) for (let k = 0; k < Math.round(SHARE[family] * TOTAL); k++) out.push({ family, seed: FIRST_SEED + k });
  return out;
}

function runWorker(job: object): Promise<{ results: CaseResult[]; maxRssKiB?: number; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--max-old-space-size=2048', join(REPO, 'dist', 'test', 'fuzz', 'worker.js'), JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_SECONDS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const last = lines[lines.length - 1];
      const maxRssKiB = last && 'maxRssKiB' in last ? (last.maxRssKiB as number) : undefined;
      resolve({ results: lines.filter((l) => 'family' in l), maxRssKiB, code, stderr });
    });
  });
}

let manifest = '';
before(() => {
  manifest = join(tmp.dir, 'stories.manifest.json');
  const r = swan(['analyze', STORIES, '-o', manifest, '-q']);
  assert.equal(r.status, 0, r.stderr);
});

test(`fuzz: ${cases().length} mutated headers, data, configs, indexes and manifests`, { timeout: (WORKER_SECONDS + 300) * 1000 }, async () => {
  const all = cases();
  const parts = [all.filter((_, i) => i % 2 === 0), all.filter((_, i) => i % 2 === 1)];
  const runs = await Promise.all(parts.map((p, i) => runWorker({ cases: p, model: STORIES, manifest, root: join(tmp.dir, `w${i}`) })));
  const results: CaseResult[] = [];
  for (const [i, run] of runs.entries()) {
    const next = parts[i]![run.results.length];
    assert.equal(run.code, 0, `worker ${i} stopped (exit ${run.code}) at case ${JSON.stringify(next)}: ${run.stderr.slice(-2000)}`);
    assert.ok(run.maxRssKiB! / 1024 < MAX_RSS_MIB, `worker ${i} peak RSS ${(run.maxRssKiB! / 1024).toFixed(0)} MiB`);
    results.push(...run.results);
  }
  assert.equal(results.length, all.length);

  const problems: string[] = [];
  const tally = new Map<string, { ok: number; refused: number }>();
  for (const r of results) {
    const t = tally.get(r.family) ?? { ok: 0, refused: 0 };
    tally.set(r.family, t);
    const id = `${r.family}/${r.seed} (${r.what})`;
    if (r.code === 0) {
      t.ok++;
      continue;
    }
    t.refused++;
    const lines = r.stderr.trimEnd().split('\n');
    // The case's model directory is <root>/<family>-<seed>, its manifest <root>/<family>-<seed>.manifest.json.
    if (lines.length !== 1 || !lines[0]!.startsWith('swan: error: ')) problems.push(`${id}: not one 'swan: error:' line: ${JSON.stringify(r.stderr.slice(0, 400))}`);
    else if (!new RegExp(`/${r.family}-${r.seed}(?![0-9])`).test(lines[0]!)) {
      problems.push(`${id}: the error names no file of the case: ${lines[0]}`);
    }
    if (r.leftovers.length > 0) problems.push(`${id}: left ${r.leftovers.join(', ')}`);
  }
  const summary = [...tally.entries()].map(([f, t]) => `${f} ${t.ok + t.refused} (${t.ok} written, ${t.refused} refused)`).join('; ');
  console.log(`fuzz: ${results.length} cases: ${summary}; slowest ${Math.max(...results.map((r) => r.seconds)).toFixed(2)} s; peak RSS ${runs.map((r) => ((r.maxRssKiB ?? 0) / 1024).toFixed(0)).join(' / ')} MiB`);
  assert.deepEqual(problems, [], `${problems.length} cases misbehaved (keep them in test/fuzz/regressions.json once fixed)`);

  // Every written output must be a model mlx-lm loads and runs; a seeded sample is checked.
  const written = results.filter((r) => r.code === 0);
  if (process.env.SWAN_SKIP_PYTHON || written.length === 0) return;
  const rng = new Rng(7);
  const sample = [...written].sort(() => rng.uniform() - 0.5).slice(0, LOAD_SAMPLE);
  const loaded = JSON.parse(runPython(join(PY, 'load_logits.py'), sample.map((r) => r.out!))) as { dir: string; finite?: boolean; error?: string }[];
  for (const [k, l] of loaded.entries()) {
    const r = sample[k]!;
    assert.ok(!l.error, `${r.family}/${r.seed} (${r.what}) was written but mlx-lm cannot load it: ${l.error}`);
    // --allow-nonfinite keeps NaN/Inf weights on purpose: such a model loads, its logits need not be finite.
    if (!r.flags.includes('--allow-nonfinite')) assert.ok(l.finite, `${r.family}/${r.seed} (${r.what}) was written but mlx-lm gives non-finite logits`);
  }
});
