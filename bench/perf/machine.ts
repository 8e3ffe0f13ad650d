/**
 * What the run records about the machine and its load, and the environment every measured process
 * (swan's children and the Python baseline alike) runs in.
 */
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

import { f } from './format.js';

export interface CpuStat {
  busy: number;
  t: number;
}

/** CPU seconds all processes used so far (/proc/stat), or null off Linux. */
export function cpuStat(): CpuStat | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy excludes idle and iowait.
    const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return { busy: busy / 100, t: performance.now() / 1000 }; // USER_HZ = 100 on Linux
  } catch {
    return null;
  }
}

/** Cores' worth of CPU that processes other than ours used between a and b. */
export function otherCores(a: CpuStat | null, b: CpuStat | null, ownCpuSeconds: number): number | null {
  if (!a || !b || b.t <= a.t) return null;
  return Math.max(0, (b.busy - a.busy - ownCpuSeconds) / (b.t - a.t));
}

/** This process's CPU seconds so far. */
export function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

export function memAvailableBytes(): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return totalmem() / 2;
}

export function machineLines(backendNote: string): string[] {
  const c = cpus();
  let flags = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const fl = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
    flags = ['avx512f', 'avx2', 'amx_tile'].filter((x) => fl.split(' ').includes(x)).join(', ');
  } catch {
    // not Linux
  }
  return [
    `CPU: ${c[0]?.model ?? 'unknown'} × ${c.length} logical cores${flags ? ` (${flags})` : ''}; RAM ${f(totalmem() / 2 ** 30, 1)} GiB.`,
    `Node ${process.version}; ${backendNote}.`,
  ];
}

/**
 * The environment of every measured process, swan's and the baseline's alike: this machine pins
 * OpenBLAS to an older kernel set (OPENBLAS_CORETYPE=Haswell) for old-library safety, which would
 * slow both swan's native backend and a current numpy; without it OpenBLAS picks its kernels for
 * the CPU.
 */
export function benchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}
