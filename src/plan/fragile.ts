/**
 * Roles whose quantization error reaches the logits directly: the output head, and the embedding
 * when it is tied to the head. Below FRAGILE_FLOOR_BITS quality falls off a cliff there (SmolLM2-135M:
 * a 70 MB target put its tied embedding at 3-bit and the KL to the source went from 0.39 to
 * 0.65–0.94, issue 13), so a plan that does it is flagged, whatever its expected damage says.
 */
import { formatLabel } from '../format.js';
import { writtenEntries, type Plan } from './plan.js';

export const FRAGILE_FLOOR_BITS = 4;

/** One warning line per written head (or tied embedding) below the floor; none when the plan keeps them at or above it. */
export function fragileWarnings(plan: Plan, tied: boolean): string[] {
  const out: string[] = [];
  for (const e of writtenEntries(plan)) {
    const what = e.record.role === 'head' ? 'the output head' : e.record.role === 'embedding' && tied ? 'the tied embedding (also the output head)' : undefined;
    if (!what || e.format.kind !== 'affine' || e.format.bits >= FRAGILE_FLOOR_BITS) continue;
    out.push(
      `${e.hfName} is ${what} and the plan stores it at ${formatLabel(e.format, plan.dtype)}, below ${FRAGILE_FLOOR_BITS} bits: ` +
        `quality falls off sharply there; raise the target (--target-bpw/--target-size) or pass --sensitive ${e.record.role === 'head' ? 'lm_head' : 'embed_tokens'}`,
    );
  }
  return out;
}
