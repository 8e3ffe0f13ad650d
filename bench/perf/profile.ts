/**
 * Per-function self time of a run profiled with `node --cpu-prof --cpu-prof-dir DIR`: Node writes one
 * .cpuprofile per thread (the main thread and each worker of the parallel analysis); their samples
 * are added up by function name and file, so the table says where the CPU time of the whole run went.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  /** Function name (or "(program)", "(garbage collector)", "(idle)"), and its file's last two path parts. */
  fn: string;
  file: string;
  seconds: number;
  /** Of the summed busy time of every thread (idle excluded). */
  share: number;
}

export interface ProfileSummary {
  /** Threads profiled (files read). */
  threads: number;
  /** Summed non-idle seconds of every thread. */
  busySeconds: number;
  top: ProfileRow[];
}

/**
 * Frames that are waiting, not work: a worker's idle event loop between tensors, and this thread
 * asleep until the workers answer (src/pipeline/parallel-analysis.ts waitForAnswers).
 */
const WAITING = new Set(['(idle)', 'waitForAnswers']);

/** The `top` functions by self time over every profile in `dir`. */
export function summariseProfiles(dir: string, top = 15): ProfileSummary {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const self = new Map<string, { fn: string; file: string; us: number }>();
  let busy = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
    for (let i = 0; i < p.samples.length; i++) {
      const frame = byId.get(p.samples[i]!)!;
      const us = p.timeDeltas[i] ?? 0;
      if (WAITING.has(frame.functionName)) continue;
      const file = frame.url.split('/').slice(-2).join('/');
      const key = `${frame.functionName} ${file}`;
      const row = self.get(key) ?? { fn: frame.functionName || '(anonymous)', file, us: 0 };
      row.us += us;
      self.set(key, row);
      busy += us;
    }
  }
  const rows = [...self.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    threads: files.length,
    busySeconds: busy / 1e6,
    top: rows.map((r) => ({ fn: r.fn, file: r.file, seconds: r.us / 1e6, share: busy > 0 ? r.us / busy : 0 })),
  };
}
