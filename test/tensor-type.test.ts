/**
 * `--tensor-type PATTERN=FORMAT` pins a tensor's format under every strategy (the rule lives in
 * src/plan/eligibility.ts), and mlx-lm loads the result with those formats.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runPython } from '../src/python.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const PINS = ['--tensor-type', 'embed_tokens=6bit-g32', '--tensor-type', 'layers\\.0\\.mlp\\.up_proj=float', '--tensor-type', 'layers\\.1\\.self_attn\\.q_proj=8bit'];

/** Format of each tensor by HF name, from the manifest (or the written safetensors headers for uniform). */
function formats(out: string): Map<string, string> {
  const r = swan(['inspect', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const m = new Map<string, string>();
  for (const t of JSON.parse(r.stdout).tensors as { name: string; quant: string }[]) m.set(t.name, t.quant);
  return m;
}

describe('--tensor-type pins', () => {
  const tmp = tempDir('swan-pins-');
  after(() => tmp.cleanup());
  const strategies: [string, string[]][] = [
    ['thresholds', ['--strategy', 'thresholds']],
    ['uniform', ['-q', '--q-bits', '3']],
    ['recipe', ['-q', '--quant-predicate', 'mixed_2_6']],
    ['budget', ['--target-bpw', '8']],
  ];
  for (const [name, args] of strategies) {
    test(`honoured by ${name}`, () => {
      const out = join(tmp.dir, name);
      const r = swan(['quantize', STORIES, '-o', out, ...args, ...PINS, '--quiet']);
      assert.equal(r.status, 0, r.stderr);
      const f = formats(out);
      assert.equal(f.get('model.embed_tokens.weight'), '6-bit g32');
      assert.equal(f.get('model.layers.0.mlp.up_proj.weight'), '-');
      assert.equal(f.get('model.layers.1.self_attn.q_proj.weight'), '8-bit g64');
      if (name !== 'uniform' && name !== 'recipe') {
        const manifest = readFileSync(join(out, 'swan-manifest.json'), 'utf8');
        assert.match(manifest, /"reason": "user_pin/);
      }
    });
  }
  test('mlx-lm loads a pinned model with the pinned formats', { skip: process.env.SWAN_SKIP_PYTHON === '1' ? 'SWAN_SKIP_PYTHON=1' : false }, () => {
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [join(tmp.dir, 'uniform'), 'Once upon a time', '8']));
    assert.deepEqual(gen.quantized['model.embed_tokens'], { bits: 6, group_size: 32, mode: 'affine' });
    assert.deepEqual(gen.quantized['model.layers.1.self_attn.q_proj'], { bits: 8, group_size: 64, mode: 'affine' });
    assert.equal(gen.quantized['model.layers.0.mlp.up_proj'], undefined);
  });
  test('a pin that matches nothing, a bad format or a format the tensor cannot take: one line', () => {
    const out = join(tmp.dir, 'bad');
    const cases: [string, RegExp][] = [
      ['no_such_tensor=4bit', /--tensor-type no_such_tensor: matches no tensor of the model/],
      ['embed_tokens=5bits', /FORMAT must be float or <bits>bit\[-g<group>\]/],
      ['embed_tokens', /expected PATTERN=FORMAT/],
      ['layers\\.0\\.mlp\\.down_proj=4bit-g64', /--tensor-type layers\\\.0\\\.mlp\\\.down_proj: tensor model\.layers\.0\.mlp\.down_proj\.weight \(last dim 172\) cannot take 4-bit g64/],
    ];
    for (const [pin, message] of cases) {
      const r = swan(['quantize', STORIES, '-o', out, '-q', '--tensor-type', pin]);
      assert.equal(r.status, 1, pin);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});
