#!/usr/bin/env node
/**
 * Entry point. swan's work is synchronous (analysis and writing block the event loop), so a signal
 * handler in the working process could not run until the write ended: Ctrl-C would do nothing for
 * minutes. The command therefore runs in a child process that keeps the default signal actions
 * (it stops at once), and this parent, which only waits, removes the temporary paths and locks the
 * child registered (src/io/cleanup.ts) when it dies, then exits 128 + the signal's number.
 *
 * The child runs in its own process group, which this parent signals as a whole and, once the
 * child is gone, kills: a worker the child started (`swan eval`'s Python process) stops with it
 * instead of computing on for minutes as an orphan.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { applyReport, removePaths, REPORT_FD, SUPERVISOR_ENV } from '../io/cleanup.js';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** POSIX process groups (Windows has none: there the child alone is signalled). */
const OWN_GROUP = process.platform !== 'win32';

if (process.env[SUPERVISOR_ENV] === String(process.ppid)) {
  await import('./program.js');
} else {
  supervise();
}

function supervise(): void {
  const stdio: ('inherit' | 'pipe')[] = ['inherit', 'inherit', 'inherit'];
  stdio[REPORT_FD] = 'pipe';
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio,
    env: { ...process.env, [SUPERVISOR_ENV]: String(process.pid) },
    detached: OWN_GROUP,
  });
  /** The child and everything it started (its process group), else the child alone. */
  const signalAll = (sig: NodeJS.Signals): void => {
    if (OWN_GROUP && child.pid !== undefined) {
      try {
        process.kill(-child.pid, sig);
        return;
      } catch {
        // the group is gone already, or the platform has none: the child alone
      }
    }
    child.kill(sig);
  };
  const paths = new Set<string>();
  const reports = child.stdio[REPORT_FD] as Readable;
  let buffered = '';
  reports.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      applyReport(paths, buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
  let stopped: NodeJS.Signals | undefined;
  for (const sig of STOP_SIGNALS) {
    process.on(sig, () => {
      stopped ??= sig;
      // The child's group is not the terminal's foreground group: Ctrl-C and `kill` reach only this process.
      signalAll(sig);
    });
  }
  child.on('spawn', () => {
    if (stopped) signalAll(stopped);
  });
  child.on('error', (e) => {
    process.stderr.write(`swan: error: cannot start the working process: ${e.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    // Whatever the child started and left behind (a worker still computing) goes with it.
    if (OWN_GROUP && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // nothing left in the group
      }
    }
    const finish = () => {
      removePaths(paths);
      if (code !== null) process.exit(code);
      // A progress bar hides the cursor until it stops; the child stopped first.
      if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\n');
      process.stderr.write(`swan: stopped by ${signal}\n`);
      process.exit(128 + (constants.signals[signal!] ?? 0));
    };
    // Reports written before the child died are still in the pipe: read to its end (a moment at
    // most, in case a grandchild holds the pipe open).
    if (reports.readableEnded) finish();
    else {
      reports.once('end', finish);
      setTimeout(finish, 1000);
    }
  });
}
