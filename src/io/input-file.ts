/**
 * Input files read without being steered outside the model directory or blocked forever. A FIFO
 * blocks open() (and read()) until a writer comes, and a device can be anything, so every file is
 * stat'ed before it is opened and only a regular file is opened; the open itself is O_NONBLOCK and
 * the descriptor is fstat'ed again, so a file swapped for a FIFO in between cannot hang swan either.
 * Inside a model directory a file must also resolve (through symlinks) into the directory, or into
 * the HF hub cache's blobs/ for a snapshot (allowedRoots). docs/reliability.md "Inputs".
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  openSync,
  readSync,
  realpathSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { basename, dirname, isAbsolute, relative, sep } from 'node:path';
import { SwanError } from '../errors.js';

/** Whether `p` is `root` or below it (both real paths). */
export function within(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Real directories a model file may resolve into. In the HF hub cache (…/models--x/snapshots/<rev>/),
 * every file is a symlink to ../../blobs/<hash>, so the repo folder two levels up is allowed too.
 */
export function allowedRoots(dir: string): string[] {
  const roots = [realpathSync(dir)];
  if (basename(dirname(dir)) === 'snapshots') roots.push(realpathSync(dirname(dirname(dir))));
  return roots;
}

/** What a file that is not regular is, for messages. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

export function notRegular(st: Stats): string {
  return `not a regular file (${kindOf(st)})`;
}

/** "ENOENT: no such file or directory" from a Node fs error (whose message goes on to repeat the path). */
function reason(e: unknown): string {
  const msg = ((e as Error).message ?? String(e)).split('\n')[0]!;
  return (e as NodeJS.ErrnoException).code ? msg.split(', ')[0]! : msg;
}

/**
 * Why `path` may not be read or copied as a file of a model whose real directories are `roots`
 * (allowedRoots), or undefined when it may: it resolves into a root and is a regular file.
 * Nothing is opened.
 */
export function modelFileProblem(path: string, roots: string[]): string | undefined {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    return `cannot be resolved (${reason(e)})`;
  }
  if (!roots.some((r) => within(r, real))) return `symlink points outside the model directory (${real})`;
  let st: Stats;
  try {
    st = statSync(real);
  } catch (e) {
    return `cannot stat (${reason(e)})`;
  }
  return st.isFile() ? undefined : notRegular(st);
}

// Absent on Windows, where FIFOs are not files anyway.
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;

/** Open a regular file for reading; anything else is refused (SwanError naming `path`) before it is opened. */
export function openRegular(path: string): { fd: number; size: number; mode: number } {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new SwanError(path, `cannot open: ${reason(e)}`);
  }
  if (!st.isFile()) throw new SwanError(path, notRegular(st));
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | O_NONBLOCK);
  } catch (e) {
    throw new SwanError(path, `cannot open: ${reason(e)}`);
  }
  const now = fstatSync(fd);
  if (!now.isFile()) {
    closeSync(fd);
    throw new SwanError(path, notRegular(now));
  }
  return { fd, size: now.size, mode: now.mode };
}

/** Fill `dst` from `fd` at `position`; returns the bytes read (fewer only at the end of the file). */
function readFull(fd: number, dst: Uint8Array, position: number): number {
  let done = 0;
  while (done < dst.byteLength) {
    const n = readSync(fd, dst, done, Math.min(dst.byteLength - done, 1 << 30), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * A regular file's text (UTF-8, invalid bytes replaced as readFileSync does). Refused when larger
 * than `maxBytes` (default: the longest string V8 can hold), before anything is read.
 */
export function readRegularText(path: string, what: string, maxBytes: number = bufferConstants.MAX_STRING_LENGTH): string {
  const { fd, size } = openRegular(path);
  try {
    if (size > maxBytes) throw new SwanError(path, `${what} is ${size} bytes, over the ${maxBytes}-byte limit`);
    const buf = Buffer.allocUnsafe(size);
    const n = readFull(fd, buf, 0);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** Copy a regular file (refused otherwise, before it is opened) to `dst`, keeping its permission bits. */
export function copyRegular(src: string, dst: string): void {
  const { fd, mode } = openRegular(src);
  try {
    const out = openSync(dst, 'w');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0; ; ) {
        const n = readFull(fd, buf, pos);
        if (n === 0) break;
        for (let w = 0; w < n; ) w += writeSync(out, buf, w, n - w);
        pos += n;
      }
      fchmodSync(out, mode & 0o777);
    } finally {
      closeSync(out);
    }
  } finally {
    closeSync(fd);
  }
}
