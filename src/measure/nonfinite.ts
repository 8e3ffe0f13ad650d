/**
 * Non-finite weights (docs/reliability.md): NaN, ±Inf, and finite values that overflow the target
 * dtype, counted where a tensor is read anyway (the analysis' decode, the writer's read). Refused
 * unless `allowNonFinite`; then recorded in the manifest and the model card.
 */
import { SwanError } from '../errors.js';
import { anyNonFinite, describeNonFinite, type FloatDType, type NonFiniteCounts } from '../io/float.js';
import type { TensorInfo } from '../io/safetensors.js';

/** The counts when there are any (to record), after refusing them unless allowed; undefined when none. */
export function checkNonFinite(info: TensorInfo, c: NonFiniteCounts, target: FloatDType, allow: boolean): NonFiniteCounts | undefined {
  if (!anyNonFinite(c)) return undefined;
  if (!allow) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    throw new SwanError(info.file, `tensor ${info.name} has ${describeNonFinite(c, target)} (of ${n.toLocaleString('en-US')} values); pass --allow-nonfinite to keep going`);
  }
  return c;
}
