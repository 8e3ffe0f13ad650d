/**
 * `swan quantize` as a drop-in for `mlx_lm.convert`: convert's spelling gives convert's output
 * (real mlx-lm in the venv, MLX CPU rules), and every option that would have no effect in the
 * chosen mode is refused with one line instead of being silently ignored.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runPython, venvPython } from '../src/python.js';
import { recipeBits } from '../src/plan/uniform.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const SKIP_PY = process.env.SWAN_SKIP_PYTHON === '1' ? 'SWAN_SKIP_PYTHON=1' : false;

describe('same output as mlx_lm.convert for the same command', { skip: SKIP_PY }, () => {
  const tmp = tempDir('swan-convert-');
  after(() => tmp.cleanup());
  const cases: [string, string[]][] = [
    ['-q 4-bit g64', ['-q', '--q-bits', '4', '--q-group-size', '64']],
    ['-q 3-bit g32', ['-q', '--q-bits', '3', '--q-group-size', '32']],
    ['mixed_2_6', ['-q', '--quant-predicate', 'mixed_2_6']],
    ['mixed_3_4', ['-q', '--quant-predicate', 'mixed_3_4']],
    ['mixed_3_6', ['-q', '--quant-predicate', 'mixed_3_6', '--q-group-size', '32']],
    ['mixed_4_6', ['-q', '--quant-predicate', 'mixed_4_6']],
  ];
  for (const [name, args] of cases) {
    test(`${name}: tensor by tensor, config.json and the index byte for byte`, () => {
      const ours = join(tmp.dir, `swan-${name.replace(/\W+/g, '_')}`);
      const ref = join(tmp.dir, `convert-${name.replace(/\W+/g, '_')}`);
      const r = swan(['quantize', '--hf-path', STORIES, '--mlx-path', ours, ...args, '--mlx-rules', 'cpu', '--quiet']);
      assert.equal(r.status, 0, r.stderr);
      execFileSync(venvPython(), ['-m', 'mlx_lm', 'convert', '--hf-path', STORIES, '--mlx-path', ref, ...args], { stdio: 'pipe' });
      const report = JSON.parse(runPython(join(PY, 'compare_mlx_dirs.py'), [ours, ref]));
      assert.deepEqual(report.diffs, []);
      assert.ok(report.tensors > 40);
      for (const f of ['config.json', 'model.safetensors.index.json']) assert.equal(readFileSync(join(ours, f), 'utf8'), readFileSync(join(ref, f), 'utf8'), f);
    });
  }
  test('-d: a quantized MLX model back to float, as mlx_lm.convert -d', () => {
    const quantized = join(tmp.dir, 'convert-mixed_3_6');
    const ours = join(tmp.dir, 'swan-dequantized');
    const ref = join(tmp.dir, 'convert-dequantized');
    const r = swan(['quantize', '--hf-path', quantized, '--mlx-path', ours, '-d', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    execFileSync(venvPython(), ['-m', 'mlx_lm', 'convert', '--hf-path', quantized, '--mlx-path', ref, '-d'], { stdio: 'pipe' });
    const report = JSON.parse(runPython(join(PY, 'compare_mlx_dirs.py'), [ours, ref]));
    assert.deepEqual(report.diffs, []);
    assert.ok(report.tensors > 40);
    for (const f of ['config.json', 'model.safetensors.index.json']) assert.equal(readFileSync(join(ours, f), 'utf8'), readFileSync(join(ref, f), 'utf8'), f);
  });
});

test("recipeBits follows convert's layer rule (32 layers: first/last eighth and every third between)", () => {
  const high = [...Array(32).keys()].filter((i) => recipeBits('mixed_3_6', `model.layers.${i}.mlp.down_proj`, 32) === 6);
  assert.deepEqual(high, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  assert.equal(recipeBits('mixed_3_6', 'model.layers.6.self_attn.q_proj', 32), 3);
  assert.equal(recipeBits('mixed_2_6', 'model.layers.6.self_attn.v_proj', 32), 6);
  assert.equal(recipeBits('mixed_3_4', 'lm_head', 32), 4);
  assert.equal(recipeBits('mixed_4_6', 'model.embed_tokens', 32), 4);
});

describe('options that would have no effect are errors, one line each', () => {
  const tmp = tempDir('swan-ineffective-');
  after(() => tmp.cleanup());
  const refused: [string[], RegExp][] = [
    [['--q-bits', '3'], /--q-bits has no effect here \(strategy \w+\): it needs -q\/--quantize/],
    [['--quant-predicate', 'mixed_3_6'], /--quant-predicate recipe needs the uniform strategy \(-q\)/],
    [['--strategy', 'thresholds', '--quant-predicate', 'mixed_3_6'], /--quant-predicate recipe needs the uniform strategy/],
    [['--target-bpw', '5', '--q-group-size', '32'], /--q-group-size has no effect here \(strategy budget\)/],
    [['--strategy', 'thresholds', '--weighting', 'none'], /--weighting has no effect here .*--rounding search/],
    [['--strategy', 'thresholds', '--budget-keeps-protected'], /--budget-keeps-protected has no effect here .*the budget strategy/],
    [['-q', '--all-metrics'], /--all-metrics has no effect here \(strategy uniform\)/],
    [['-q', '--threshold-2bit', '0.2'], /--threshold-2bit has no effect here \(strategy uniform\)/],
    [['-q', '--seed', '3'], /--seed has no effect here \(strategy uniform\)/],
    [['-q', '--score-protected'], /--score-protected has no effect here/],
    [['-q', '--protect', 'lm_head'], /--protect has no effect here \(strategy uniform\)/],
    [['-q', '--sensitive', 'v_proj'], /--sensitive has no effect here \(strategy uniform\)/],
    [['-q', '--manifest', 'm.json'], /--manifest has no effect here \(strategy uniform/],
    [['--private'], /--private has no effect here .*--upload-repo/],
    [['--quiet', '--verbose'], /--verbose has no effect here .*no --quiet/],
    [['--hf-path', STORIES], /give the model argument or --hf-path, not both/],
    [['--mlx-path', 'x'], /give -o\/--output or --mlx-path, not both/],
    [['-d'], /config\.json: has no "quantization": not a quantized MLX model, nothing to dequantize/],
    [['-d', '-q'], /--quantize has no effect with -d\/--dequantize \(choose quantize or dequantize, not both\)/],
    [['-d', '--q-bits', '4'], /--q-bits has no effect with -d\/--dequantize/],
  ];
  for (const [flags, message] of refused) {
    test(flags.join(' '), () => {
      const out = join(tmp.dir, 'out');
      const r = swan(['quantize', STORIES, '-o', out, ...flags]);
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, message);
      assert.ok(!existsSync(out), 'nothing written');
    });
  }
  test('-q is --quantize (uniform), never --quiet; --help opens with the convert mapping', () => {
    const r = swan(['quantize', STORIES, '-q', '--q-bits', '3', '--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /3-bit/);
    const help = swan(['quantize', '--help']);
    assert.match(help.stdout, /^Coming from mlx_lm\.convert:\n/);
    assert.match(help.stdout, /--quiet +no progress bars/);
    assert.doesNotMatch(help.stdout, /-q, --quiet/);
  });
});
