import { closeSync, existsSync, openSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SwanError } from '../errors.js';

/**
 * Write `data` to `target` through a temporary sibling renamed into place: readers never see a
 * half-written file, and a failed write leaves nothing behind (the temporary file is removed).
 * `data` may be a function that writes to the open file descriptor (streamed output).
 */
export function writeFileAtomic(target: string, data: string | Uint8Array | ((fd: number) => void)): void {
  const abs = resolve(target);
  const dir = dirname(abs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SwanError(target, `directory ${dirname(target)} does not exist`);
  if (existsSync(abs) && statSync(abs).isDirectory()) throw new SwanError(target, 'is a directory; name the file to write');
  const tmp = join(dir, `.${basename(abs)}.swan-tmp-${process.pid}`);
  try {
    if (typeof data === 'function') {
      const fd = openSync(tmp, 'w');
      try {
        data(fd);
      } finally {
        closeSync(fd);
      }
    } else writeFileSync(tmp, data);
    renameSync(tmp, abs);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was created
    }
    throw new SwanError(target, `cannot write: ${(err as Error).message.split('\n')[0]}`);
  }
}
