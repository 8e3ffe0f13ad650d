/**
 * Seeded mutations of a real model directory (stories260K) and of a swan manifest, for the fuzz
 * test (test/fuzz.test.ts). A case is plain data, { family, seed }: the same pair always builds the
 * same files, so a failing case can be kept as a regression by its pair alone.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../src/rng.js';

export const FAMILIES = ['header', 'data', 'config', 'index', 'manifest'] as const;
export type Family = (typeof FAMILIES)[number];

export interface FuzzCase {
  family: Family;
  seed: number;
}

/** What a built case runs: `swan quantize <dir> <flags…>`. */
export interface BuiltCase {
  dir: string;
  flags: string[];
  /** Files the error may name besides those in `dir` (the manifest). */
  files: string[];
  what: string;
}

const WEIRD: unknown[] = [0, -1, 1, 1.5, 2 ** 31, 2 ** 53, 1e9, 45_000_000, -1e300, '64', '', null, true, false, [], [1, 2], {}, { a: 1 }, 'F16', '\u001b[31mred'];

function pick<T>(r: Rng, xs: readonly T[]): T {
  return xs[Math.floor(r.uniform() * xs.length)]!;
}

function int(r: Rng, n: number): number {
  return Math.floor(r.uniform() * n);
}

function copyDir(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dst, f));
}

interface Safetensors {
  header: Record<string, any>;
  data: Buffer;
}

function readSt(file: string): Safetensors {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), data: buf.subarray(8 + n) };
}

function stBytes(header: unknown, data: Buffer, lengthDelta = 0): Buffer {
  const text = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Math.max(0, text.length + lengthDelta)));
  return Buffer.concat([len, text, data]);
}

function tensorNames(h: Record<string, any>): string[] {
  return Object.keys(h).filter((k) => k !== '__metadata__');
}

/** Every path to a value inside a JSON document (objects and arrays walked, at most `limit`). */
function jsonPaths(v: unknown, limit = 4000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (x: unknown, path: (string | number)[]) => {
    if (out.length >= limit) return;
    out.push(path);
    if (Array.isArray(x)) x.forEach((y, i) => walk(y, [...path, i]));
    else if (x && typeof x === 'object') for (const [k, y] of Object.entries(x)) walk(y, [...path, k]);
  };
  walk(v, []);
  return out;
}

/** Set (or, one time in four, delete) the value at a random path of `doc` other than the root. */
function mutateJson(r: Rng, doc: any): string {
  const paths = jsonPaths(doc).filter((p) => p.length > 0);
  const path = pick(r, paths);
  let parent = doc;
  for (const k of path.slice(0, -1)) parent = parent[k];
  const last = path[path.length - 1]!;
  if (r.uniform() < 0.25 && !Array.isArray(parent)) {
    delete parent[last];
    return `delete ${path.join('.')}`;
  }
  const value = structuredClone(pick(r, WEIRD));
  parent[last] = value;
  return `${path.join('.')} = ${JSON.stringify(value)}`;
}

function headerCase(r: Rng, dir: string): string {
  const file = join(dir, 'model.safetensors');
  const st = readSt(file);
  const h = st.header;
  const names = tensorNames(h);
  const name = pick(r, names);
  const t = h[name];
  switch (int(r, 12)) {
    case 0:
      t.dtype = pick(r, ['F32', 'F16', 'BF16', 'I8', 'U8', 'F64', 'BOOL', 'F8_E4M3', 'x', 5, null]);
      writeFileSync(file, stBytes(h, st.data));
      return `${name}.dtype = ${JSON.stringify(t.dtype)}`;
    case 1: {
      const k = int(r, t.shape.length + 1);
      const v = pick(r, [0, 1, -1, 1.5, 2, 45_000_000, 2 ** 53, '64', null]);
      if (k === t.shape.length) t.shape.push(v);
      else t.shape[k] = v;
      writeFileSync(file, stBytes(h, st.data));
      return `${name}.shape = ${JSON.stringify(t.shape)}`;
    }
    case 2: {
      const k = int(r, 2);
      t.data_offsets[k] = pick(r, [t.data_offsets[k] + 2, t.data_offsets[k] - 2, -8, st.data.length + 64, 2 ** 53, 1.5, '0', null]);
      writeFileSync(file, stBytes(h, st.data));
      return `${name}.data_offsets = ${JSON.stringify(t.data_offsets)}`;
    }
    case 3: {
      const to = pick(r, ['model.layers.0.mlp.extra_proj.weight', '../escape', 'x'.repeat(1 + int(r, 3000)), 'model.layers.99.self_attn.q_proj.weight', 'a\u0007b\u001b[2J', 'lm_head.weight']);
      h[to] = t;
      delete h[name];
      writeFileSync(file, stBytes(h, st.data));
      return `rename ${name} → ${JSON.stringify(to.slice(0, 40))}`;
    }
    case 4:
      delete h[name];
      writeFileSync(file, stBytes(h, st.data));
      return `delete ${name}`;
    case 5:
      h[pick(r, ['model.layers.0.self_attn.rotary_emb.inv_freq', 'model.extra.weight', 'model.layers.0.mlp.gate_proj.bias'])] = { ...t, shape: [t.shape[0]] };
      writeFileSync(file, stBytes(h, st.data));
      return 'extra tensor';
    case 6:
      h.__metadata__ = pick(r, WEIRD);
      writeFileSync(file, stBytes(h, st.data));
      return `__metadata__ = ${JSON.stringify(h.__metadata__)}`;
    case 7: {
      const delta = pick(r, [-1, 1, 100, -100, 1e6, 2 ** 40]);
      writeFileSync(file, stBytes(h, st.data, delta));
      return `header length ${delta > 0 ? '+' : ''}${delta}`;
    }
    case 8: {
      const whole = readFileSync(file);
      const at = int(r, whole.length);
      writeFileSync(file, whole.subarray(0, at));
      return `truncated at ${at}`;
    }
    case 9: {
      const whole = Buffer.from(readFileSync(file));
      const n = Number(whole.readBigUInt64LE(0));
      for (let i = 0; i < 4; i++) whole[8 + int(r, n)] = int(r, 256);
      writeFileSync(file, whole);
      return 'garbage bytes in the header';
    }
    case 10: {
      // Many tiny tensors: a header a real checkpoint never has.
      const count = pick(r, [10_000, 200_000]);
      for (let i = 0; i < count; i++) h[`model.extra.${i}.weight`] = { dtype: 'BF16', shape: [0], data_offsets: [0, 0] };
      writeFileSync(file, stBytes(h, st.data));
      return `${count} empty tensors`;
    }
    default: {
      t.shape = [45_000_000, 1];
      writeFileSync(file, stBytes(h, st.data));
      return `${name}.shape = [45000000, 1]`;
    }
  }
}

/** Non-finite or out-of-range values written into a float tensor's data. */
function dataCase(r: Rng, dir: string, flags: string[]): string {
  const file = join(dir, 'model.safetensors');
  const st = readSt(file);
  const names = tensorNames(st.header).filter((n) => st.header[n].dtype === 'BF16');
  const name = pick(r, names);
  const [a, b] = st.header[name].data_offsets as [number, number];
  const data = Buffer.from(st.data);
  // bf16 NaN 0x7fc0, +Inf 0x7f80, -Inf 0xff80
  const bits = pick(r, [0x7fc0, 0x7f80, 0xff80]);
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) data.writeUInt16LE(bits, a + 2 * int(r, (b - a) / 2));
  writeFileSync(file, stBytes(st.header, data));
  if (r.uniform() < 0.3) flags.push('--allow-nonfinite');
  return `${n}× ${bits.toString(16)} in ${name}`;
}

function configCase(r: Rng, dir: string): string {
  const file = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  switch (int(r, 4)) {
    case 0:
      writeFileSync(file, pick(r, ['', '{', '[]', 'null', '{"model_type": "llama"', '\u0000\u0001']));
      return 'config.json not a JSON object';
    case 1: {
      const key = pick(r, ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'intermediate_size', 'head_dim', 'tie_word_embeddings', 'torch_dtype', 'model_type', 'rms_norm_eps', 'max_position_embeddings']);
      config[key] = pick(r, WEIRD);
      writeFileSync(file, JSON.stringify(config));
      return `${key} = ${JSON.stringify(config[key])}`;
    }
    case 2: {
      const key = pick(r, Object.keys(config));
      delete config[key];
      writeFileSync(file, JSON.stringify(config));
      return `delete ${key}`;
    }
    default:
      return mutateJson(r, config) + (writeFileSync(file, JSON.stringify(config)), '');
  }
}

function indexCase(r: Rng, dir: string): string {
  const st = readSt(join(dir, 'model.safetensors'));
  const weightMap: Record<string, unknown> = Object.fromEntries(tensorNames(st.header).map((n) => [n, 'model.safetensors']));
  const index: any = { metadata: { total_size: st.data.length }, weight_map: weightMap };
  let what: string;
  switch (int(r, 5)) {
    case 0: {
      const n = pick(r, Object.keys(weightMap));
      weightMap[n] = pick(r, ['missing.safetensors', '../model.safetensors', '/etc/passwd', '.', 'tokenizer.json', 5, null]);
      what = `weight_map[${n}] = ${JSON.stringify(weightMap[n])}`;
      break;
    }
    case 1:
      delete weightMap[pick(r, Object.keys(weightMap))];
      what = 'weight_map misses a tensor';
      break;
    case 2:
      weightMap['model.layers.0.mlp.phantom.weight'] = 'model.safetensors';
      what = 'weight_map names a tensor no shard has';
      break;
    case 3:
      index.weight_map = pick(r, WEIRD);
      what = `weight_map = ${JSON.stringify(index.weight_map)}`;
      break;
    default:
      what = mutateJson(r, index);
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
  return what;
}

/**
 * Build case `c` under `root`: a mutated copy of `model`; `manifest` is a swan manifest of the
 * unmodified model (the manifest family mutates a copy of it).
 */
export function buildCase(c: FuzzCase, model: string, manifest: string, root: string): BuiltCase {
  const r = new Rng(c.seed * 7919 + FAMILIES.indexOf(c.family));
  const dir = join(root, `${c.family}-${c.seed}`);
  rmSync(dir, { recursive: true, force: true });
  copyDir(model, dir);
  const flags: string[] = [];
  let files: string[] = [];
  let what: string;
  switch (c.family) {
    case 'header':
      what = headerCase(r, dir);
      break;
    case 'data':
      what = dataCase(r, dir, flags);
      break;
    case 'config':
      what = configCase(r, dir);
      break;
    case 'index':
      what = indexCase(r, dir);
      break;
    case 'manifest': {
      const m = JSON.parse(readFileSync(manifest, 'utf8'));
      what = mutateJson(r, m);
      const file = join(root, `${c.family}-${c.seed}.manifest.json`);
      writeFileSync(file, JSON.stringify(m));
      files = [file];
      flags.push('--manifest', file);
      break;
    }
  }
  // The strategy varies too: uniform needs no analysis (fast), the others read every score.
  if (c.family !== 'manifest') flags.push(...pick(r, [['--uniform'], ['--uniform'], [], ['--target-bpw', '7']]));
  else flags.push(...pick(r, [[], ['--target-bpw', '7'], ['--target-bpw', '7', '--rounding', 'search']]));
  return { dir, flags, files, what };
}
