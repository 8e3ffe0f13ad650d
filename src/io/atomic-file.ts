import { closeSync, existsSync, lstatSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { registerCleanup, removeAbandoned, stderrNotice, unregisterCleanup, type Notice } from './cleanup.js';

/**
 * Write `data` to `target` through a temporary sibling renamed into place: readers never see a
 * half-written file, and a failed or stopped write leaves nothing behind (the temporary file is
 * removed here on failure, by the CLI's parent on a signal: src/io/cleanup.ts). `data` may be a
 * function that writes to the open file descriptor (streamed output).
 *
 * An existing `target` is replaced only when `replaces` recognises, from its first bytes, a file
 * swan wrote (a manifest, a report): swan never overwrites a user's file, e.g. `-o config.json`.
 */
export function writeFileAtomic(
  target: string,
  data: string | Uint8Array | ((fd: number) => void),
  opts: { onNotice?: Notice; replaces?: (head: string) => boolean } = {},
): void {
  const abs = resolve(target);
  const dir = dirname(abs);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SwanError(target, `directory ${dirname(target)} does not exist`);
  const existing = existsSync(abs) || isLink(abs) ? lstatSync(abs) : undefined;
  if (existing?.isDirectory()) throw new SwanError(target, 'is a directory; name the file to write');
  if (existing && !(existing.isFile() && opts.replaces?.(fileHead(abs)))) {
    throw new SwanError(target, `exists and is not a file swan wrote${existing.isSymbolicLink() ? ' (a link)' : ''}; name another file or remove it`);
  }
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

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The first 4 KiB of a regular file, as text. */
function fileHead(p: string): string {
  const fd = openSync(p, 'r');
  try {
    const buf = Buffer.alloc(4096);
    return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}
