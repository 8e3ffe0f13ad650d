import { basename } from 'node:path';
import { resolveModelArg } from '../model-arg.js';
import { Command, InvalidArgumentError } from 'commander';
import {
  DEFAULT_EVAL_SEED,
  DEFAULT_SAMPLES,
  DEFAULT_SEQ_LEN,
  evaluateModel,
  protocolLine,
  type ComputeDType,
} from '../../eval/evaluate.js';
import { atLeast, nonNegInt } from '../options.js';

interface EvalFlags {
  text: string;
  seqLen: number;
  samples: number;
  seed: number;
  vs?: string;
  batch: number;
  computeDtype: ComputeDType;
  json?: boolean;
  quiet?: boolean;
  revision?: string;
  vsRevision?: string;
  systemBlas: boolean;
  dequantize: 'auto' | 'on' | 'off';
}

function dequantizeArg(v: string): 'auto' | 'on' | 'off' {
  if (v !== 'auto' && v !== 'on' && v !== 'off') throw new InvalidArgumentError('must be auto, on or off');
  return v;
}

function computeArg(v: string): ComputeDType {
  if (v !== 'model' && v !== 'float32') throw new InvalidArgumentError('must be model or float32');
  return v;
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('perplexity of an MLX (or HF) model on a text through real mlx-lm; with --vs, KL against the source (protocol: docs/eval.md)')
    .argument('<model>', 'model directory mlx-lm can load, or a Hub id (org/name)')
    .requiredOption('--text <file>', 'UTF-8 text, tokenized as one string')
    .option('--seq-len <n>', 'tokens per window', atLeast(2), DEFAULT_SEQ_LEN)
    .option('--samples <n>', 'windows to score, drawn with --seed (0 = all windows)', nonNegInt, DEFAULT_SAMPLES)
    .option('--seed <n>', 'seed of the window draw', nonNegInt, DEFAULT_EVAL_SEED)
    .option('--vs <source>', 'also the mean KL(source ‖ model) of the next-token distributions on the same windows (a directory or a Hub id)')
    .option('--revision <rev>', 'Hub branch, tag or commit of the model when it is a Hub id')
    .option('--vs-revision <rev>', 'Hub branch, tag or commit of --vs when it is a Hub id')
    .option('--batch <n>', 'windows per forward pass', atLeast(1), 8)
    .option('--compute-dtype <t>', 'float32: float params (norms, scales, biases) cast to float32 after loading, so numbers measure the weights; model: run in the stored dtype, as mlx_lm.perplexity does (less memory)', computeArg, 'float32')
    .option('--dequantize <when>', 'run quantized layers as float matmuls of their dequantized weights: auto (on MLX\'s CPU backend, where quantized matmuls are slow), on, off', dequantizeArg, 'auto')
    .option('--no-system-blas', 'Linux: do not preload the system OpenBLAS (libopenblas.so.0) for MLX\'s CPU float matmuls')
    .option('--json', 'print JSON')
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (arg: string, f: EvalFlags) => {
      const show = !f.quiet && !f.json;
      const { dir } = await resolveModelArg(arg, { revision: f.revision, show });
      const vs = f.vs === undefined ? undefined : (await resolveModelArg(f.vs, { revision: f.vsRevision, show })).dir;
      const r = evaluateModel(dir, {
        text: f.text,
        seqLen: f.seqLen,
        samples: f.samples,
        seed: f.seed,
        vs,
        batch: f.batch,
        computeDtype: f.computeDtype,
        progress: !f.quiet && !f.json,
        systemBlas: f.systemBlas,
        dequantize: f.dequantize,
      });
      if (f.json) {
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return;
      }
      const lines = [`${basename(dir)} on ${basename(f.text)}`, `  perplexity    ${r.ppl.toFixed(4)} ± ${r.pplStderr.toFixed(4)} per token` + (r.pplStderrWindows !== undefined ? ` (± ${r.pplStderrWindows.toFixed(4)} between windows)` : '')];
      if (r.source) {
        const d = r.ppl - r.source.ppl;
        lines.push(`  source        ${r.source.ppl.toFixed(4)} (ΔPPL ${d >= 0 ? '+' : ''}${d.toFixed(4)}, ${((100 * d) / r.source.ppl).toFixed(2)}%)`);
      }
      if (r.kl !== undefined) {
        lines.push(`  KL vs source  ${r.kl.toFixed(5)} ± ${(r.klStderr ?? 0).toFixed(5)} nats/token; top-1 agreement ${(100 * (r.top1Agree ?? 0)).toFixed(2)}%`);
      }
      lines.push(`protocol: ${protocolLine(r.protocol)}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
