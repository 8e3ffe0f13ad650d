import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository (package) root: two levels above dist/src/. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Path of the venv python with real mlx/mlx-lm, creating the venv with scripts/setup-venv.sh if needed. */
export function venvPython(): string {
  const venv = process.env.SWAN_VENV ?? join(PACKAGE_ROOT, '.venv');
  const py = join(venv, 'bin', 'python');
  const setup = join(PACKAGE_ROOT, 'scripts', 'setup-venv.sh');
  const r = spawnSync('bash', [setup], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  if (r.status !== 0 || !existsSync(py)) throw new Error(`could not create the mlx venv (${setup})`);
  return py;
}

/** Run a Python script from the venv; returns stdout. Throws with stderr on failure. */
export function runPython(script: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): string {
  try {
    return execFileSync(venvPython(), [script, ...args], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 600_000,
      input: opts.input,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false' },
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`python ${script} failed: ${err.stderr?.slice(-4000) ?? err.message}`);
  }
}

/**
 * Run one of swan's worker scripts (scripts/*.py) in the venv; returns stdout. With `progress` its
 * stderr goes straight to ours. A failure becomes one line: `${label}: <the script's own
 * "NAME: error: ..." line>`, else the exit status and the last stderr line.
 */
export function runWorker(script: string, args: string[], o: { name: string; label: string; progress?: boolean; timeoutMs?: number; env?: Record<string, string> }): string {
  const r = spawnSync(venvPython(), [script, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: o.timeoutMs,
    stdio: ['ignore', 'pipe', o.progress ? 'inherit' : 'pipe'],
    env: { ...process.env, ...o.env, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false' },
  });
  if (r.error) throw new Error(`${o.name}.py: ${r.error.message}`);
  if (r.status !== 0) {
    const err = r.stderr ?? '';
    const line = new RegExp(`${o.name}: error: (.*)`).exec(err)?.[1];
    if (line) throw new Error(`${o.label}: ${line}`);
    const last = err.trim().split('\n').pop();
    throw new Error(`${o.label} failed (${o.name}.py exit ${r.status ?? r.signal})${last ? `: ${last}` : ''}`);
  }
  return r.stdout;
}
