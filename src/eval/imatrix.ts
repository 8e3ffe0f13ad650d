/**
 * `swan imatrix`: each linear layer's per-input-channel mean square activation (llama.cpp's
 * importance matrix) through real mlx-lm, a thin wrapper over scripts/mlx_imatrix.py in the repo's
 * venv (its docstring has the protocol). Calibration is a user text or the model's own samples
 * (`selfTokens`); swan never reads other data.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SwanError } from '../errors.js';
import { readSafetensorsHeader } from '../io/safetensors.js';
import { PACKAGE_ROOT, runWorker } from '../python.js';
import { blasPreload } from './evaluate.js';

export const IMATRIX_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'mlx_imatrix.py');
/** The `format` field of every imatrix file swan writes. */
export const IMATRIX_FORMAT = 'swan-imatrix';
/** The safetensors metadata `format` of every covariance file swan writes (`--covariance`). */
export const COVARIANCE_FORMAT = 'swan-imatrix-covariance';

export interface ImatrixOptions {
  /** Calibrate on this UTF-8 text (never an evaluation text). */
  text?: string;
  /** Or on this many tokens the model samples itself from its chat template. */
  selfTokens?: number;
  /** Window length (default 512). */
  seqLen?: number;
  /** Seed of the self-generated samples (default 0). */
  seed?: number;
  /**
   * Also record each layer input's E[x xᵀ] for `--rounding gptq`, in covariancePath(out) beside the
   * JSON (in² float32 values per distinct input: 0.4 GB for SmolLM2-135M).
   */
  covariance?: boolean;
  /** Replace `out` (and its covariance file) when swan wrote them. */
  overwrite?: boolean;
  progress?: boolean;
  timeoutMs?: number;
}

export interface ImatrixSummary {
  tokens: number;
  entries: number;
  /** The covariance file written, when asked. */
  covariance?: string;
}

/** Where `swan imatrix --covariance` puts the covariances of imatrix `out`: beside it, `.json` replaced by `.cov.safetensors`. */
export function covariancePath(out: string): string {
  return join(dirname(out), `${basename(out).replace(/\.json$/i, '')}.cov.safetensors`);
}

/** Run the worker; writes `out` (atomically) and returns what it holds. */
export function computeImatrix(model: string, out: string, o: ImatrixOptions): ImatrixSummary {
  if ((o.text === undefined) === (o.selfTokens === undefined)) throw new Error('give --text FILE or --self N (one of them)');
  if (o.text !== undefined && (!existsSync(o.text) || !statSync(o.text).isFile())) throw new SwanError(o.text, 'not a readable file');
  if (o.selfTokens !== undefined && !(Number.isInteger(o.selfTokens) && o.selfTokens > 0)) throw new Error(`--self needs a positive number of tokens (got ${o.selfTokens})`);
  if (existsSync(out)) {
    if (!o.overwrite) throw new SwanError(out, 'exists; pass --overwrite to replace it');
    if (!isImatrixFile(out)) throw new SwanError(out, 'exists and is not an imatrix file swan wrote; not replacing it');
  }
  const cov = o.covariance ? covariancePath(out) : undefined;
  if (cov !== undefined && existsSync(cov)) {
    if (!o.overwrite) throw new SwanError(cov, 'exists; pass --overwrite to replace it');
    if (!isCovarianceFile(cov)) throw new SwanError(cov, 'exists and is not a covariance file swan wrote; not replacing it');
  }
  const args = [model, out, '--seq-len', String(o.seqLen ?? 512), '--seed', String(o.seed ?? 0)];
  if (cov !== undefined) args.push('--covariance', cov);
  if (o.text !== undefined) args.push('--text', o.text);
  else args.push('--self', String(o.selfTokens));
  if (o.progress) args.push('--progress');
  // Float forward passes, as in `swan eval`: the system OpenBLAS on Linux where installed (~20× netlib).
  runWorker(IMATRIX_SCRIPT, args, { name: 'mlx_imatrix', label: 'imatrix', progress: o.progress, timeoutMs: o.timeoutMs, env: blasPreload(true) });
  const json = JSON.parse(readFileSync(out, 'utf8')) as { tokens: number; entries: Record<string, unknown> };
  return { tokens: json.tokens, entries: Object.keys(json.entries).length, covariance: cov };
}

function isCovarianceFile(path: string): boolean {
  try {
    return readSafetensorsHeader(path).metadata.format === COVARIANCE_FORMAT;
  } catch {
    return false;
  }
}

function isImatrixFile(path: string): boolean {
  try {
    return statSync(path).isFile() && (JSON.parse(readFileSync(path, 'utf8')) as { format?: unknown }).format === IMATRIX_FORMAT;
  } catch {
    return false;
  }
}
