/**
 * `swan quantize --eval FILE`: after the output is written, measure it (and the source, on the same
 * windows) through mlx-lm and put the numbers into the model card's results table.
 *
 * Kept apart from the quantize pipeline on purpose: it runs after the atomic write, so a failed
 * evaluation never loses the written model, and the card is rewritten in place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../io/atomic-file.js';
import { resultsSection, type CardResult } from '../report/model-card.js';
import { evaluateModel, type EvalOptions, type EvalProtocol } from './evaluate.js';

export type CardEvalOptions = Omit<EvalOptions, 'text' | 'vs'>;

function protocolText(ps: EvalProtocol[]): string {
  const p = ps[0]!;
  const per = ps
    .map((q) => `${basename(q.text)}: ${q.windowsUsed < q.windowsAvailable ? `${q.windowsUsed} of ${q.windowsAvailable}` : `all ${q.windowsAvailable}`} windows`)
    .join(', ');
  return (
    `${p.seqLen}-token non-overlapping windows drawn with seed ${p.seed} (${per}); ` +
    `PPL = exp(mean cross-entropy), KL = mean KL(P_source ‖ P_model) per token; compute dtype ${p.computeDtype}; mlx ${p.mlx}, mlx-lm ${p.mlxLm}`
  );
}

/** Replace (or add) the `## Results` section of a model card, before the usage section. */
export function setCardResults(readme: string, section: string): string {
  let text = readme;
  const start = text.indexOf('\n## Results\n');
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + 1);
    text = text.slice(0, start + 1) + (next >= 0 ? text.slice(next + 1) : '');
  }
  const use = text.indexOf('\n## Use with mlx-lm');
  const block = section.replace(/\n*$/, '\n\n');
  if (use >= 0) return text.slice(0, use + 1) + block + text.slice(use + 1);
  return text.replace(/\n*$/, '\n\n') + section.replace(/\n*$/, '\n');
}

/** Evaluate `outDir` against `sourceDir` on each text and write the results into its README.md. */
export function evaluateIntoCard(outDir: string, sourceDir: string, texts: string[], o: CardEvalOptions = {}): CardResult[] {
  const results: CardResult[] = [];
  const protocols: EvalProtocol[] = [];
  for (const text of texts) {
    const r = evaluateModel(outDir, { ...o, text, vs: sourceDir });
    protocols.push(r.protocol);
    results.push({ label: basename(outDir), text: basename(text), ppl: r.ppl, kl: r.kl, sourcePpl: r.source?.ppl, top1Agree: r.top1Agree });
  }
  const card = join(outDir, 'README.md');
  const old = existsSync(card) ? readFileSync(card, 'utf8') : '';
  // The card is swan's own: outDir is an output swan just wrote.
  writeFileAtomic(card, setCardResults(old, resultsSection(results, protocolText(protocols))), { replaces: () => true });
  return results;
}

