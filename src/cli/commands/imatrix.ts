import { Command } from 'commander';
import { computeImatrix } from '../../eval/imatrix.js';
import { atLeast, nonNegInt } from '../options.js';

interface ImatrixFlags {
  output: string;
  text?: string;
  self?: number;
  seqLen: number;
  seed: number;
  covariance?: boolean;
  overwrite?: boolean;
  quiet?: boolean;
}

export function imatrixCommand(): Command {
  return new Command('imatrix')
    .description(
      "per linear layer, the mean square of each input channel (llama.cpp's importance matrix) through real mlx-lm, from your text or from the model's own samples; for `swan quantize --imatrix` (opt-in self-calibration: no dataset)",
    )
    .argument('<model-dir>', 'model directory mlx-lm can load (the HF source you will quantize)')
    .requiredOption('-o, --output <file>', 'imatrix JSON to write')
    .option('--text <file>', 'calibrate on this UTF-8 text (never on the text you evaluate on)')
    .option('--self <n>', 'calibrate on N tokens the model samples itself from its chat template (seeded; no outside data)', atLeast(1))
    .option('--seq-len <n>', 'tokens per window (and per self-generated sequence)', atLeast(2), 512)
    .option('--seed <n>', 'seed of the self-generated samples', nonNegInt, 0)
    .option(
      '--covariance',
      "also record each layer input's full E[x xᵀ] for GPTQ (`swan quantize --imatrix` then rounds by GPTQ), beside the JSON (imatrix.json → imatrix.cov.safetensors); in² float32 per distinct input: 0.4 GB for SmolLM2-135M, ~20 GB for a 7B model, and twice that in memory while it is measured (float64 sums)",
    )
    .option('--overwrite', 'replace the output file(s) if swan wrote them')
    .option('-q, --quiet', 'no progress on stderr')
    .action((dir: string, f: ImatrixFlags) => {
      const r = computeImatrix(dir, f.output, { text: f.text, selfTokens: f.self, seqLen: f.seqLen, seed: f.seed, covariance: f.covariance, overwrite: f.overwrite, progress: !f.quiet });
      if (!f.quiet) process.stdout.write(`wrote ${f.output}${r.covariance ? ` and ${r.covariance}` : ''}: ${r.entries} layers, ${r.tokens.toLocaleString('en-US')} tokens\n`);
    });
}
