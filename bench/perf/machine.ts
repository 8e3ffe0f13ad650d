/**
 * What the run records about the machine and its load, as data for the report, and the environment
 * every measured process (swan's children and the Python baseline alike) runs in.
 */
import { readFileSync } from 'node:fs';
import { arch, cpus, platform, release, totalmem } from 'node:os';

/** Load average over 1, 5 and 15 minutes; null where /proc/loadavg cannot be read. */
export type LoadAvg = [number, number, number] | null;

export interface Machine {
  cpuModel: string;
  logicalCores: number;
  /** Which of avx512f, avx2 and amx_tile /proc/cpuinfo lists; null where it cannot be read. */
  cpuFeatures: string[] | null;
  memoryBytes: number;
  /** MemAvailable when the run started; null where /proc/meminfo cannot be read. */
  memoryAvailableBytes: number | null;
  /** Platform, kernel release and architecture. */
  os: string;
  node: string;
  /** The bench's own values of the variables removed from every measured process's environment (null: not set). */
  unsetForMeasurement: Record<string, string | null>;
}

/**
 * Removed from the environment of every measured process, swan's and the baseline's alike: a set
 * OPENBLAS_CORETYPE pins OpenBLAS to that kernel set for swan's native backend and numpy alike;
 * without it OpenBLAS picks its kernels for the CPU.
 */
const UNSET_FOR_MEASUREMENT = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

export function benchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  for (const name of UNSET_FOR_MEASUREMENT) delete env[name];
  return env;
}

function readProc(name: string): string | null {
  try {
    return readFileSync(`/proc/${name}`, 'utf8');
  } catch {
    return null; // not Linux
  }
}

export function machineFacts(): Machine {
  const c = cpus();
  const flags = /^flags\s*:(.*)$/m.exec(readProc('cpuinfo') ?? '')?.[1]?.trim().split(/\s+/);
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    logicalCores: c.length,
    cpuFeatures: flags ? ['avx512f', 'avx2', 'amx_tile'].filter((x) => flags.includes(x)) : null,
    memoryBytes: totalmem(),
    memoryAvailableBytes: memAvailable(),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    unsetForMeasurement: Object.fromEntries(UNSET_FOR_MEASUREMENT.map((name) => [name, process.env[name] ?? null])),
  };
}

function memAvailable(): number | null {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readProc('meminfo') ?? '');
  return m ? Number(m[1]) * 1024 : null;
}

/** Memory the shapes may use: MemAvailable, or half the RAM where that is unknown. */
export function memAvailableBytes(): number {
  return memAvailable() ?? totalmem() / 2;
}

export function loadavg(): LoadAvg {
  const v = (readProc('loadavg') ?? '').split(' ').slice(0, 3).map(Number);
  return v.length === 3 && v.every(Number.isFinite) ? [v[0]!, v[1]!, v[2]!] : null;
}

export interface CpuStat {
  busy: number;
  t: number;
}

/** CPU seconds all processes used so far (/proc/stat), or null off Linux. */
export function cpuStat(): CpuStat | null {
  const line = readProc('stat')?.split('\n')[0];
  if (!line) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy excludes idle and iowait.
  const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return { busy: busy / 100, t: performance.now() / 1000 }; // USER_HZ = 100 on Linux
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
