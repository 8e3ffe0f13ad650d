/**
 * HuggingFace model directory discovery: config.json plus either model.safetensors, or shards listed
 * by model.safetensors.index.json, or (no index) every model*.safetensors / *.safetensors file.
 * Only headers are read here; tensor data is read later, one tensor at a time.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { allowedRoots, modelFileProblem, notRegular, readRegularText, within } from './input-file.js';
import { MAX_HEADER_BYTES, MAX_TENSORS, oneLine, q, readSafetensorsHeader, type TensorInfo } from './safetensors.js';

export interface HfModelDir {
  /** Absolute path of the model directory. */
  dir: string;
  config: Record<string, unknown>;
  /** config.json's text as read, for writers that must keep number lexemes (1e-06 vs 0.000001). */
  configText: string;
  configPath: string;
  /**
   * All tensors: weight_map order when an index exists (then any tensors a shard holds that the
   * index does not list, in file order — both mlx-lm and transformers load those too), else file
   * order (files sorted by name, tensors by data offset).
   */
  tensors: TensorInfo[];
  /** Absolute paths of the safetensors files used, sorted by name. */
  files: string[];
}

export const INDEX_FILE = 'model.safetensors.index.json';

/**
 * Files beside the weights that belong with a model and are copied into its MLX version:
 * tokenizer, chat template, generation and preprocessor config, licenses (src/pipeline/write-mlx.ts
 * copies them, src/hub/files.ts downloads them).
 */
export const COMPANION_FILES: readonly RegExp[] = [
  /^tokenizer\.json$/,
  /^tokenizer_config\.json$/,
  /^special_tokens_map\.json$/,
  /^added_tokens\.json$/,
  /^tokenizer\.model$/,
  /^vocab\.(json|txt)$/,
  /^merges\.txt$/,
  /^.*\.tiktoken$/,
  /^tiktoken\.model$/,
  /^chat_template\.(jinja|json)$/,
  /^generation_config\.json$/,
  /^preprocessor_config\.json$/,
  /^LICEN[CS]E.*$/i,
];
export const SINGLE_FILE = 'model.safetensors';

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A JSON file of the model (config.json, the index): inside it after symlinks, regular, at most MAX_HEADER_BYTES. */
function readJson(path: string, what: string, roots: string[]): { text: string; json: Record<string, unknown> } {
  const problem = modelFileProblem(path, roots);
  if (problem) throw new SwanError(path, problem);
  const text = readRegularText(path, what, MAX_HEADER_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SwanError(path, `not valid JSON (${oneLine((e as Error).message, 120)})`);
  }
  if (!isObject(json)) throw new SwanError(path, `${what} is not a JSON object`);
  return { text, json };
}

export function openHfModel(dir: string): HfModelDir {
  const abs = resolve(dir);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new SwanError(abs, 'model directory does not exist');
  }
  if (!st.isDirectory()) throw new SwanError(abs, 'not a directory (expected a HuggingFace model directory)');
  const roots = allowedRoots(abs);

  const configPath = join(abs, 'config.json');
  if (!existsSync(configPath)) throw new SwanError(configPath, 'missing: a HuggingFace model directory needs config.json');
  const { text: configText, json: config } = readJson(configPath, 'config.json', roots);

  const indexPath = join(abs, INDEX_FILE);
  const { tensors, files } = existsSync(indexPath) ? fromIndex(abs, indexPath, roots) : fromGlob(abs, roots);
  return { dir: abs, config, configText, configPath, tensors, files };
}

function fromIndex(abs: string, indexPath: string, roots: string[]): { tensors: TensorInfo[]; files: string[] } {
  const { json } = readJson(indexPath, 'the index', roots);
  const wm = json.weight_map;
  if (!isObject(wm)) throw new SwanError(indexPath, `"weight_map" is missing or not an object`);
  const entries = Object.entries(wm);
  if (entries.length === 0) throw new SwanError(indexPath, '"weight_map" is empty');
  if (entries.length > MAX_TENSORS) throw new SwanError(indexPath, `"weight_map" lists ${entries.length} tensors, over the limit of ${MAX_TENSORS}`);

  const byFile = new Map<string, string>(); // index value → absolute path
  for (const [name, value] of entries) {
    const where = `weight_map entry ${q(name)}`;
    if (typeof value !== 'string' || value === '') {
      throw new SwanError(indexPath, `${where}: file name must be a non-empty string`);
    }
    if (byFile.has(value)) continue;
    const target = resolve(abs, value);
    // Check the string itself first: an index must never steer reads outside the model.
    if (isAbsolute(value) || value.split(/[\\/]/).includes('..') || !within(abs, target)) {
      throw new SwanError(indexPath, `${where} → ${q(value)} points outside the model directory`);
    }
    if (!existsSync(target)) throw new SwanError(indexPath, `${where} → ${q(value)}: file is missing (${target})`);
    const real = realpathSync(target);
    if (!roots.some((r) => within(r, real))) {
      throw new SwanError(indexPath, `${where} → ${q(value)} is a symlink that points outside the model directory (${real})`);
    }
    const st = statSync(real);
    if (!st.isFile()) throw new SwanError(indexPath, `${where} → ${q(value)} is ${notRegular(st)}`);
    byFile.set(value, target);
  }

  const files = [...new Set(byFile.values())].sort();
  const byName = collect(files);
  const tensors: TensorInfo[] = [];
  const listed = new Set<string>();
  for (const [name, value] of entries) {
    const file = byFile.get(value as string)!;
    const info = byName.get(name);
    if (!info || info.file !== file) {
      throw new SwanError(indexPath, `weight_map entry ${q(name)} → ${q(value as string)}: tensor is not in that file`);
    }
    tensors.push(info);
    listed.add(name);
  }
  for (const info of byName.values()) if (!listed.has(info.name)) tensors.push(info);
  return { tensors, files };
}

function fromGlob(abs: string, roots: string[]): { tensors: TensorInfo[]; files: string[] } {
  const all = readdirSync(abs)
    .filter((f) => f.endsWith('.safetensors') && !f.startsWith('.'))
    .sort();
  // mlx-lm loads model*.safetensors; prefer those so e.g. Mistral's consolidated.safetensors is not mixed in.
  const model = all.filter((f) => f.startsWith('model'));
  const names = model.length > 0 ? model : all;
  if (names.length === 0) {
    throw new SwanError(abs, `no ${SINGLE_FILE}, no ${INDEX_FILE} and no *.safetensors files in the model directory`);
  }
  const files = names.map((f) => join(abs, f));
  for (const f of files) {
    const problem = modelFileProblem(f, roots);
    if (problem) throw new SwanError(f, problem);
  }
  return { tensors: [...collect(files).values()], files };
}

/** Headers of every file, keyed by tensor name in file-then-offset order; names must be unique, at most MAX_TENSORS in all. */
function collect(files: string[]): Map<string, TensorInfo> {
  const byName = new Map<string, TensorInfo>();
  for (const f of files) {
    for (const info of readSafetensorsHeader(f).tensors) {
      const prev = byName.get(info.name);
      if (prev) throw new SwanError(f, `duplicate tensor ${q(info.name)}: also in ${prev.file}`);
      byName.set(info.name, info);
    }
    if (byName.size > MAX_TENSORS) throw new SwanError(f, `the model has more than ${MAX_TENSORS} tensors with this file (limit ${MAX_TENSORS} in all)`);
  }
  return byName;
}

/** Model path as recorded in outputs: relative to the working directory, never an absolute home path. */
export function displayPath(dir: string): string {
  // A snapshot of the HF cache (…/models--org--name/snapshots/<sha>) is known by its repo id.
  const repo = basename(dirname(dirname(dir)));
  if (basename(dirname(dir)) === 'snapshots' && repo.startsWith('models--')) return repo.slice('models--'.length).split('--').join('/');
  const rel = relative(process.cwd(), dir);
  return rel && !rel.startsWith('..') ? rel : basename(dir);
}
