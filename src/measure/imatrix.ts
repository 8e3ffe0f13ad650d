/**
 * An importance matrix (`swan imatrix`, scripts/mlx_imatrix.py) read for one model: per tensor,
 * the mean square activation of each input channel, E[x_j²] over the calibration tokens. With
 * `--imatrix` it replaces the norm-gain prior (input-weights.ts) wherever input channels are
 * weighed: `--rounding search`. A file made from another model (a name it lacks, a shape it does
 * not have, or a layer missing) is refused in one line. Made with `--covariance`, it also names a
 * safetensors file beside it holding each layer input's E[x xᵀ], for `--rounding gptq`.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ModelSource } from '../arch/source.js';
import type { Rounding } from '../options.js';
import { SwanError } from '../errors.js';
import { readSafetensorsHeader, type TensorInfo } from '../io/safetensors.js';

/** What an imatrix file says about itself, for the manifest. */
export interface ImatrixInfo {
  tokens: number;
  calibration: Record<string, unknown>;
}

export interface Imatrix {
  info: ImatrixInfo;
  /** HF tensor name → E[x_j²] per input column. */
  byTensor: Map<string, Float64Array>;
  /** HF tensor name → its input's E[x xᵀ] ([in, in] float32) in the covariance file, when the imatrix has one. */
  covariance?: Map<string, TensorInfo>;
}

/** imatrix files are JSON of a few floats per input channel: far below this. */
const MAX_IMATRIX_BYTES = 2 ** 30;

/** `--rounding gptq` rounds under covariances: refused without an imatrix that has them. */
export function checkGptqImatrix(rounding: Rounding, imatrix: Imatrix | undefined): void {
  if (rounding === 'gptq' && !imatrix?.covariance) throw new Error('--rounding gptq needs --imatrix FILE made by `swan imatrix --covariance`');
}

/** Whether an imatrix file names a covariance file (made with `swan imatrix --covariance`); false for anything unreadable (readImatrix says why). */
export function imatrixHasCovariance(file: string): boolean {
  try {
    if (!statSync(file).isFile() || statSync(file).size > MAX_IMATRIX_BYTES) return false;
    return (JSON.parse(readFileSync(file, 'utf8')) as { covariance_file?: unknown }).covariance_file !== undefined;
  } catch {
    return false;
  }
}

/** Read `file` and match it to `source`'s quantizable tensors (by MLX name and shape). */
export function readImatrix(file: string, source: ModelSource): Imatrix {
  let doc: { format?: unknown; tokens?: unknown; calibration?: unknown; entries?: unknown };
  try {
    if (!statSync(file).isFile()) throw new Error('not a regular file');
    if (statSync(file).size > MAX_IMATRIX_BYTES) throw new Error('too large for an imatrix file');
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SwanError(file, `cannot read the imatrix: ${(e as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || doc.format !== 'swan-imatrix' || typeof doc.entries !== 'object' || doc.entries === null) {
    throw new SwanError(file, 'is not an imatrix file written by `swan imatrix`');
  }
  const entries = doc.entries as Record<string, { shape?: unknown; mean_sq?: unknown; covariance?: unknown }>;
  const covFile = covarianceFile(file, (doc as { covariance_file?: unknown }).covariance_file);
  const covariance = covFile === undefined ? undefined : new Map<string, TensorInfo>();
  const byMlx = new Map(source.entries.filter((e) => e.record.mlxName !== null).map((e) => [e.record.mlxName!, e]));
  const byTensor = new Map<string, Float64Array>();
  for (const [name, entry] of Object.entries(entries)) {
    const e = byMlx.get(name);
    if (!e) throw new SwanError(file, `is from another model: it has ${name}, which this model lacks`);
    const shape = e.info.shape;
    const theirs = Array.isArray(entry.shape) ? entry.shape : [];
    if (theirs.length !== shape.length || theirs.some((d, i) => d !== shape[i])) {
      throw new SwanError(file, `is from another model: ${name} is [${theirs.join(', ')}] there, [${shape.join(', ')}] here`);
    }
    const v = entry.mean_sq;
    const cols = shape[shape.length - 1]!;
    if (!Array.isArray(v) || v.length !== cols || v.some((x) => typeof x !== 'number' || !Number.isFinite(x) || x < 0)) {
      throw new SwanError(file, `${name}: mean_sq must be ${cols} finite non-negative numbers`);
    }
    byTensor.set(e.info.name, Float64Array.from(v as number[]));
    if (covFile) {
      const info = covFile.tensors.get(typeof entry.covariance === 'string' ? entry.covariance : '');
      if (!info) throw new SwanError(covFile.path, `has no covariance for ${name}`);
      if (info.dtype !== 'F32' || info.shape.length !== 2 || info.shape[0] !== cols || info.shape[1] !== cols) {
        throw new SwanError(covFile.path, `${info.name}: must be F32 [${cols}, ${cols}] for ${name} (is ${info.dtype} [${info.shape.join(', ')}])`);
      }
      covariance!.set(e.info.name, info);
    }
  }
  // Every quantizable 2-D tensor fed by activations must be covered. An untied embedding is a
  // lookup (no input activations), so the worker has nothing for it.
  for (const { info, record } of source.entries) {
    if (record.mlxName === null || !record.quantizable || info.shape.length !== 2) continue;
    if (record.role === 'embedding' && !source.tied) continue;
    if (!byTensor.has(info.name)) throw new SwanError(file, `is from another model: it has nothing for ${record.mlxName}`);
  }
  const tokens = typeof doc.tokens === 'number' ? doc.tokens : 0;
  const calibration = doc.calibration && typeof doc.calibration === 'object' ? (doc.calibration as Record<string, unknown>) : {};
  return { info: { tokens, calibration }, byTensor, covariance };
}

/**
 * The covariance file an imatrix names (`covariance_file`), read and checked: a plain file name in
 * the imatrix's own directory (a path elsewhere is refused), with COVARIANCE_FORMAT in its metadata.
 */
function covarianceFile(imatrixFile: string, name: unknown): { path: string; tensors: Map<string, TensorInfo> } | undefined {
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || name === '' || name !== basename(name) || name === '.' || name === '..') {
    throw new SwanError(imatrixFile, 'covariance_file must be a file name beside the imatrix');
  }
  const path = join(dirname(imatrixFile), name);
  const header = readSafetensorsHeader(path);
  if (header.metadata.format !== 'swan-imatrix-covariance') throw new SwanError(path, 'is not a covariance file written by `swan imatrix --covariance`');
  return { path, tensors: new Map(header.tensors.map((t) => [t.name, t])) };
}
