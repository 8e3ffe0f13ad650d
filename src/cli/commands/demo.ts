import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { quantizeModel } from '../../pipeline/quantize.js';
import { DEFAULT_SEED } from '../../rng.js';
import { DEMO_SHAPE, writeSynthCheckpoint } from '../../synth/checkpoint.js';
import { progressBar } from '../progress.js';
import { allocationSummary } from '../summary.js';

/** What to try next, and where the demo's files are (kept, so the next commands have a model to read). */
function nextSteps(root: string, out: string, temporary: boolean): string {
  return [
    '',
    'Next:',
    `  swan report ${out} -o swan-report.html                  # the allocation as an HTML report`,
    '  swan quantize HuggingFaceTB/SmolLM2-135M-Instruct -o smollm2-swan   # a real model, from the Hub',
    '  mlx_lm.generate --model smollm2-swan --prompt "Hello"              # run it (the demo model has no tokenizer)',
    '',
    temporary ? `The demo's files stay in ${root} for the commands above; remove them with: rm -rf ${root}` : `The demo's files are in ${root}.`,
    '',
  ].join('\n');
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('generate a small Llama-shaped checkpoint with heavy-tailed weights, analyse and quantize it')
    .option('--dir <dir>', 'where to put the demo checkpoint and output (default: a new temp dir)')
    .action((flags: { dir?: string }) => {
      const root = flags.dir ?? mkdtempSync(join(tmpdir(), 'swan-demo-'));
      const src = join(root, 'demo-llama-hf');
      const out = join(root, 'demo-llama-swan-mlx');
      const s = DEMO_SHAPE;
      process.stdout.write(
        `generating a ${s.layers}-layer Llama (hidden ${s.hidden}, intermediate ${s.intermediate}, vocab ${s.vocab}, bf16) in ${src}\n`,
      );
      writeSynthCheckpoint(src, s, { seed: DEFAULT_SEED });
      const analyzeBar = progressBar('analyze', true);
      const writeBar = progressBar('write', true);
      const r = quantizeModel(src, out, {
        strategy: 'thresholds',
        overwrite: true,
        onAnalyze: (d, t, a) => analyzeBar.update(d, t, a.name),
        onWrite: (d, t, n) => writeBar.update(d, t, n),
      });
      analyzeBar.stop();
      writeBar.stop();
      const rows = r.manifest
        ? Object.values(r.manifest.shards)
            .flatMap((sh) => Object.entries(sh.tensors))
            .filter(([, t]) => t.raw_metrics)
            .map(([n, t]) => `  ${n.padEnd(42)} S=${t.composite_score.toFixed(3)} kurt=${t.raw_metrics!.kurtosis.toFixed(2).padStart(6)} → ${t.decision.bits}-bit`)
        : [];
      process.stdout.write(`\nSWAN scores (composite S, excess kurtosis, decision):\n${rows.join('\n')}\n\n${allocationSummary(r.plan)}\n\nMLX model: ${out}\n`);
      process.stdout.write(nextSteps(root, out, flags.dir === undefined));
    });
}
