/**
 * What a killed run leaves beside an output (its temporary sibling, its lock) carries its PID; the
 * next run to the same output removes it once that process is gone.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Where a library call reports what it removed or took over (default: one line on stderr). */
export type Notice = (line: string) => void;
export const stderrNotice: Notice = (line) => {
  process.stderr.write(`swan: notice: ${line}\n`);
};

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
