/**
 * Encoding a tensor in the analysis that reads it, for `swan quantize --strategy thresholds`: that
 * plan gives each tensor its format from its own decision (planThresholds works tensor by tensor),
 * so the analysis, which holds the tensor's float32 values, can encode it at once, and the writer
 * does not read and decode it a second time. The writer takes such bytes only where the plan's
 * format is the one encoded (always, for this plan; the check keeps a mismatch from ever writing
 * other bytes than encodeEntry's).
 *
 * Memory: the encoded bytes wait for the writer, so the caller asks for this only for models small
 * enough to keep their output in memory (EARLY_ENCODE_MAX_BYTES).
 */
import type { TensorFormat } from '../format.js';
import { anyNonFinite } from '../io/float.js';
import { analyzeEntry, type AnalysisContext, type EntryAnalysis } from '../measure/analyze.js';
import { planThresholds, type ThresholdsOptions } from '../plan/thresholds.js';
import { swanDecision } from '../plan/swan-rules.js';
import { encodeEntryFrom, type EncodeExec, type Encoded } from './encode-tensor.js';

/** Models whose source tensors take at most this many bytes are encoded in their analysis (quantize.ts). */
export const EARLY_ENCODE_MAX_BYTES = 1 << 30;

/** How the plan will encode (plain data: it crosses to worker threads). */
export interface EarlyEncodeSpec {
  exec: EncodeExec;
  thresholds: ThresholdsOptions;
}

/** A tensor's bytes encoded in its analysis, and the format they are in. */
export interface EarlyEncoded {
  format: TensorFormat;
  encoded: Encoded;
}

/** analyzeEntry, and with `spec` the entry encoded in the format its thresholds plan entry will have. */
export function analyzeAndEncode(ctx: AnalysisContext, index: number, spec?: EarlyEncodeSpec): { entry: EntryAnalysis; early?: EarlyEncoded } {
  let values: Float32Array | undefined;
  const entry = analyzeEntry(ctx, index, spec && ((v) => (values = v)));
  if (!spec || !values) return { entry };
  const { info, record } = ctx.source.entries[index]!;
  if (record.mlxName === null) return { entry };
  const decision = swanDecision(entry.analysis, ctx.swan);
  const { format } = planThresholds([{ record, shape: info.shape, decision }], spec.exec.dtype, spec.thresholds).entries[0]!;
  const nonfinite = entry.nonfinite.find(([name]) => name === info.name)?.[1];
  // A float entry in the source's dtype is re-encoded from its float32 values: the same bytes for
  // finite values (the writer would copy them; here they wait ready, the first written is often an
  // embedding), but not NaN payloads (quieted by the encode): those are left to the writer.
  if (format.kind === 'float' && nonfinite && anyNonFinite(nonfinite)) return { entry };
  return { entry, early: { format, encoded: encodeEntryFrom(info, { mlxName: record.mlxName, shape: info.shape, format }, spec.exec, values, nonfinite) } };
}
