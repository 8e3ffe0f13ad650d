/** Qwen3-8B analyse + quantize + write, projected from the per-shape and end-to-end measurements. */
import { decidedWithout } from '../../src/plan/swan-rules.js';
import { DEFAULT_SWAN_CONFIG } from '../../src/plan/swan-rules.js';
import type { E2eOutput, ShapeResult, ShapesOutput } from './measure.js';
import type { Projection } from './report.js';
import { QWEN3_8B_VECTOR_PARAMS, type ShapeSpec } from './shapes.js';

export function project(shapes: ShapeSpec[], swan: ShapesOutput, e2e: E2eOutput): Projection {
  // Qwen3-8B: 36 layers, hidden 4096, intermediate 12288, 32/8 heads of 128, vocab 151936, untied: 8.19e9 parameters.
  const params8b = shapes.reduce((s, sh) => s + sh.count * sh.rows * sh.cols, 0) + QWEN3_8B_VECTOR_PARAMS;
  const bytes = params8b * 2;
  const sw = (sh: ShapeSpec): ShapeResult => swan.results.find((x) => x.label === sh.label)!;
  const linear = shapes.filter((sh) => !/embed_tokens/.test(sh.tensors));
  const prot = shapes.filter((sh) => /embed_tokens/.test(sh.tensors));
  const sum = (list: ShapeSpec[], fn: (r: ShapeResult) => number): number => list.reduce((s, sh) => s + sh.count * fn(sw(sh)) * (sh.rows / sw(sh).measuredRows), 0);
  const linearBytes = linear.reduce((s, sh) => s + sh.count * sh.rows * sh.cols * 2, 0);
  return {
    bytes, linearBytes,
    linearTensors: linear.reduce((s, sh) => s + sh.count, 0),
    readSeconds: linearBytes / (e2e.readGBs * 1e9),
    cheapSeconds: sum(linear, (r) => r.quant.kurtosis + r.quant.errorProxy),
    spectralSeconds: sum(linear, (r) => r.seconds.svd + r.seconds.output_sensitivity),
    protectedMetricSeconds: sum(prot, (r) => r.total),
    writeSeconds: (e2e.writeSeconds / e2e.bytesIn) * bytes,
    writeComputeSeconds: sum(linear, (r) => r.quant.decode + r.quant.cast + r.quant.quantize + r.quant.pack),
    synthF: e2e.linearTensors ? e2e.fullMetricTensors / e2e.linearTensors : NaN,
    kurtosisBoundary: kurtosisBoundary(1),
  };
}

/**
 * Smallest raw excess kurtosis at which the cheap metrics no longer decide a default-class tensor's
 * bits (decidedWithout, default thresholds), for a given error-proxy score. Bisection on κ in [0, 10].
 */
function kurtosisBoundary(errorScore: number): number | null {
  const decided = (k: number): boolean => decidedWithout({ kurtosis: Math.min(k / 10, 1), error_proxy: errorScore }, 'default', DEFAULT_SWAN_CONFIG);
  if (!decided(0)) return 0;
  if (decided(10)) return null;
  let lo = 0, hi = 10;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (decided(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}
