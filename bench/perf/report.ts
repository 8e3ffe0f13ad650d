/**
 * The measurement JSON of a run (what --save-json writes and --render-json reads), and the
 * arithmetic on it that both the projection and the report use.
 */
import type { BaselineOutput } from './baseline.js';
import type { LoadAvg, Machine } from './machine.js';
import type { E2eOutput, ShapesOutput } from './measure.js';
import type { ShapeSpec } from './shapes.js';
import type { SmolReport } from './smollm2.js';

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
  /**
   * Smallest excess kurtosis at which kurtosis and an error-proxy score of 1 leave a default-class
   * tensor's bits undecided with the default thresholds (null: decided up to 10), so it needs the
   * SVD and output metrics.
   */
  kurtosisBoundary: number | null;
}

/** Projected seconds of `swan quantize` on Qwen3-8B when a fraction f of the linear tensors needs the SVD and output metrics. */
export function projectedTotal(p: Projection, fraction: number, scoreProtected = false): number {
  return p.readSeconds + p.cheapSeconds + fraction * p.spectralSeconds + p.writeSeconds + (scoreProtected ? p.protectedMetricSeconds : 0);
}

export interface Report {
  quick: boolean;
  date: string;
  machine: Machine;
  /** Load average when the run started, before and after the per-shape runs, and at the end. */
  load: { start: LoadAvg; shapesStart: LoadAvg; shapesEnd: LoadAvg; end: LoadAvg };
  shapes: ShapeSpec[];
  swan: ShapesOutput;
  baseline: BaselineOutput | { skipped: string };
  e2e: E2eOutput & { label: string; genSeconds: number; layers: number };
  /** The same run with --all-metrics (null when skipped). */
  e2eAll: E2eOutput | null;
  rss: (E2eOutput & { layers: number })[];
  projection: Projection;
  /** The real-model section (absent in runs saved before it existed). */
  smollm2?: SmolReport | { skipped: string };
  benchSeconds: number;
  /** CPU seconds of the parent process (generation, spawning); the children's are in their own rows. */
  cpuSeconds: number;
}
