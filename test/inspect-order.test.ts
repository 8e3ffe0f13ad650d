/** `swan inspect` lists layers in numeric order (layers.2 before layers.10), in the table and in --json. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { naturalCompare } from '../src/pipeline/inspect.js';
import { writeSynthCheckpoint } from '../src/synth/checkpoint.js';
import { swan } from './helpers/cli.js';
import { tempDir } from './helpers/paths.js';

test('naturalCompare: digit runs compare as numbers', () => {
  const names = ['model.layers.10.mlp.up_proj.weight', 'model.layers.2.mlp.up_proj.weight', 'model.layers.1.mlp.up_proj.weight', 'model.embed_tokens.weight', 'model.layers.11.a', 'model.layers.02.a'];
  assert.deepEqual([...names].sort(naturalCompare), [
    'model.embed_tokens.weight',
    'model.layers.1.mlp.up_proj.weight',
    'model.layers.2.mlp.up_proj.weight',
    'model.layers.02.a',
    'model.layers.10.mlp.up_proj.weight',
    'model.layers.11.a',
  ]);
});

test('swan inspect orders a 12-layer model 0, 1, 2, …, 11 (HF and MLX directories)', () => {
  const tmp = tempDir();
  try {
    const src = join(tmp.dir, 'hf');
    writeSynthCheckpoint(src, { modelType: 'llama', hidden: 64, intermediate: 128, layers: 12, heads: 2, kvHeads: 2, headDim: 32, vocab: 256, tied: true });
    const mlx = join(tmp.dir, 'mlx');
    assert.equal(swan(['quantize', src, '-o', mlx, '--uniform', '--quiet']).status, 0);
    for (const dir of [src, mlx]) {
      const json = JSON.parse(swan(['inspect', dir, '--json']).stdout);
      const layers = json.tensors.map((t: { name: string }) => /layers\.(\d+)\./.exec(t.name)?.[1]).filter(Boolean).map(Number);
      assert.equal(new Set(layers).size, 12);
      assert.deepEqual(layers, [...layers].sort((a, b) => a - b), dir);
      const table = swan(['inspect', dir]).stdout;
      const order = [...table.matchAll(/^model\.layers\.(\d+)\./gm)].map((m) => Number(m[1]));
      assert.deepEqual(order, [...order].sort((a, b) => a - b));
      assert.ok(order.indexOf(2) < order.indexOf(10));
    }
  } finally {
    tmp.cleanup();
  }
});
