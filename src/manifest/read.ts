/**
 * Reading manifests: swan's own or the reference SWAN tool's. Every error names the file.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SwanError } from '../errors.js';
import { affine, formatBytes, type Candidate } from '../format.js';
import { dtypeFromName, type FloatDType } from '../io/float.js';
import { readRegularText } from '../io/input-file.js';
import { INPUT_WEIGHTINGS, type InputWeighting } from '../options.js';
import type { Decision } from '../plan/swan-rules.js';
import { MANIFEST_FILE, manifestTensors, type Manifest } from './schema.js';

/**
 * A manifest file, parsed and checked for the structure every reader relies on: an object whose
 * `shards` object holds `tensors` objects whose entries have a `shape` array, and an object
 * `summary` if any (swan's or the reference tool's).
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
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SwanError(file, 'not a SWAN manifest (not a JSON object)');
  const m = parsed as Record<string, unknown>;
  const shards = m.shards;
  if (!shards || typeof shards !== 'object' || Array.isArray(shards)) throw new SwanError(file, 'not a SWAN manifest (no "shards" object)');
  for (const [key, shard] of Object.entries(shards as Record<string, unknown>)) {
    const tensors = (shard as { tensors?: unknown } | null)?.tensors;
    if (!tensors || typeof tensors !== 'object' || Array.isArray(tensors)) throw new SwanError(file, `not a SWAN manifest (shard "${key}" has no "tensors" object)`);
    for (const [name, t] of Object.entries(tensors as Record<string, unknown>)) {
      if (!t || typeof t !== 'object' || !Array.isArray((t as { shape?: unknown }).shape)) {
        throw new SwanError(file, `not a SWAN manifest (tensor "${name}" has no shape)`);
      }
    }
  }
  if (m.summary !== undefined && (typeof m.summary !== 'object' || m.summary === null)) throw new SwanError(file, 'not a SWAN manifest ("summary" is not an object)');
  return parsed as Manifest;
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
    const candidates = t.candidates?.map((c): Candidate => {
      const format = affine(c.bits, c.group_size);
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
  const out = new Map<string, Decision>();
  for (const [name, t] of manifestTensors(readManifestFile(file))) {
    const bits = t.decision?.bits;
    if (bits !== 2 && bits !== 4 && bits !== 8 && bits !== 16) {
      throw new SwanError(file, `tensor ${name} has no valid decision.bits (2, 4, 8 or 16)`);
    }
    out.set(name, { bits, reason: String(t.decision.reason ?? 'manifest') });
  }
  return out;
}
