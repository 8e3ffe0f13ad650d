/**
 * The Python baseline: bench/py/baseline.py runs the reference analyzer's four metric operations
 * (torch, else numpy) on the same shapes and distribution as swan's per-shape measurement.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { MetricSeconds, RawMetrics } from '../../src/metrics/index.js';
import { PACKAGE_ROOT } from '../../src/python.js';
import { benchEnv } from './machine.js';
import { SEED, type ShapeSpec } from './shapes.js';

export interface BaselineRuntime {
  impl: 'torch' | 'numpy';
  python: string;
  numpy: string;
  torch?: string;
  threads: number;
  mkl?: boolean;
}

export interface BaselineShape {
  label: string;
  rows: number;
  cols: number;
  measured_rows: number;
  repeats: number;
  totals: number[];
  seconds: MetricSeconds;
  total: number;
  wall: number;
  cpu: number;
  other_cores: number | null;
  values: RawMetrics;
  max_rss_mb: number;
}

export interface BaselineOutput {
  python: string;
  runtime: BaselineRuntime;
  shapes: BaselineShape[];
}

/** bench/py/baseline.py with `spec` as its argument: its JSON lines. */
function runBaselineScript(python: string, spec: unknown): { kind: string }[] {
  const r = spawnSync(python, [join(PACKAGE_ROOT, 'bench', 'py', 'baseline.py'), JSON.stringify(spec)], {
    env: benchEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`baseline.py failed (status ${r.status}, signal ${r.signal})`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
}

/** The bench venv's python (created by scripts/setup-bench-venv.sh unless quick), else the mlx venv's (numpy). */
export function baselinePython(quick: boolean): string | null {
  const bench = process.env.SWAN_BENCH_VENV ?? join(PACKAGE_ROOT, '.venv-bench');
  if (!quick && !existsSync(join(bench, '.swan-bench'))) {
    spawnSync('bash', [join(PACKAGE_ROOT, 'scripts', 'setup-bench-venv.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const candidates = [join(bench, 'bin', 'python'), join(process.env.SWAN_VENV ?? join(PACKAGE_ROOT, '.venv'), 'bin', 'python')];
  return candidates.find((p) => existsSync(p)) ?? null;
}

export function runBaseline(python: string, shapes: ShapeSpec[]): BaselineOutput {
  const spec = {
    seed: SEED,
    shapes: shapes.map((s) => ({ label: s.label, rows: s.rows, cols: s.cols, measure_rows: s.measureRows ?? s.rows, repeats: s.repeats })),
  };
  const objs = runBaselineScript(python, spec);
  return {
    python,
    runtime: objs.find((o) => o.kind === 'runtime') as unknown as BaselineRuntime,
    shapes: objs.filter((o) => o.kind === 'shape') as unknown as BaselineShape[],
  };
}

/** bench/py/baseline.py in model mode: the reference's operations on every tensor of a real checkpoint. */
export interface ModelBaseline {
  scored: number;
  skipped: number;
  seconds: MetricSeconds;
  wall: number;
  cpu: number;
  other_cores: number | null;
  max_rss_mb: number;
}

export interface ModelBaselineOutput {
  python: string;
  runtime: BaselineRuntime;
  model: ModelBaseline;
}

export function runModelBaseline(python: string, dir: string): ModelBaselineOutput {
  const objs = runBaselineScript(python, { seed: SEED, model: dir });
  return {
    python,
    runtime: objs.find((o) => o.kind === 'runtime') as unknown as BaselineRuntime,
    model: objs.find((o) => o.kind === 'model') as unknown as ModelBaseline,
  };
}
