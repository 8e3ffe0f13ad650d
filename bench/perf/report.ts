/**
 * The measurement JSON of a run (what --save-json writes and --render-json reads), and the
 * arithmetic on it that both the projection and the report use.
 */
import type { BaselineOutput } from './baseline.js';
import { f } from './format.js';
import type { E2eOutput, ShapesOutput } from './measure.js';
import type { ShapeSpec } from './shapes.js';

/** Per-tensor seconds of the full shape: a measured row slice is scaled by rows (every step is linear in m). */
export function fullTensorSeconds(r: { total: number; rows: number; measuredRows?: number; measured_rows?: number }): number {
  const measured = r.measuredRows ?? r.measured_rows ?? r.rows;
  return r.total * (r.rows / measured);
}

export interface Projection {
  /** bf16 bytes of the whole 8B checkpoint and of its linear (quantized) tensors. */
  bytes: number;
  linearBytes: number;
  linearTensors: number;
  /** Read + bf16→f32 of the linear tensors for analysis (protected tensors are not read when unscored). */
  readSeconds: number;
  /** Kurtosis + error proxy of every linear tensor (quantize-path timings). */
  cheapSeconds: number;
  /** SVD + output noise of every linear tensor (f = 1); the default path pays f times this. */
  spectralSeconds: number;
  /** All four metrics of embed_tokens and lm_head (only with --score-protected). */
  protectedMetricSeconds: number;
  /** Quantize + write at the end-to-end run's seconds per source byte. */
  writeSeconds: number;
  /** Cross-check: Σ count × (decode + cast + quantizeAffine + pack) of the linear tensors, no disk. */
  writeComputeSeconds: number;
  /** Measured f on the generated 0.6B-shaped checkpoint. */
  synthF: number;
}

/** Projected seconds of `swan quantize` on Qwen3-8B when a fraction f of the linear tensors needs the SVD and output metrics. */
export function projectedTotal(p: Projection, fraction: number, scoreProtected = false): number {
  return p.readSeconds + p.cheapSeconds + fraction * p.spectralSeconds + p.writeSeconds + (scoreProtected ? p.protectedMetricSeconds : 0);
}

export interface Report {
  quick: boolean;
  date: string;
  machine: string[];
  loadStart: string;
  loadEnd: string;
  shapes: ShapeSpec[];
  swan: ShapesOutput;
  swanLoad: [string, string];
  baseline: BaselineOutput | { skipped: string };
  baselineLoad: [string, string] | null;
  e2e: E2eOutput & { label: string; genSeconds: number; layers: number };
  /** The same run with --all-metrics (null when skipped). */
  e2eAll: E2eOutput | null;
  rss: (E2eOutput & { layers: number })[];
  projection: Projection;
  benchSeconds: number;
  cpuSeconds: number;
}

/**
 * Why the swan/baseline ratio of a shape is unreliable, or null: the two sides' other load differs by
 * more than half a core, or one side ran with half a core or more of other load (2 cores: its
 * multi-threaded wall time is then inflated by up to 2×).
 */
export function loadFlag(r: Report, label: string): string | null {
  if ('skipped' in r.baseline) return null;
  const o = r.swan.results.find((x) => x.label === label)?.otherCores ?? null;
  const b = r.baseline.shapes.find((x) => x.label === label)?.other_cores ?? null;
  if (o === null || b === null) return null;
  if (Math.abs(o - b) > 0.5) return `other load swan ${f(o)} vs baseline ${f(b)} cores: uneven`;
  if (Math.max(o, b) >= 0.5) return `other load swan ${f(o)}, baseline ${f(b)} cores`;
  return null;
}
