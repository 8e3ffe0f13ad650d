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
