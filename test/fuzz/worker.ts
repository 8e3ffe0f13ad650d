/**
 * Fuzz worker: runs `swan quantize` in-process (the real CLI, src/cli/run.ts) on each case given
 * as JSON in argv[2] and prints one JSON line per case, then a final line with the peak RSS. The
 * parent (test/fuzz.test.ts) spawns it with a timeout, so a hang is seen as the case after the last
 * line printed.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { buildCase, type FuzzCase } from './cases.js';

interface Job {
  cases: FuzzCase[];
  model: string;
  manifest: string;
  root: string;
}

export interface CaseResult extends FuzzCase {
  what: string;
  flags: string[];
  code: number;
  stderr: string;
  /** The output directory when the run succeeded (kept for the mlx-lm check). */
  out?: string;
  /** Entries the run left beside or in place of its output when it failed. */
  leftovers: string[];
  seconds: number;
}

const job = JSON.parse(process.argv[2]!) as Job;
const write = process.stderr.write.bind(process.stderr);

for (const c of job.cases) {
  const built = buildCase(c, job.model, job.manifest, job.root);
  const out = join(job.root, `out-${c.family}-${c.seed}`);
  let stderr = '';
  // Capture what the CLI prints for this case (it writes errors to stderr).
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  const t0 = performance.now();
  let code: number;
  try {
    code = await runCli(['node', 'swan', 'quantize', built.dir, '-o', out, '--quiet', ...built.flags]);
  } finally {
    process.stderr.write = write;
  }
  const seconds = (performance.now() - t0) / 1000;
  const leftovers = code === 0 ? [] : readdirSync(dirname(out)).filter((f) => f.includes('swan-tmp') || f.includes('swan-lock') || f === `out-${c.family}-${c.seed}`);
  const result: CaseResult = { ...c, what: built.what, flags: built.flags, code, stderr, leftovers, seconds, ...(code === 0 ? { out } : {}) };
  process.stdout.write(JSON.stringify(result) + '\n');
  rmSync(built.dir, { recursive: true, force: true });
  for (const f of built.files) rmSync(f, { force: true });
  if (code !== 0 && existsSync(out)) rmSync(out, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
