/**
 * End to end against real mlx-lm (venv made by scripts/setup-venv.sh):
 * c) swan --uniform equals mlx_lm.convert tensor by tensor, config and index included;
 * d) SWAN output loads strictly and generates; uniform 8-bit perplexity within 1% of the source.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runPython, venvPython } from '../src/python.js';
import { execFileSync } from 'node:child_process';
import { swan } from './helpers/cli.js';
import { FIXTURES, PY, REPO, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;
const TEXT = join(FIXTURES, 'text', 'tinystories-valid.txt');

describe('real mlx-lm', { skip }, () => {
  const tmp = tempDir();
  before(() => venvPython());
  after(() => tmp.cleanup());

  test('c) swan --uniform 4-bit g64 (CPU rules) equals mlx_lm.convert, tensor by tensor', () => {
    const ours = join(tmp.dir, 'swan-u4');
    const ref = join(tmp.dir, 'convert-u4');
    const r = swan(['quantize', STORIES, '-o', ours, '--uniform', '--q-bits', '4', '--q-group-size', '64', '--mlx-rules', 'cpu']);
    assert.equal(r.status, 0, r.stderr);
    execFileSync(venvPython(), ['-m', 'mlx_lm', 'convert', '--hf-path', STORIES, '--mlx-path', ref, '-q', '--q-bits', '4', '--q-group-size', '64'], {
      stdio: 'pipe',
    });
    const report = JSON.parse(runPython(join(PY, 'compare_mlx_dirs.py'), [ours, ref]));
    assert.deepEqual(report.diffs, []);
    assert.ok(report.tensors > 40);
    assert.equal(report.quantization_equal, true);
    assert.equal(report.quantization_config_equal, true);
    assert.deepEqual(report.config_a.quantization, { group_size: 64, bits: 4, mode: 'affine' });
    // Same bytes for config.json and the index, as Python's json.dump(indent=4) writes them.
    assert.equal(readFileSync(join(ours, 'config.json'), 'utf8'), readFileSync(join(ref, 'config.json'), 'utf8'));
    assert.equal(
      readFileSync(join(ours, 'model.safetensors.index.json'), 'utf8'),
      readFileSync(join(ref, 'model.safetensors.index.json'), 'utf8'),
    );
  });

  test('d) SWAN output loads with strict weights and continues "Once upon a time" with a story', () => {
    const out = join(tmp.dir, 'swan-default');
    const r = swan(['quantize', STORIES, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const manifest = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8'));
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [out, 'Once upon a time', '40']));
    const words = gen.text.match(/[A-Za-z]+/g) ?? [];
    assert.ok(words.length >= 15, `generated: ${gen.text}`);
    // Every tensor the manifest says is quantized is a quantized module in mlx-lm, with its bits and group.
    const expected: Record<string, { bits: number; group_size: number; mode: string }> = {};
    for (const shard of Object.values<any>(manifest.shards)) {
      for (const t of Object.values<any>(shard.tensors)) {
        if (t.format.bits) expected[t.mlx_name.replace(/\.weight$/, '')] = { bits: t.format.bits, group_size: t.format.group_size, mode: t.format.mode };
      }
    }
    assert.ok(Object.keys(expected).length > 0);
    assert.deepEqual(gen.quantized, expected);
  });

  test('d) uniform 8-bit perplexity within 1% of the source model (mlx-lm computes both)', () => {
    const out = join(tmp.dir, 'swan-u8');
    const r = swan(['quantize', STORIES, '-o', out, '--uniform', '--q-bits', '8']);
    assert.equal(r.status, 0, r.stderr);
    const evalArgs = ['--text', TEXT, '--seq-len', '256', '--samples', '24', '--seed', '7'];
    const src = JSON.parse(runPython(join(REPO, 'scripts', 'mlx_eval.py'), [STORIES, ...evalArgs]));
    const q8 = JSON.parse(runPython(join(REPO, 'scripts', 'mlx_eval.py'), [out, ...evalArgs]));
    assert.equal(src.tokens_scored, q8.tokens_scored);
    assert.ok(src.ppl > 3 && src.ppl < 8, `source ppl ${src.ppl}`);
    assert.ok(Math.abs(q8.ppl / src.ppl - 1) <= 0.01, `8-bit ppl ${q8.ppl} vs source ${src.ppl}`);
  });

  test('the output directory has what mlx-lm and a user need', () => {
    const out = join(tmp.dir, 'swan-default');
    for (const f of ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'README.md', 'swan-manifest.json']) {
      assert.ok(existsSync(join(out, f)), f);
    }
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(card, /^---\nlibrary_name: mlx\n/);
    assert.match(card, /true bits per weight/);
    assert.match(card, /mlx_lm/);
  });
});

describe('sharded output', { skip }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('shards are named like mlx-lm, indexed, and load in mlx-lm', async () => {
    const { quantizeModel } = await import('../src/pipeline/quantize.js');
    const out = join(tmp.dir, 'sharded');
    // A tiny shard limit stands in for mlx-lm's 5 GiB so that the stories model needs several files.
    const r = quantizeModel(STORIES, out, { strategy: 'uniform', bits: 8, groupSize: 64, maxShardBytes: 100_000 });
    assert.ok(r.shards.length >= 3, `shards: ${r.shards}`);
    const n = String(r.shards.length).padStart(5, '0');
    assert.deepEqual(r.shards, r.shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`));
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), [...r.shards].sort());
    assert.equal(index.metadata.total_size, r.bytes);
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [out, 'Once upon a time', '12']));
    assert.ok((gen.text.match(/[A-Za-z]+/g) ?? []).length >= 5, gen.text);
  });
});

describe('sharded input', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('a checkpoint split into shards + index quantizes to the same bytes as the single file', async () => {
    const { readSafetensorsHeader, readTensorBytes } = await import('../src/io/safetensors.js');
    const { SafetensorsWriter } = await import('../src/io/safetensors-writer.js');
    const { copyFileSync, writeFileSync } = await import('node:fs');
    const src = join(tmp.dir, 'sharded-hf');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(src);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      copyFileSync(join(STORIES, f), join(src, f));
    }
    const tensors = readSafetensorsHeader(join(STORIES, 'model.safetensors')).tensors;
    const half = Math.ceil(tensors.length / 2);
    const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    [tensors.slice(0, half), tensors.slice(half)].forEach((part, i) => {
      const w = new SafetensorsWriter(join(src, files[i]!), part.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength })), { format: 'pt' });
      for (const t of part) {
        w.write(t.name, readTensorBytes(t));
        weightMap[t.name] = files[i]!;
      }
      w.close();
    });
    writeFileSync(join(src, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const a = join(tmp.dir, 'from-shards');
    const b = join(tmp.dir, 'from-single');
    assert.equal(swan(['quantize', src, '-o', a, '--quiet']).status, 0);
    assert.equal(swan(['quantize', STORIES, '-o', b, '--quiet']).status, 0);
    assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))));
    assert.equal(readFileSync(join(a, 'config.json'), 'utf8'), readFileSync(join(b, 'config.json'), 'utf8'));
  });
});
