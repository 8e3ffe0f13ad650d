/**
 * MLX's fp quantization modes end to end against real mlx-lm (venv):
 * - `swan quantize --uniform --q-mode M` equals `mlx_lm.convert -q --q-mode M` tensor by tensor,
 *   config.json and index byte for byte, and loads and generates in mlx-lm;
 * - `--q-mode` takes only the mode's bits and group, as mx.quantize does;
 * - `--formats` restricts every strategy's choices; a budget plan mixing mxfp4 with affine layers
 *   writes the per-layer `mode` and loads in mlx-lm with each module in its format.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseFormats } from '../src/format.js';
import { runPython, venvPython } from '../src/python.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

/** The manifest's formats of written tensors, keyed by MLX module path. */
function manifestFormats(dir: string): Record<string, { bits: number; group_size: number; mode: string }> {
  const manifest = JSON.parse(readFileSync(join(dir, 'swan-manifest.json'), 'utf8'));
  const out: Record<string, { bits: number; group_size: number; mode: string }> = {};
  for (const shard of Object.values<any>(manifest.shards)) {
    for (const t of Object.values<any>(shard.tensors)) {
      if (t.format.bits) out[t.mlx_name.replace(/\.weight$/, '')] = { bits: t.format.bits, group_size: t.format.group_size, mode: t.format.mode };
    }
  }
  return out;
}

describe('--formats syntax', () => {
  const labels = (s: string) => parseFormats(s).map((f) => (f.kind === 'fp' ? f.mode : `${f.bits}/${f.groupSize}`));
  test('exact formats, families, bits and groups', () => {
    assert.deepEqual(labels('4bit-g64,8bit-g64'), ['4/64', '8/64']);
    assert.deepEqual(labels('mxfp4'), ['mxfp4']);
    assert.deepEqual(labels('fp'), ['mxfp4', 'nvfp4', 'mxfp8']);
    assert.deepEqual(labels('g32'), ['2/32', '3/32', '4/32', '5/32', '6/32', '8/32', 'mxfp4', 'mxfp8']);
    assert.deepEqual(labels('affine-4bit'), ['4/32', '4/64', '4/128']);
    assert.deepEqual(labels('8bit'), ['8/32', '8/64', '8/128', 'mxfp8']);
    assert.equal(labels('affine').length, 18);
  });
  test('unknown words and empty matches are one-line errors', () => {
    assert.throws(() => parseFormats('int4'), /unknown word "int4"/);
    assert.throws(() => parseFormats('nvfp4-g32'), /matches no MLX format/);
    assert.throws(() => parseFormats('4bit,,8bit'), /empty term/);
  });
});

describe('fp modes in real mlx-lm', { skip }, () => {
  const tmp = tempDir();
  before(() => venvPython());
  after(() => tmp.cleanup());

  for (const mode of ['mxfp4', 'nvfp4', 'mxfp8']) {
    test(`--uniform --q-mode ${mode} equals mlx_lm.convert -q --q-mode ${mode} and generates`, () => {
      const ours = join(tmp.dir, `swan-${mode}`);
      const ref = join(tmp.dir, `convert-${mode}`);
      const r = swan(['quantize', STORIES, '-o', ours, '--uniform', '--q-mode', mode]);
      assert.equal(r.status, 0, r.stderr);
      execFileSync(venvPython(), ['-m', 'mlx_lm', 'convert', '--hf-path', STORIES, '--mlx-path', ref, '-q', '--q-mode', mode], { stdio: 'pipe' });
      const report = JSON.parse(runPython(join(PY, 'compare_mlx_dirs.py'), [ours, ref]));
      assert.deepEqual(report.diffs, []);
      assert.ok(report.tensors > 40);
      assert.equal(report.config_a.quantization.mode, mode);
      assert.equal(readFileSync(join(ours, 'config.json'), 'utf8'), readFileSync(join(ref, 'config.json'), 'utf8'));
      assert.equal(readFileSync(join(ours, 'model.safetensors.index.json'), 'utf8'), readFileSync(join(ref, 'model.safetensors.index.json'), 'utf8'));
      const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [ours, 'Once upon a time', '20']));
      assert.ok((gen.text.match(/[A-Za-z]+/g) ?? []).length >= 5, gen.text);
      const modules = Object.values<any>(gen.quantized);
      assert.ok(modules.length > 0);
      for (const m of modules) assert.deepEqual(m, report.config_a.quantization);
    });
  }

  test('--q-mode refuses bits and groups the mode does not have, in one line', () => {
    const r = swan(['quantize', STORIES, '--dry-run', '--uniform', '--q-mode', 'nvfp4', '--q-group-size', '32']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /nvfp4 requires group size 16 \(got --q-group-size 32\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const ok = swan(['quantize', STORIES, '--dry-run', '--uniform', '--q-mode', 'mxfp8', '--q-bits', '8', '--q-group-size', '32']);
    assert.equal(ok.status, 0, ok.stderr);
  });

  test('--formats restricts a budget plan; a plan mixing mxfp4 and affine loads and generates', () => {
    const out = join(tmp.dir, 'swan-mixed');
    const r = swan(['quantize', STORIES, '-o', out, '--target-bpw', '7.5', '--formats', 'mxfp4,8bit-g64']);
    assert.equal(r.status, 0, r.stderr);
    const formats = manifestFormats(out);
    const used = new Set(Object.values(formats).map((f) => `${f.mode}/${f.bits}/${f.group_size}`));
    for (const u of used) assert.ok(['mxfp4/4/32', 'affine/8/64'].includes(u), `format ${u} is outside --formats`);
    assert.ok(used.has('mxfp4/4/32') && used.has('affine/8/64'), `expected both formats, got ${[...used].join(', ')}`);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    for (const [path, f] of Object.entries(formats)) {
      const entry = config.quantization[path] ?? config.quantization;
      assert.deepEqual({ bits: entry.bits, group_size: entry.group_size, mode: entry.mode }, f, path);
    }
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [out, 'Once upon a time', '20']));
    assert.ok((gen.text.match(/[A-Za-z]+/g) ?? []).length >= 5, gen.text);
    assert.deepEqual(gen.quantized, formats);
  });

  test('--formats g64 keeps every quantized tensor of a thresholds plan at group 64', () => {
    const r = swan(['quantize', STORIES, '--dry-run', '-v', '--formats', 'g64']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /g32|g128|mxfp|nvfp/);
  });
});

describe('what a quantize run measures', () => {
  let dir: string;
  let cleanup: () => void;
  before(() => {
    ({ dir, cleanup } = tempDir('swan-measured-formats-'));
  });
  after(() => cleanup());

  test('the default budget measures only its affine candidates; re-planning with an unmeasured fp format is refused', () => {
    const out = join(dir, 'out');
    const r = swan(['quantize', STORIES, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const manifest = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8'));
    const modes = new Set<string>();
    let measured = 0;
    for (const shard of Object.values<any>(manifest.shards)) {
      for (const t of Object.values<any>(shard.tensors)) {
        for (const c of t.candidates ?? []) (modes.add(c.mode ?? 'affine'), measured++);
      }
    }
    assert.ok(measured > 0, 'the budget run stores its candidate measurements');
    assert.deepEqual([...modes], ['affine']);
    const again = swan(['quantize', STORIES, '--manifest', join(out, 'swan-manifest.json'), '--target-bpw', '7.5', '--formats', 'mxfp4,8bit-g64', '--dry-run']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /no measurement of mxfp4/);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
  });
});
