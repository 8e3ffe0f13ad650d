/**
 * Which files of a Hub repo a conversion needs: what swan reads (config, the safetensors and their
 * index) and what it copies into the MLX model (tokenizer, chat template, generation config,
 * license, the card for its license). Never pickles (*.bin, *.pt, *.pth, *.pkl, *.ckpt), never code
 * (*.py: remote code is not run and not copied from a download), never files in subfolders.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPANION_FILES, INDEX_FILE } from '../io/hf-model.js';

const METADATA = [
  /^config\.json$/,
  /^model\.safetensors\.index\.json$/,
  ...COMPANION_FILES,
  /^README\.md$/,
  // `swan report` of an MLX model swan uploaded.
  /^swan-manifest\.json$/,
];

/** The small files to fetch first (top level only). */
export function metadataFiles(repoPaths: readonly string[]): string[] {
  return repoPaths.filter((p) => !p.includes('/') && METADATA.some((re) => re.test(p))).sort();
}

/**
 * The weight files: those the index names when there is one, else the top-level model*.safetensors
 * (else every top-level *.safetensors), as src/io/hf-model.ts opens a directory.
 */
export function weightFiles(repoPaths: readonly string[], index?: { weight_map?: Record<string, unknown> }): string[] {
  if (index?.weight_map && typeof index.weight_map === 'object') {
    return [...new Set(Object.values(index.weight_map).filter((v): v is string => typeof v === 'string'))].sort();
  }
  const all = repoPaths.filter((p) => !p.includes('/') && p.endsWith('.safetensors') && !p.startsWith('.')).sort();
  const model = all.filter((p) => p.startsWith('model'));
  return model.length ? model : all;
}

/** The weight files a local (snapshot) directory needs, read from its index or its listing. */
export function modelFiles(dir: string): string[] {
  const index = join(dir, INDEX_FILE);
  if (existsSync(index)) return weightFiles([], JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: Record<string, unknown> });
  const found = weightFiles(readdirSync(dir));
  if (!found.length) throw new Error('no *.safetensors in the snapshot');
  return found;
}
