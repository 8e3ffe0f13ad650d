import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { registerCleanup, removeAbandoned, stderrNotice, unregisterCleanup, type Notice } from './cleanup.js';

/**
 * Write `data` to `target` through a temporary sibling renamed into place: readers never see a
 * half-written file, and a failed or stopped write leaves nothing behind (the temporary file is
 * removed here on failure, by the CLI's parent on a signal: src/io/cleanup.ts). `data` may be a
 * function that writes to the open file descriptor (streamed output).
 */
export function writeFileAtomic(target: string, data: string | Uint8Array | ((fd: number) => void), opts: { onNotice?: Notice } = {}): void {
  const abs = resolve(target);
  const dir = dirname(abs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SwanError(target, `directory ${dirname(target)} does not exist`);
  if (existsSync(abs) && statSync(abs).isDirectory()) throw new SwanError(target, 'is a directory; name the file to write');
  const prefix = `.${basename(abs)}.swan-tmp-`;
  removeAbandoned(dir, prefix, opts.onNotice ?? stderrNotice);
  const tmp = join(dir, `${prefix}${process.pid}`);
  registerCleanup(tmp);
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
    throw new SwanError(target, `cannot write: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    rmSync(tmp, { force: true });
    unregisterCleanup(tmp);
  }
}
