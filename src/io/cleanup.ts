/**
 * Paths to remove if the process stops before it is done with them: temporary siblings and output
 * locks. swan's writes are synchronous, so a JS signal handler in the working process could not run
 * before the write ends; the CLI therefore works in a child process (src/cli/main.ts) that reports
 * each path here to its parent through fd 3, and the parent removes what is still registered when
 * the child dies. Without that parent (library use, both killed) nothing is removed at once; what
 * a killed run leaves carries its PID, and the next run to the same output removes it.
 */
import { readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Set by the CLI's parent process to its PID: the child reports its paths on fd 3. */
export const SUPERVISOR_ENV = 'SWAN_SUPERVISOR';
export const REPORT_FD = 3;

/** Where a library call reports what it removed or took over (default: one line on stderr). */
export type Notice = (line: string) => void;
export const stderrNotice: Notice = (line) => {
  process.stderr.write(`swan: notice: ${line}\n`);
};

let supervised: boolean | undefined;

/** `path` is to be removed if the process dies before unregisterCleanup. */
export function registerCleanup(path: string): void {
  report('+', path);
}

export function unregisterCleanup(path: string): void {
  report('-', path);
}

export function removePaths(paths: Iterable<string>): void {
  for (const p of paths) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort: what stays carries a dead PID and the next run removes it
    }
  }
}

/** One line of the child's report, applied to the parent's set of paths. */
export function applyReport(paths: Set<string>, line: string): void {
  if (!line) return;
  const [op, path] = JSON.parse(line) as [string, string];
  if (op === '+') paths.add(path);
  else paths.delete(path);
}

function report(op: '+' | '-', path: string): void {
  // The variable could be inherited by some other process: only the CLI's own child reports.
  supervised ??= process.env[SUPERVISOR_ENV] === String(process.ppid);
  if (!supervised) return;
  try {
    writeSync(REPORT_FD, JSON.stringify([op, path]) + '\n');
  } catch {
    // the parent is gone: the next run cleans up after a killed one
  }
}

/** Whether a process exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the entries `<prefix><pid>` and `<prefix><pid>.old` of `dir` whose process no longer
 * exists: left by a killed run (the names are swan's: atomic-dir.ts, atomic-file.ts).
 */
export function removeAbandoned(dir: string, prefix: string, notice: Notice): void {
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(prefix)) continue;
    const m = /^(\d+)(\.old)?$/.exec(f.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    rmSync(join(dir, f), { recursive: true, force: true });
    notice(`removed ${join(dir, f)}, left by swan process ${pid}, which is no longer running`);
  }
}
