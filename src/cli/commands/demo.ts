import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { quantizeModel } from '../../pipeline/quantize.js';
import { DEFAULT_SEED } from '../../rng.js';
import { DEMO_SHAPE, writeSynthCheckpoint } from '../../synth/checkpoint.js';
import { progressBar } from '../progress.js';
import { allocationSummary } from '../summary.js';

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
    });
}
