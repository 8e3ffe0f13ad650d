/**
 * Perplexity and KL through real mlx-lm: a thin wrapper over scripts/mlx_eval.py in the repo's venv.
 * The windowing protocol is documented in docs/eval.md and in the script's docstring.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SwanError } from '../errors.js';
import { PACKAGE_ROOT, runWorker } from '../python.js';

export const EVAL_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'mlx_eval.py');

/** mlx_lm.perplexity's default seed; the window choice depends on it. */
export const DEFAULT_EVAL_SEED = 123;
export const DEFAULT_SEQ_LEN = 512;
export const DEFAULT_SAMPLES = 64;

export type ComputeDType = 'model' | 'float32';

export interface EvalOptions {
  /** UTF-8 text file; the whole file is tokenized as one string. */
  text: string;
  /** Window length in tokens (default 512). */
  seqLen?: number;
  /** Windows to score, drawn with `seed` (default 64); 0 = every window. */
  samples?: number;
  seed?: number;
  /** Source model: adds the mean KL(P_source ‖ P_model) over the same tokens. */
  vs?: string;
  /** Windows per forward pass (default 8). Does not change the numbers beyond float rounding. */
  batch?: number;
  /**
   * `float32` (default): float params (norms, float layers, scales, biases) cast to float32 after
   * loading. Dequantized weights are unchanged; activations lose bf16 rounding, which otherwise
   * dominates small differences (8-bit vs source on stories260K: KL 0.0067 in bf16, 0.0008 in
   * float32), and MLX's CPU kernels run faster. `model`: as mlx-lm loads it (what mlx_lm.perplexity
   * measures; less memory for a large bf16 source).
   */
  computeDtype?: ComputeDType;
  /** Per-model progress bar from the script on stderr. */
  progress?: boolean;
  /**
   * Linux: preload the system OpenBLAS (`libopenblas.so.0`, e.g. Debian's libopenblas0-pthread) into
   * the Python worker when it is installed, so MLX's CPU float matmuls use it instead of the netlib
   * BLAS the mlx[cpu] wheels bundle (~20× faster). Default true; no effect elsewhere or when absent.
   */
  systemBlas?: boolean;
  /**
   * Run quantized layers as float matmuls of their dequantized weights: `auto` (default) where the
   * quantized kernels are the slow path (MLX's CPU backend), `on`, `off`. Same numbers up to
   * summation order (docs/eval.md).
   */
  dequantize?: 'auto' | 'on' | 'off';
  timeoutMs?: number;
}

export interface EvalResult {
  model: string;
  ppl: number;
  /** PPL·std(CE)/√N over tokens, as mlx_lm.perplexity reports it. */
  pplStderr: number;
  /** PPL·std(per-window mean CE)/√windows: the sampling error of a subset of windows (larger). */
  pplStderrWindows?: number;
  meanCe: number;
  /** Mean cross-entropy of each window (same order for every model of a run): for paired errors. */
  windowCe?: number[];
  /** Scored tokens: windows × (seqLen − 1). */
  tokens: number;
  windows: number;
  /** Mean KL(P_source ‖ P_model) in nats per token (with `vs`). */
  kl?: number;
  klStderr?: number;
  /** Share of tokens whose most likely next token agrees with the source's (with `vs`). */
  top1Agree?: number;
  seconds: number;
}

export interface EvalProtocol {
  text: string;
  /** Whether quantized layers ran dequantized, and which BLAS served float matmuls. */
  dequantized?: boolean;
  blas?: string;
  seqLen: number;
  samples: number;
  seed: number;
  computeDtype: ComputeDType;
  windowsAvailable: number;
  windowsUsed: number;
  textTokens: number;
  mlx: string;
  mlxLm: string;
}

export interface EvalReport {
  protocol: EvalProtocol;
  /** The source's own numbers on the same windows (with `vs`). */
  source?: EvalResult;
  results: EvalResult[];
}

function toResult(r: Record<string, any>): EvalResult {
  return {
    model: r.model,
    ppl: r.ppl,
    pplStderr: r.ppl_stderr,
    pplStderrWindows: r.ppl_stderr_windows,
    meanCe: r.mean_ce,
    windowCe: r.window_ce,
    tokens: r.tokens_scored,
    windows: r.windows,
    kl: r.kl,
    klStderr: r.kl_stderr,
    top1Agree: r.top1_agree,
    seconds: r.seconds,
  };
}

/** Where Linux distributions put the OpenBLAS runtime (Debian/Ubuntu multiarch, Fedora/Arch). */
const OPENBLAS_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libopenblas.so.0',
  '/usr/lib/aarch64-linux-gnu/libopenblas.so.0',
  '/usr/lib64/libopenblas.so.0',
  '/usr/lib/libopenblas.so.0',
];

/** LD_PRELOAD for the Python worker: the system OpenBLAS on Linux when present (macOS keeps Accelerate/Metal). */
export function blasPreload(enabled: boolean): Record<string, string> {
  if (!enabled || process.platform !== 'linux') return {};
  const lib = OPENBLAS_PATHS.find((p) => existsSync(p));
  if (!lib) return {};
  const prev = process.env.LD_PRELOAD;
  if (prev?.includes('openblas')) return {};
  return { LD_PRELOAD: prev ? `${lib}:${prev}` : lib };
}

function checkOptions(dirs: string[], o: EvalOptions): void {
  if (!existsSync(o.text) || !statSync(o.text).isFile()) throw new SwanError(o.text, 'no such text file');
  for (const d of [...dirs, ...(o.vs ? [o.vs] : [])]) {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new SwanError(d, 'no such model directory');
    if (!existsSync(join(d, 'config.json'))) throw new SwanError(d, 'has no config.json');
  }
  const int = (v: number | undefined, min: number, what: string) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new SwanError(what, `must be an integer ≥ ${min} (got ${v})`);
  };
  int(o.seqLen, 2, '--seq-len');
  int(o.samples, 0, '--samples');
  int(o.seed, 0, '--seed');
  int(o.batch, 1, '--batch');
}

/**
 * Evaluate several models in one Python process: one start-up, one tokenisation, and the source's
 * log-probs computed once for all of them.
 */
export function evaluateModels(dirs: string[], o: EvalOptions): EvalReport {
  if (dirs.length === 0) throw new Error('evaluateModels: no model given');
  checkOptions(dirs, o);
  const args = [
    EVAL_SCRIPT,
    ...dirs,
    '--text', o.text,
    '--seq-len', String(o.seqLen ?? DEFAULT_SEQ_LEN),
    '--samples', String(o.samples ?? DEFAULT_SAMPLES),
    '--seed', String(o.seed ?? DEFAULT_EVAL_SEED),
    '--batch', String(o.batch ?? 8),
    '--compute-dtype', o.computeDtype ?? 'float32',
  ];
  if (o.vs) args.push('--vs', o.vs);
  if (o.progress) args.push('--progress');
  if (o.dequantize) args.push('--dequantize', o.dequantize);
  const stdout = runWorker(args[0]!, args.slice(1), {
    name: 'mlx_eval',
    label: 'evaluation',
    progress: o.progress,
    timeoutMs: o.timeoutMs,
    env: blasPreload(o.systemBlas ?? true),
  });
  const out = JSON.parse(stdout) as Record<string, any>;
  const p = out.protocol;
  return {
    protocol: {
      text: p.text,
      seqLen: p.seq_len,
      samples: p.samples,
      seed: p.seed,
      computeDtype: p.compute_dtype,
      dequantized: p.dequantized,
      blas: p.blas,
      windowsAvailable: p.windows_available,
      windowsUsed: p.windows_used,
      textTokens: p.text_tokens,
      mlx: p.mlx,
      mlxLm: p.mlx_lm,
    },
    source: out.source ? toResult(out.source) : undefined,
    results: (out.results as Record<string, any>[]).map(toResult),
  };
}

/** `swan eval`: perplexity of one model (and KL vs `vs`, whose own numbers come back as `source`). */
export function evaluateModel(dir: string, o: EvalOptions): EvalResult & { source?: EvalResult; protocol: EvalProtocol } {
  const rep = evaluateModels([dir], o);
  return { ...rep.results[0]!, source: rep.source, protocol: rep.protocol };
}

/** One line describing the protocol, for reports and model cards. */
export function protocolLine(p: EvalProtocol): string {
  const which = p.windowsUsed < p.windowsAvailable ? `${p.windowsUsed} of ${p.windowsAvailable} windows drawn with seed ${p.seed}` : `all ${p.windowsAvailable} windows`;
  return `${p.seqLen}-token non-overlapping windows, ${which} (${(p.windowsUsed * (p.seqLen - 1)).toLocaleString('en-US')} scored tokens), compute dtype ${p.computeDtype}${p.dequantized ? ' (quantized layers dequantized)' : ''}, mlx ${p.mlx}, mlx-lm ${p.mlxLm}`;
}
