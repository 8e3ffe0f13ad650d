/** `--eval FILE` of `swan quantize`: the options, and the run after the output is written (src/eval/card-results.ts). */
import { join } from 'node:path';
import type { Command } from 'commander';
import { evaluateIntoCard } from '../eval/card-results.js';
import { DEFAULT_EVAL_SEED, DEFAULT_SAMPLES, DEFAULT_SEQ_LEN } from '../eval/evaluate.js';
import type { CardResult } from '../report/model-card.js';
import { atLeast } from './options.js';

export interface CardEvalFlags {
  eval?: string[];
  evalSamples: number;
  evalSeqLen: number;
  evalSeed: number;
}

/** Adds `--eval FILE` (repeatable) and its window options to a command. */
export function addEvalOptions(cmd: Command): Command {
  return cmd
    .option(
      '--eval <text-file>',
      'after writing, measure perplexity and KL vs the source on this text through mlx-lm and add them to the model card (repeatable)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--eval-samples <n>', 'windows per --eval text (0 = all)', atLeast(0), DEFAULT_SAMPLES)
    .option('--eval-seq-len <n>', 'tokens per --eval window', atLeast(2), DEFAULT_SEQ_LEN)
    .option('--eval-seed <n>', 'seed of the --eval window draw', atLeast(0), DEFAULT_EVAL_SEED);
}

/** The `swan quantize` side: run when `--eval` was given, print a short summary. */
export function quantizeEval(sourceDir: string, outDir: string, f: CardEvalFlags, show: boolean): void {
  if (!f.eval?.length) return;
  let results: CardResult[];
  try {
    results = evaluateIntoCard(outDir, sourceDir, f.eval, { samples: f.evalSamples, seqLen: f.evalSeqLen, seed: f.evalSeed, progress: show });
  } catch (e) {
    throw new Error(`${outDir} was written, but --eval failed: ${(e as Error).message}`);
  }
  if (show) {
    for (const r of results) {
      const d = r.sourcePpl === undefined ? '' : ` (source ${r.sourcePpl.toFixed(4)}, ΔPPL ${r.ppl - r.sourcePpl >= 0 ? '+' : ''}${(r.ppl - r.sourcePpl).toFixed(4)})`;
      process.stdout.write(`eval ${r.text}: PPL ${r.ppl.toFixed(4)}${d}, KL ${r.kl?.toFixed(5) ?? '—'}\n`);
    }
    process.stdout.write(`results added to ${join(outDir, 'README.md')}\n`);
  }
}
