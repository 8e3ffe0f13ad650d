/**
 * An importance matrix (`swan imatrix`, scripts/mlx_imatrix.py) read for one model: per tensor,
 * the mean square activation of each input channel, E[x_j²] over the calibration tokens. With
 * `--imatrix` it replaces the norm-gain prior (input-weights.ts) wherever input channels are
 * weighed: the budget's measured errors and `--rounding search`. A file made from another model
 * (a name it lacks, a shape it does not have, or a layer missing) is refused in one line.
 */
import { readFileSync, statSync } from 'node:fs';
import type { ModelSource } from '../arch/source.js';
import { SwanError } from '../errors.js';

/** What an imatrix file says about itself, for the manifest. */
export interface ImatrixInfo {
  tokens: number;
  calibration: Record<string, unknown>;
}

export interface Imatrix {
  info: ImatrixInfo;
  /** HF tensor name → E[x_j²] per input column. */
  byTensor: Map<string, Float64Array>;
}

/** imatrix files are JSON of a few floats per input channel: far below this. */
const MAX_IMATRIX_BYTES = 2 ** 30;

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
  const entries = doc.entries as Record<string, { shape?: unknown; mean_sq?: unknown }>;
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
  return { info: { tokens, calibration }, byTensor };
}
