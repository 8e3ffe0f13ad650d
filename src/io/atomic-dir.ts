import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SwanError } from '../errors.js';

/**
 * Build an output directory in a temporary sibling and rename it into place at the end, so a
 * failed run leaves nothing half-written at the target path.
 */
export function withAtomicDir<T>(target: string, opts: { overwrite?: boolean }, build: (tmp: string) => T): T {
  if (existsSync(target) && !opts.overwrite) {
    throw new SwanError(target, 'output directory already exists (pass --overwrite to replace it)');
  }
  const parent = dirname(target);
  if (!existsSync(parent)) throw new SwanError(parent, 'parent directory of the output does not exist');
  const prefix = `.${basename(target)}.swan-tmp-`;
  removeAbandoned(parent, prefix);
  const tmp = join(parent, `${prefix}${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const result = build(tmp);
    if (existsSync(target)) rmSync(target, { recursive: true, force: true });
    renameSync(tmp, target);
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Temporary siblings left by runs that were killed (their process no longer exists). */
function removeAbandoned(parent: string, prefix: string): void {
  for (const f of readdirSync(parent)) {
    if (!f.startsWith(prefix)) continue;
    const pid = Number(f.slice(prefix.length));
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) rmSync(join(parent, f), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
