/**
 * Output directories: checked before any work, locked against a concurrent run, built in a
 * temporary sibling and renamed into place, so that a failed or stopped run leaves nothing
 * half-written and --overwrite replaces only a directory swan wrote. docs/reliability.md, "Outputs".
 */
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { processAlive, registerCleanup, removeAbandoned, stderrNotice, unregisterCleanup, type Notice } from './cleanup.js';

/** Written into every directory swan builds, listing its files: what --overwrite may replace. */
export const OUTPUT_MARKER = '.swan-output';
/** Written by macOS Finder into any folder it shows; not the user's content. */
const IGNORED = new Set(['.DS_Store']);

export interface OutputDirOptions {
  overwrite?: boolean;
  /** The input model directory: the output may not be it, contain it or lie inside it. */
  input?: string;
  onNotice?: Notice;
}

export interface OutputDir {
  /** Build the directory in a temporary sibling, then put it in place (once). */
  write<T>(build: (tmp: string) => T): T;
  /** Give the lock back; safe to call twice. */
  release(): void;
}

/**
 * Check the output path, take its lock and remove what killed runs left beside it. Call before any
 * analysis so that a refused or busy output fails at once.
 */
export function claimOutputDir(outDir: string, opts: OutputDirOptions = {}): OutputDir {
  const target = resolve(outDir);
  const notice = opts.onNotice ?? stderrNotice;
  checkOutputDir(target, opts);
  const lock = acquireLock(target, notice);
  const parent = dirname(target);
  const prefix = `.${basename(target)}.swan-tmp-`;
  try {
    // Again under the lock: a run that held it may have just written the target.
    checkOutputDir(target, opts);
    removeAbandoned(parent, prefix, notice);
  } catch (e) {
    releaseLock(lock);
    throw e;
  }
  let released = false;
  return {
    write(build) {
      const tmp = join(parent, `${prefix}${process.pid}`);
      registerCleanup(tmp);
      try {
        mkdirSync(tmp);
        const result = build(tmp);
        writeMarker(tmp);
        // Again: the target may have changed while the model was analysed and written.
        checkOutputDir(target, opts);
        putInPlace(tmp, target);
        return result;
      } finally {
        rmSync(tmp, { recursive: true, force: true });
        unregisterCleanup(tmp);
      }
    },
    release() {
      if (!released) releaseLock(lock);
      released = true;
    },
  };
}

/** Refuse an output path that is a link, would replace or hold the input, or is not swan's to replace. */
export function checkOutputDir(target: string, opts: OutputDirOptions): void {
  const st = lstatOrUndefined(target);
  if (st?.isSymbolicLink()) throw new SwanError(target, 'is a symbolic link; swan neither follows nor replaces links (name a directory)');
  const parent = dirname(target);
  if (!existsSync(parent)) throw new SwanError(parent, 'parent directory of the output does not exist');
  if (opts.input !== undefined) checkAgainstInput(target, st, opts.input);
  if (!st) return;
  if (!st.isDirectory()) throw new SwanError(target, 'already exists and is not a directory; choose another output');
  const foreign = notSwans(target);
  if (foreign) throw new SwanError(target, `already exists and ${foreign}; choose another output (swan replaces only directories it wrote)`);
  if (!opts.overwrite) throw new SwanError(target, 'output directory already exists (pass --overwrite to replace it)');
}

/**
 * The output may not be the input directory, lie inside it or contain it. Compared by device and
 * inode along the real paths, so links, bind mounts and a case-insensitive file system cannot hide it.
 */
function checkAgainstInput(target: string, st: Stats | undefined, input: string): void {
  let inSt: Stats;
  try {
    inSt = statSync(input);
  } catch {
    return; // reading the model reports a missing input
  }
  const isInput = (s: Stats) => sameFile(s, inSt);
  if (st && isInput(st)) throw new SwanError(target, 'is the input model directory; choose another output');
  if (ancestors(realpathSync.native(dirname(target))).some(isInput)) {
    throw new SwanError(target, `is inside the input model directory ${input}; choose another output`);
  }
  if (st && ancestors(dirname(realpathSync.native(input))).some((a) => sameFile(a, st))) {
    throw new SwanError(target, `contains the input model directory ${input}; choose another output`);
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Stats of a real path and of each directory above it. */
function ancestors(real: string): Stats[] {
  const out = [statSync(real)];
  for (let p = real; dirname(p) !== p; p = dirname(p)) out.push(statSync(dirname(p)));
  return out;
}

/**
 * Why an existing directory is not swan's to replace, or undefined: it must hold the marker and
 * nothing but the files the marker lists (and swan's own temporary files of those).
 */
function notSwans(dir: string): string | undefined {
  const entries = readdirSync(dir, { withFileTypes: true });
  const marker = entries.find((e) => e.name === OUTPUT_MARKER);
  if (!marker?.isFile()) return `has no ${OUTPUT_MARKER} marker (swan did not write it)`;
  let files: unknown;
  try {
    files = (JSON.parse(readFileSync(join(dir, OUTPUT_MARKER), 'utf8')) as { files?: unknown }).files;
  } catch {
    files = undefined;
  }
  if (!Array.isArray(files)) return `has an unreadable ${OUTPUT_MARKER} marker`;
  const own = new Set<unknown>(files);
  const isOwn = (name: string) => own.has(name) || name === OUTPUT_MARKER || IGNORED.has(name) || own.has(/^\.(.+)\.swan-tmp-\d+$/.exec(name)?.[1]);
  const foreign = entries.filter((e) => !e.isFile() || !isOwn(e.name)).map((e) => e.name);
  if (foreign.length === 0) return undefined;
  const named = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
  return `holds ${named}, which swan did not write`;
}

function writeMarker(dir: string): void {
  const files = readdirSync(dir).sort();
  writeFileSync(join(dir, OUTPUT_MARKER), JSON.stringify({ written_by: 'swan', files }, null, 2) + '\n');
}

/**
 * Rename the finished directory into place. An existing (swan) output is first renamed aside, so
 * the target path always holds a whole directory, the old or the new.
 */
function putInPlace(tmp: string, target: string): void {
  if (!lstatOrUndefined(target)) {
    renameSync(tmp, target);
    return;
  }
  const old = `${tmp}.old`;
  renameSync(target, old);
  try {
    renameSync(tmp, target);
  } catch (e) {
    renameSync(old, target);
    throw e;
  }
  registerCleanup(old);
  rmSync(old, { recursive: true, force: true });
  unregisterCleanup(old);
}

/**
 * `.<name>.swan-lock` beside the output, created exclusively and holding the PID: a second run to
 * the same output fails at once; a lock whose process is gone is taken over.
 */
function acquireLock(target: string, notice: Notice): string {
  const lock = join(dirname(target), `.${basename(target)}.swan-lock`);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SwanError(lock, `cannot create the output lock: ${(e as Error).message.split(', ')[0]}`);
      const holder = lockHolder(lock);
      if (holder === undefined) continue; // released meanwhile
      if (holder > 0 && !processAlive(holder)) {
        rmSync(lock, { force: true });
        notice(`took over ${lock}, left by swan process ${holder}, which is no longer running`);
        continue;
      }
      throw new SwanError(
        target,
        holder > 0
          ? `another swan run (process ${holder}) is writing this output (lock ${lock})`
          : `is locked by ${lock}, which names no process; remove it if no swan run is writing here`,
      );
    }
    registerCleanup(lock);
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return lock;
  }
  throw new SwanError(target, `another swan run keeps taking the lock ${lock}`);
}

/** The PID in a lock file (0 when it holds none), or undefined when the lock is gone. */
function lockHolder(lock: string): number | undefined {
  try {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : 0;
  } catch {
    return undefined;
  }
}

function releaseLock(lock: string): void {
  // Unregister first: a parent that removes registered paths must never remove another run's lock.
  unregisterCleanup(lock);
  if (lockHolder(lock) === process.pid) rmSync(lock, { force: true });
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}
