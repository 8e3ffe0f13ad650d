/**
 * Every supported architecture (llama, mistral, qwen2, qwen3), tied and untied, bf16/f16/f32:
 * swan's SWAN output loads in real mlx-lm with strict weights and generates.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runPython, venvPython } from '../src/python.js';
import { writeSynthCheckpoint, type SynthShape } from '../src/synth/checkpoint.js';
import { swan } from './helpers/cli.js';
import { FIXTURES, PY, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

function tiny(modelType: SynthShape['modelType'], tied: boolean): SynthShape {
  return { modelType, hidden: 64, intermediate: 192, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 512, tied };
}

describe('architectures load in mlx-lm', { skip }, () => {
  const tmp = tempDir();
  before(() => venvPython());
  after(() => tmp.cleanup());

  const cases: [string, () => string, string[]][] = [
    ['llama (stories260K-f32-untied, real, f32, explicit lm_head)', () => join(FIXTURES, 'stories260K-f32-untied'), []],
    ['llama (stories260K-f16, real, f16)', () => join(FIXTURES, 'stories260K-f16'), []],
    ['llama (stories260K bf16 → --dtype float16)', () => STORIES, ['--dtype', 'float16']],
    ...(['mistral', 'qwen2', 'qwen3'] as const).flatMap((t) =>
      [true, false].map((tied): [string, () => string, string[]] => [
        `${t} (synthetic, ${tied ? 'tied' : 'untied'})`,
        () => {
          const dir = join(tmp.dir, `${t}-${tied}`);
          writeSynthCheckpoint(dir, tiny(t, tied), { seed: 3 });
          for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(STORIES, f), join(dir, f));
          return dir;
        },
        [],
      ]),
    ),
  ];

  for (const [label, make, extra] of cases) {
    test(label, () => {
      const src = make();
      const out = join(tmp.dir, `out-${label.replace(/\W+/g, '-')}`);
      // SWAN's thresholds with a 4-bit tier at g32 (the default budget picks every group itself).
      const r = swan(['quantize', src, '-o', out, '--quiet', '--strategy', 'thresholds', '--q-group-size', '32', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      const manifest = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8'));
      const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [out, 'Once upon a time', '8']));
      assert.equal(typeof gen.text, 'string');
      const expected: Record<string, { bits: number; group_size: number; mode: string }> = {};
      for (const shard of Object.values<any>(manifest.shards)) {
        for (const t of Object.values<any>(shard.tensors)) {
          if (t.format.bits) expected[t.mlx_name.replace(/\.weight$/, '')] = { bits: t.format.bits, group_size: t.format.group_size, mode: t.format.mode };
        }
      }
      assert.ok(Object.keys(expected).length > 0, 'something was quantized');
      assert.deepEqual(gen.quantized, expected);
      const want = extra.includes('float16') ? 'float16' : manifest.dtype;
      assert.equal(manifest.dtype, want);
    });
  }
});
