/**
 * Reading manifests: swan's own or the reference SWAN tool's. Every error names the file.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SwanError } from '../errors.js';
import { formatBytes, formatOfMode, type Candidate } from '../format.js';
import { dtypeFromName, type FloatDType } from '../io/float.js';
import { readRegularText } from '../io/input-file.js';
import { INPUT_WEIGHTINGS, type InputWeighting } from '../options.js';
import type { Decision } from '../plan/swan-rules.js';
import { MANIFEST_FILE, manifestTensors, type Manifest } from './schema.js';
import { manifestProblem } from './validate.js';

/**
 * A manifest file, parsed and validated against MANIFEST_SCHEMA (validate.ts): swan's own or the
 * reference tool's. A problem is reported with the file and the JSON path of the bad value.
 */
export function readManifestFile(file: string): Manifest {
  // A regular file only: a FIFO or a device is refused before it is opened.
  const text = readRegularText(file, 'the manifest');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new SwanError(file, `not a valid manifest: ${(e as Error).message.split('\n')[0]}`);
  }
  const problem = manifestProblem(parsed);
  if (problem) throw new SwanError(file, `not a valid manifest: ${problem}`);
  return parsed as Manifest;
}

/**
 * Refuse a manifest of another model: every tensor of the model must be in it with the same shape,
 * and it must name no tensor the model lacks.
 */
export function checkManifestMatches(m: Manifest, file: string, tensors: readonly { name: string; shape: number[] }[]): void {
  const stored = manifestTensors(m);
  for (const t of tensors) {
    const s = stored.get(t.name);
    if (!s) throw new SwanError(file, `has no entry for tensor ${t.name} of the model (a manifest of another model?)`);
    if (s.shape.length !== t.shape.length || s.shape.some((d, k) => d !== t.shape[k])) {
      throw new SwanError(file, `tensor ${t.name} has shape [${s.shape.join(', ')}] but the model's is [${t.shape.join(', ')}] (a manifest of another model?)`);
    }
  }
  if (stored.size > tensors.length) {
    const names = new Set(tensors.map((t) => t.name));
    const extra = [...stored.keys()].find((n) => !names.has(n))!;
    throw new SwanError(file, `names tensor ${JSON.stringify(extra)}, which the model does not have (a manifest of another model?)`);
  }
}

/** The manifest of `input`: a manifest file, or an MLX directory written by swan (its swan-manifest.json). */
export function readManifestOf(input: string): { manifest: Manifest; file: string } {
  if (!existsSync(input)) throw new SwanError(input, 'no such file or directory');
  let file = input;
  if (statSync(input).isDirectory()) {
    file = join(input, MANIFEST_FILE);
    if (!existsSync(file)) throw new SwanError(input, `has no ${MANIFEST_FILE} (not a directory written by swan quantize?)`);
  }
  return { manifest: readManifestFile(file), file };
}

/** What re-planning under a budget reads back from a manifest: no second pass over the weights. */
export interface ManifestMeasurements {
  dtype: FloatDType;
  rules: string;
  search: boolean;
  weighting: InputWeighting;
  tensors: Map<string, { composite: number; candidates: Candidate[] | undefined }>;
}

/** The stored candidate measurements of a swan manifest (written by `swan analyze` or `swan quantize`). */
export function readManifestMeasurements(file: string): ManifestMeasurements {
  return manifestMeasurements(readManifestFile(file), file);
}

/** readManifestMeasurements of a manifest already read from `file` (named in errors). */
export function manifestMeasurements(m: Manifest, file: string): ManifestMeasurements {
  const dtype = m.measurement ? dtypeFromName(m.measurement.dtype) : undefined;
  if (!m.measurement || !dtype) {
    throw new SwanError(file, 'has no candidate measurements (written by the thresholds or uniform strategy, or by the reference tool); run `swan analyze` to make one');
  }
  const tensors: ManifestMeasurements['tensors'] = new Map();
  for (const [name, t] of manifestTensors(m)) {
    const candidates = t.candidates?.map((c, k): Candidate => {
      if (m.measurement!.rounding_search && c.rel_error_search === undefined) {
        throw new SwanError(file, `tensor ${name} candidate ${k} has no rel_error_search, though measurement.rounding_search is true`);
      }
      const format = formatOfMode(c.mode ?? 'affine', c.bits, c.group_size);
      const out: Candidate = { format, bytes: formatBytes(format, t.shape, dtype), relError: c.rel_error };
      if (c.rel_error_search !== undefined) out.relErrorSearch = c.rel_error_search;
      return out;
    });
    tensors.set(name, { composite: Number(t.composite_score ?? 0), candidates });
  }
  // Manifests from before input weighting existed measured the search unweighted.
  const weighting = (m.measurement.input_weighting ?? 'none') as InputWeighting;
  if (!INPUT_WEIGHTINGS.includes(weighting)) throw new SwanError(file, `has an unknown input_weighting ${JSON.stringify(weighting)}`);
  return { dtype, rules: m.measurement.mlx_rules, search: m.measurement.rounding_search, weighting, tensors };
}

/** A decision per HF tensor name, from a swan manifest or one written by the reference Python tool. */
export function readManifestDecisions(file: string): Map<string, Decision> {
  return manifestDecisions(readManifestFile(file), file);
}

/** readManifestDecisions of a manifest already read from `file` (named in errors). */
export function manifestDecisions(m: Manifest, file: string): Map<string, Decision> {
  const out = new Map<string, Decision>();
  for (const [name, t] of manifestTensors(m)) {
    if (!t.decision) throw new SwanError(file, `tensor ${name} has no decision`);
    out.set(name, { bits: t.decision.bits, reason: t.decision.reason ?? 'manifest' });
  }
  return out;
}
