import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SwanError } from '../src/errors.js';
import { openHfModel } from '../src/io/hf-model.js';
import { MAX_TENSORS, readSafetensorsHeader, readTensorBytes, readTensorF32, type TensorInfo } from '../src/io/safetensors.js';
import { SafetensorsWriter } from '../src/io/safetensors-writer.js';
import { FIXTURES, STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-hf-');
after(() => tmp.cleanup());

const F32_DIR = join(FIXTURES, 'stories260K-f32');
const source = readSafetensorsHeader(join(F32_DIR, 'model.safetensors')).tensors;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Must throw a one-line SwanError whose message starts with `where` and matches `problem`. */
function assertBad(where: string, problem: RegExp, dir: string): void {
  assert.throws(
    () => openHfModel(dir),
    (e: unknown) => {
      assert.ok(e instanceof SwanError, `expected SwanError, got ${String(e)}`);
      assert.match(e.message, new RegExp(`^${escapeRe(where)}: `));
      assert.match(e.message, problem);
      assert.ok(!/[\r\n]/.test(e.message), `not one line: ${JSON.stringify(e.message)}`);
      return true;
    },
  );
}

let n = 0;
function newDir(withConfig = true): string {
  const d = join(tmp.dir, `m${n++}`);
  mkdirSync(d);
  if (withConfig) copyFileSync(join(F32_DIR, 'config.json'), join(d, 'config.json'));
  return d;
}

/** Write `tensors` (copied from the f32 fixture) into one shard. */
function writeShard(file: string, tensors: TensorInfo[]): void {
  const w = new SafetensorsWriter(file, tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength })));
  for (const t of tensors) w.write(t.name, readTensorBytes(t));
  w.close();
}

const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
/** A two-shard copy of the f32 fixture; shard 2 holds the later half of the tensors. */
function sharded(index: boolean | Record<string, unknown> = true): { dir: string; weightMap: Record<string, string> } {
  const dir = newDir();
  const half = Math.ceil(source.length / 2);
  writeShard(join(dir, SHARD1), source.slice(0, half));
  writeShard(join(dir, SHARD2), source.slice(half));
  const weightMap: Record<string, string> = {};
  const names = source.map((t) => t.name).sort();
  for (const name of names) weightMap[name] = source.findIndex((t) => t.name === name) < half ? SHARD1 : SHARD2;
  if (index === true) writeIndex(dir, { metadata: { total_size: 1 }, weight_map: weightMap });
  else if (index) writeIndex(dir, index);
  return { dir, weightMap };
}
function writeIndex(dir: string, json: unknown): string {
  const p = join(dir, 'model.safetensors.index.json');
  writeFileSync(p, typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  return p;
}

describe('openHfModel: valid directories', () => {
  test('single model.safetensors (the stories260K fixture)', () => {
    const m = openHfModel(STORIES);
    assert.equal(m.dir, STORIES);
    assert.equal(m.configPath, join(STORIES, 'config.json'));
    assert.equal(m.config.model_type, 'llama');
    assert.equal(m.config.tie_word_embeddings, true);
    assert.match(m.configText, /"rms_norm_eps": 1e-05/);
    assert.deepEqual(m.files, [join(STORIES, 'model.safetensors')]);
    assert.equal(m.tensors.length, 47);
    assert.deepEqual(m.tensors, readSafetensorsHeader(join(STORIES, 'model.safetensors')).tensors);
    assert.ok(m.tensors.every((t) => t.dtype === 'BF16'));
  });

  test('shards + index: weight_map order, values identical to the single-file model', () => {
    const { dir, weightMap } = sharded();
    const m = openHfModel(dir);
    assert.deepEqual(m.files, [join(dir, SHARD1), join(dir, SHARD2)]);
    assert.deepEqual(m.tensors.map((t) => t.name), Object.keys(weightMap));
    const byName = new Map(source.map((t) => [t.name, t]));
    for (const t of m.tensors) {
      assert.equal(t.file, join(dir, weightMap[t.name]!));
      assert.deepEqual(readTensorF32(t), readTensorF32(byName.get(t.name)!));
    }
  });

  test('tensors in a shard that the index does not list are kept, after the listed ones', () => {
    const { dir, weightMap } = sharded(false);
    const partial = Object.fromEntries(Object.entries(weightMap).filter(([k]) => k !== 'model.norm.weight'));
    writeIndex(dir, { weight_map: partial });
    const m = openHfModel(dir);
    assert.equal(m.tensors.length, source.length);
    assert.equal(m.tensors.at(-1)!.name, 'model.norm.weight');
  });

  test('shards without an index: all model*.safetensors, sorted by name, tensors in file order', () => {
    const { dir } = sharded(false);
    writeShard(join(dir, 'consolidated.safetensors'), source.slice(0, 1)); // Mistral-style extra, ignored
    const m = openHfModel(dir);
    assert.deepEqual(m.files, [join(dir, SHARD1), join(dir, SHARD2)]);
    assert.deepEqual(m.tensors.map((t) => t.name), source.map((t) => t.name));
    // no model* files: every *.safetensors
    const d2 = newDir();
    writeShard(join(d2, 'b.safetensors'), source.slice(0, 2));
    writeShard(join(d2, 'a.safetensors'), source.slice(2, 3));
    assert.deepEqual(openHfModel(d2).tensors.map((t) => t.name), [source[2]!.name, source[0]!.name, source[1]!.name]);
  });

  test('HF hub cache layout: snapshot files symlinked into ../../blobs are accepted', () => {
    const repo = join(tmp.dir, 'models--karpathy--stories');
    const blobs = join(repo, 'blobs');
    const snap = join(repo, 'snapshots', 'abc123');
    mkdirSync(blobs, { recursive: true });
    mkdirSync(snap, { recursive: true });
    copyFileSync(join(F32_DIR, 'config.json'), join(blobs, 'c0ffee'));
    copyFileSync(join(F32_DIR, 'model.safetensors'), join(blobs, 'beef'));
    symlinkSync('../../blobs/c0ffee', join(snap, 'config.json'));
    symlinkSync('../../blobs/beef', join(snap, 'model.safetensors'));
    const m = openHfModel(snap);
    assert.equal(m.tensors.length, 47);
    // the same through an index
    writeFileSync(join(blobs, 'idx'), JSON.stringify({ weight_map: Object.fromEntries(source.map((t) => [t.name, 'model.safetensors'])) }));
    symlinkSync('../../blobs/idx', join(snap, 'model.safetensors.index.json'));
    assert.equal(openHfModel(snap).tensors.length, 47);
  });
});

describe('openHfModel: invalid directories', () => {
  test('missing directory, not a directory', () => {
    const missing = join(tmp.dir, 'does-not-exist');
    assertBad(missing, /model directory does not exist/, missing);
    const file = join(tmp.dir, 'plain-file');
    writeFileSync(file, 'x');
    assertBad(file, /not a directory/, file);
  });

  test('config.json missing, not JSON, not an object', () => {
    const d = newDir(false);
    writeShard(join(d, 'model.safetensors'), source.slice(0, 1));
    assertBad(join(d, 'config.json'), /missing: a HuggingFace model directory needs config.json/, d);
    writeFileSync(join(d, 'config.json'), '{"model_type": "llama",\n}');
    assertBad(join(d, 'config.json'), /not valid JSON/, d);
    writeFileSync(join(d, 'config.json'), '[1]');
    assertBad(join(d, 'config.json'), /config.json is not a JSON object/, d);
  });

  test('no weights at all', () => {
    const d = newDir();
    writeFileSync(join(d, 'pytorch_model.bin'), 'x');
    assertBad(d, /no model.safetensors, no model.safetensors.index.json and no \*.safetensors files/, d);
  });

  test('index malformed', () => {
    const { dir } = sharded(false);
    const idx = writeIndex(dir, '{"weight_map": {');
    assertBad(idx, /not valid JSON/, dir);
    writeIndex(dir, '[]');
    assertBad(idx, /the index is not a JSON object/, dir);
    writeIndex(dir, { metadata: {} });
    assertBad(idx, /"weight_map" is missing or not an object/, dir);
    writeIndex(dir, { weight_map: ['a'] });
    assertBad(idx, /"weight_map" is missing or not an object/, dir);
    writeIndex(dir, { weight_map: {} });
    assertBad(idx, /"weight_map" is empty/, dir);
    writeIndex(dir, { weight_map: { 'model.norm.weight': 3 } });
    assertBad(idx, /weight_map entry "model.norm.weight": file name must be a non-empty string/, dir);
  });

  test('weight_map entries pointing outside the model directory', () => {
    const { dir, weightMap } = sharded(false);
    const outside = join(tmp.dir, 'outside.safetensors');
    writeShard(outside, source.slice(0, 1));
    const name = 'model.embed_tokens.weight';
    for (const bad of [outside, '../outside.safetensors', 'sub/../../outside.safetensors', '..\\outside.safetensors', '..']) {
      const idx = writeIndex(dir, { weight_map: { ...weightMap, [name]: bad } });
      assertBad(idx, new RegExp(`weight_map entry "${escapeRe(name)}" → ${escapeRe(JSON.stringify(bad))} points outside the model directory`), dir);
    }
    symlinkSync(outside, join(dir, 'escape.safetensors'));
    const idx = writeIndex(dir, { weight_map: { ...weightMap, [name]: 'escape.safetensors' } });
    assertBad(idx, /weight_map entry "model.embed_tokens.weight" → "escape.safetensors" is a symlink that points outside the model directory/, dir);
  });

  test('symlinked shard escaping the directory (no index)', () => {
    const d = newDir();
    const outside = join(tmp.dir, 'outside2.safetensors');
    writeShard(outside, source.slice(0, 1));
    symlinkSync(outside, join(d, 'model.safetensors'));
    assertBad(join(d, 'model.safetensors'), /symlink points outside the model directory/, d);
  });

  test('weight_map file missing; tensor absent from its shard', () => {
    const { dir, weightMap } = sharded(false);
    const idx = writeIndex(dir, { weight_map: { ...weightMap, 'model.norm.weight': 'model-00009-of-00009.safetensors' } });
    assertBad(idx, /weight_map entry "model.norm.weight" → "model-00009-of-00009.safetensors": file is missing/, dir);
    writeIndex(dir, { weight_map: { ...weightMap, 'lm_head.weight': SHARD1 } });
    assertBad(idx, new RegExp(`weight_map entry "lm_head.weight" → "${SHARD1}": tensor is not in that file`), dir);
    // listed in the wrong shard
    writeIndex(dir, { weight_map: { ...weightMap, 'model.embed_tokens.weight': weightMap['model.embed_tokens.weight'] === SHARD1 ? SHARD2 : SHARD1 } });
    assertBad(idx, /weight_map entry "model.embed_tokens.weight" → .*: tensor is not in that file/, dir);
  });

  test('duplicate tensor names across shards', () => {
    const { dir, weightMap } = sharded(false);
    const extra = 'model-extra.safetensors';
    writeShard(join(dir, extra), source.slice(0, 1));
    assertBad(join(dir, extra), new RegExp(`duplicate tensor "${escapeRe(source[0]!.name)}": also in ${escapeRe(join(dir, SHARD1))}`), dir);
    const idx = writeIndex(dir, { weight_map: { ...weightMap, 'model.norm.weight': extra } });
    assert.ok(idx);
    assertBad(join(dir, extra), /duplicate tensor/, dir);
  });

  test('a corrupt shard is reported with the shard file', () => {
    const { dir } = sharded();
    writeFileSync(join(dir, SHARD2), Buffer.from([1, 2, 3]));
    assertBad(join(dir, SHARD2), /too short/, dir);
  });
});

describe('openHfModel: only regular files inside the model directory are read', () => {
  test('config.json or the index symlinked outside the directory is refused', () => {
    const d = newDir(false);
    writeShard(join(d, 'model.safetensors'), source.slice(0, 1));
    const outside = join(tmp.dir, 'outside-config.json');
    copyFileSync(join(F32_DIR, 'config.json'), outside);
    symlinkSync(outside, join(d, 'config.json'));
    assertBad(join(d, 'config.json'), /symlink points outside the model directory/, d);
    const { dir } = sharded(false);
    const idx = join(tmp.dir, 'outside-index.json');
    writeFileSync(idx, JSON.stringify({ weight_map: { 'model.norm.weight': SHARD2 } }));
    symlinkSync(idx, join(dir, 'model.safetensors.index.json'));
    assertBad(join(dir, 'model.safetensors.index.json'), /symlink points outside the model directory/, dir);
    // a link to /dev/zero (which would read as zeros forever) is outside too
    const d3 = newDir();
    symlinkSync('/dev/zero', join(d3, 'model.safetensors'));
    assertBad(join(d3, 'model.safetensors'), /symlink points outside the model directory/, d3);
  });

  const kinds: [string, (p: string) => void][] = [['a directory', (p) => mkdirSync(p)]];
  if (process.platform !== 'win32') kinds.push(['a FIFO', (p) => execFileSync('mkfifo', [p])]);
  for (const [kind, make] of kinds) {
    test(`${kind} as config.json, the index, a shard or a weight_map file is refused at once, not opened`, () => {
      const problem = `not a regular file \\(${kind}\\)`;
      const d = newDir(false);
      make(join(d, 'config.json'));
      writeShard(join(d, 'model.safetensors'), source.slice(0, 1));
      assertBad(join(d, 'config.json'), new RegExp(problem), d);
      const d2 = newDir();
      make(join(d2, 'model.safetensors'));
      assertBad(join(d2, 'model.safetensors'), new RegExp(problem), d2);
      const { dir } = sharded(false);
      make(join(dir, 'model.safetensors.index.json'));
      assertBad(join(dir, 'model.safetensors.index.json'), new RegExp(problem), dir);
      const { dir: dir2, weightMap } = sharded(false);
      make(join(dir2, 'model-x.safetensors'));
      const idx = writeIndex(dir2, { weight_map: { ...weightMap, 'model.norm.weight': 'model-x.safetensors' } });
      assertBad(idx, new RegExp(`weight_map entry "model.norm.weight" → "model-x.safetensors" is ${problem}`), dir2);
    });
  }

  test(`at most ${MAX_TENSORS} tensors in all, across shards`, () => {
    const d = newDir();
    const half = MAX_TENSORS / 2;
    // Empty tensors, header written directly (the writer's sorting is not under test here).
    for (const [file, from, n] of [['model-1.safetensors', 0, half], ['model-2.safetensors', half, half + 1]] as const) {
      const entries = Array.from({ length: n }, (_, i) => `"t${from + i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`);
      const header = Buffer.from(`{${entries.join(',')}}`);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.byteLength));
      writeFileSync(join(d, file), Buffer.concat([len, header]));
    }
    assertBad(join(d, 'model-2.safetensors'), new RegExp(`the model has more than ${MAX_TENSORS} tensors with this file \\(limit ${MAX_TENSORS} in all\\)`), d);
  });
});
