/**
 * `swan imatrix` (scripts/mlx_imatrix.py through real mlx-lm) against an independent numpy float64
 * Llama computing the same statistic (test/py/np_imatrix_ref.py), on stories260K, from a text
 * written here and from the model's own samples; and `swan quantize --imatrix`: the data-free plan
 * rounded under its weights, refused in one line when it belongs to another model; `--covariance`
 * (E[x xᵀ] per layer input, against the same numpy forward) and `quantize --imatrix` rounding by GPTQ
 * under it, loaded and run by mlx-lm.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blasPreload } from '../src/eval/evaluate.js';
import { IMATRIX_SCRIPT } from '../src/eval/imatrix.js';
import { readSafetensorsHeader, readTensorF32 } from '../src/io/safetensors.js';
import { manifestTensors, type Manifest } from '../src/manifest/schema.js';
import { runPython, venvPython } from '../src/python.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const skip = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

/** Calibration text of this test (not a fixture: the fixture texts are evaluation texts). */
const STORY = [
  'Tom had a red ball. He liked to play with it in the park every day. One day the ball rolled away',
  'and Tom ran after it. He saw a little dog with the ball. The dog was happy and wagged its tail.',
  'Tom laughed and they played together until the sun went down. Then Tom went home to his mom.',
  'She gave him a big hug and some warm milk. Tom smiled and said the dog was his new friend.',
].join('\n');

interface Imatrix {
  tokens: number;
  entries: Record<string, { shape: number[]; count: number; mean_sq: number[]; covariance?: string }>;
  covariance_file?: string;
}

/** Largest |swan − numpy| relative to the entry's largest value, over every entry. */
function worstRelativeGap(ours: Imatrix, ref: { tokens: number; entries: Record<string, number[]> }): number {
  assert.deepEqual(Object.keys(ours.entries).sort(), Object.keys(ref.entries).sort());
  let worst = 0;
  for (const [name, want] of Object.entries(ref.entries)) {
    const got = ours.entries[name]!.mean_sq;
    assert.equal(got.length, want.length, name);
    const scale = Math.max(...want);
    assert.ok(scale > 0, name);
    for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(got[j]! - want[j]!) / scale);
  }
  return worst;
}

describe('swan imatrix', { skip }, () => {
  const tmp = tempDir();
  const text = join(tmp.dir, 'story.txt');
  before(() => {
    venvPython();
    writeFileSync(text, STORY);
  });
  after(() => tmp.cleanup());

  test('--text: every linear input E[x²] matches a numpy float64 forward within 1e-4', () => {
    const out = join(tmp.dir, 'text.imatrix.json');
    const r = swan(['imatrix', STORIES, '-o', out, '--text', text, '--seq-len', '32', '-q']);
    assert.equal(r.status, 0, r.stderr);
    const ours = JSON.parse(readFileSync(out, 'utf8')) as Imatrix;
    const ref = JSON.parse(runPython(join(PY, 'np_imatrix_ref.py'), [STORIES, '--text', text, '--seq-len', '32']));
    assert.equal(ours.tokens, ref.tokens);
    assert.ok(ours.tokens > 100);
    // 5 layers × 7 linears + the tied head (the embedding's as_linear).
    assert.equal(Object.keys(ours.entries).length, 36);
    assert.deepEqual(ours.entries['model.layers.0.mlp.down_proj.weight']!.shape, [64, 172]);
    assert.ok(worstRelativeGap(ours, ref) < 1e-4);
  });

  test('--self: seeded own samples from BOS (no chat template), same file twice, numpy agrees on those tokens', () => {
    const a = join(tmp.dir, 'self-a.json');
    const b = join(tmp.dir, 'self-b.json');
    const tokens = join(tmp.dir, 'self-tokens.json');
    const py = venvPython();
    // The worker as swan runs it (the same BLAS: float sums differ in their last bits between BLAS libraries).
    execFileSync(py, [IMATRIX_SCRIPT, STORIES, a, '--self', '150', '--seq-len', '64', '--seed', '3', '--dump-tokens', tokens], { stdio: 'pipe', env: { ...process.env, ...blasPreload(true) } });
    const r = swan(['imatrix', STORIES, '-o', b, '--self', '150', '--seq-len', '64', '--seed', '3', '-q']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'), 'same seed, same imatrix');
    const windows = JSON.parse(readFileSync(tokens, 'utf8')) as number[][];
    for (const w of windows) assert.equal(w[0], 1, 'each sample starts from BOS');
    assert.ok(windows.reduce((s, w) => s + w.length - 1, 0) >= 150, 'at least 150 generated tokens');
    const ours = JSON.parse(readFileSync(a, 'utf8')) as Imatrix;
    assert.deepEqual(JSON.parse(readFileSync(a, 'utf8')).calibration, { self_tokens: 150, seed: 3, temperature: 1, seq_len: 64 });
    const ref = JSON.parse(runPython(join(PY, 'np_imatrix_ref.py'), [STORIES, '--tokens', tokens]));
    assert.ok(worstRelativeGap(ours, ref) < 1e-4);
  });

  test('--covariance: every input E[x xᵀ] matches a numpy float64 forward within 1e-4; q/k/v and gate/up share one; its diagonal is mean_sq', () => {
    const out = join(tmp.dir, 'cov.imatrix.json');
    const r = swan(['imatrix', STORIES, '-o', out, '--text', text, '--seq-len', '32', '--covariance', '-q']);
    assert.equal(r.status, 0, r.stderr);
    const ours = JSON.parse(readFileSync(out, 'utf8')) as Imatrix;
    assert.equal(ours.covariance_file, 'cov.imatrix.cov.safetensors');
    const header = readSafetensorsHeader(join(tmp.dir, ours.covariance_file));
    assert.equal(header.metadata.format, 'swan-imatrix-covariance');
    const byKey = new Map(header.tensors.map((t) => [t.name, t]));
    // 5 layers × 4 distinct inputs (attention in, o_proj in, MLP in, down_proj in) + the head's.
    assert.equal(byKey.size, 21);
    const e = ours.entries;
    assert.equal(e['model.layers.2.self_attn.k_proj.weight']!.covariance, 'model.layers.2.self_attn.q_proj.weight');
    assert.equal(e['model.layers.2.self_attn.v_proj.weight']!.covariance, 'model.layers.2.self_attn.q_proj.weight');
    assert.equal(e['model.layers.2.mlp.up_proj.weight']!.covariance, 'model.layers.2.mlp.gate_proj.weight');
    assert.equal(e['model.layers.2.mlp.down_proj.weight']!.covariance, 'model.layers.2.mlp.down_proj.weight');
    const ref = JSON.parse(runPython(join(PY, 'np_imatrix_ref.py'), [STORIES, '--text', text, '--seq-len', '32', '--covariance'])) as { covariance: Record<string, number[]> };
    let worst = 0;
    for (const [name, entry] of Object.entries(e)) {
      const got = readTensorF32(byKey.get(entry.covariance!)!);
      const want = ref.covariance[name]!;
      const n = entry.shape[1]!;
      assert.equal(got.length, n * n, name);
      const scale = Math.max(...want.map(Math.abs));
      for (let k = 0; k < got.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!) / scale);
      for (let j = 0; j < n; j++) assert.ok(Math.abs(got[j * n + j]! - entry.mean_sq[j]!) <= 1e-5 * entry.mean_sq[j]! + 1e-12, `${name}: diagonal ${j}`);
    }
    assert.ok(worst < 1e-4, `worst gap ${worst}`);
    // A file of that name that swan did not write is never replaced.
    const foreign = join(tmp.dir, 'foreign.json');
    writeFileSync(foreign, readFileSync(out));
    writeFileSync(join(tmp.dir, 'foreign.cov.safetensors'), 'not ours');
    const again = swan(['imatrix', STORIES, '-o', foreign, '--text', text, '--seq-len', '32', '--covariance', '--overwrite', '-q']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /foreign\.cov\.safetensors: exists and is not a covariance file swan wrote; not replacing it/);
    assert.equal(readFileSync(join(tmp.dir, 'foreign.cov.safetensors'), 'utf8'), 'not ours');
  });

  test('quantize --imatrix with covariances: GPTQ by default (the search\'s plan), the same bytes twice, loads and generates in mlx-lm; gptq without covariances is refused', () => {
    const im = join(tmp.dir, 'cov.imatrix.json');
    if (!existsSync(im)) assert.equal(swan(['imatrix', STORIES, '-o', im, '--text', text, '--seq-len', '32', '--covariance', '-q']).status, 0);
    const dirs = { gptq: join(tmp.dir, 'gptq'), again: join(tmp.dir, 'gptq-again'), search: join(tmp.dir, 'gptq-search') };
    for (const [out, extra] of [[dirs.gptq, []], [dirs.again, []], [dirs.search, ['--rounding', 'search']]] as const) {
      const r = swan(['quantize', STORIES, '-o', out, '--target-bpw', '6', '--imatrix', im, '--quiet', ...extra]);
      assert.equal(r.status, 0, r.stderr);
    }
    const manifest = (d: string) => JSON.parse(readFileSync(join(d, 'swan-manifest.json'), 'utf8')) as Manifest;
    assert.equal(manifest(dirs.gptq).plan?.rounding, 'gptq');
    const formats = (d: string) => [...manifestTensors(manifest(d))].map(([name, t]) => [name, t.format]);
    assert.deepEqual(formats(dirs.gptq), formats(dirs.search), 'the same plan as the search');
    const weights = (d: string) => readFileSync(join(d, 'model.safetensors'));
    assert.ok(weights(dirs.gptq).equals(weights(dirs.again)), 'deterministic');
    assert.ok(!weights(dirs.gptq).equals(weights(dirs.search)), 'GPTQ chose other codes');
    assert.equal(statSync(join(dirs.gptq, 'model.safetensors')).size, statSync(join(dirs.search, 'model.safetensors')).size);
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [dirs.gptq, 'Once upon a time', '20'])) as { text: string; quantized: Record<string, unknown> };
    assert.ok(gen.text.trim().length > 0);
    assert.ok(Object.keys(gen.quantized).length > 20);

    const plain = join(tmp.dir, 'text.imatrix.json');
    if (!existsSync(plain)) assert.equal(swan(['imatrix', STORIES, '-o', plain, '--text', text, '--seq-len', '32', '-q']).status, 0);
    const r = swan(['quantize', STORIES, '-o', join(tmp.dir, 'never'), '--target-bpw', '6', '--rounding', 'gptq', '--imatrix', plain]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--rounding gptq needs --imatrix FILE made by `swan imatrix --covariance`/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(join(tmp.dir, 'never')));
    // The covariance file must sit beside the imatrix: a path elsewhere is refused.
    const moved = JSON.parse(readFileSync(im, 'utf8')) as Imatrix;
    moved.covariance_file = '../elsewhere.cov.safetensors';
    const bad = join(tmp.dir, 'moved.imatrix.json');
    writeFileSync(bad, JSON.stringify(moved));
    const r2 = swan(['quantize', STORIES, '--dry-run', '--target-bpw', '6', '--imatrix', bad]);
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /moved\.imatrix\.json: covariance_file must be a file name beside the imatrix/);
  });

  test("quantize --imatrix: the data-free plan, rounded under the imatrix's weights (the same from --manifest); another model's imatrix is refused in one line", () => {
    const im = join(tmp.dir, 'text.imatrix.json');
    if (!existsSync(im)) assert.equal(swan(['imatrix', STORIES, '-o', im, '--text', text, '--seq-len', '32', '-q']).status, 0);
    const withIm = join(tmp.dir, 'with-imatrix');
    const without = join(tmp.dir, 'without-imatrix');
    const fromManifest = join(tmp.dir, 'with-imatrix-from-manifest');
    for (const [out, extra] of [[withIm, ['--imatrix', im]], [without, []]] as const) {
      const r = swan(['quantize', STORIES, '-o', out, '--target-bpw', '6', '--quiet', ...extra]);
      assert.equal(r.status, 0, r.stderr);
    }
    const manifest = (d: string) => JSON.parse(readFileSync(join(d, 'swan-manifest.json'), 'utf8')) as Manifest;
    const formats = (d: string) => [...manifestTensors(manifest(d))].map(([name, t]) => [name, t.format]);
    assert.deepEqual(formats(withIm), formats(without), 'the same plan');
    assert.equal(manifest(withIm).plan?.imatrix, 'text.imatrix.json');
    const weights = (d: string) => readFileSync(join(d, 'model.safetensors'));
    assert.ok(!weights(withIm).equals(weights(without)), 'rounded differently');
    const replanned = swan(['quantize', STORIES, '-o', fromManifest, '--manifest', join(withIm, 'swan-manifest.json'), '--target-bpw', '6', '--quiet', '--imatrix', im]);
    assert.equal(replanned.status, 0, replanned.stderr);
    assert.ok(weights(fromManifest).equals(weights(withIm)), 're-planned from the manifest: the same bytes');
    const rtn = swan(['quantize', STORIES, '--dry-run', '--target-bpw', '6', '--rounding', 'rtn', '--imatrix', im]);
    assert.notEqual(rtn.status, 0);
    assert.match(rtn.stderr, /--imatrix has no effect here .*--rounding search/);

    const other = JSON.parse(readFileSync(im, 'utf8')) as Imatrix;
    other.entries['model.layers.0.self_attn.q_proj.weight']!.shape = [64, 128];
    const bad = join(tmp.dir, 'other.imatrix.json');
    writeFileSync(bad, JSON.stringify(other));
    const r = swan(['quantize', STORIES, '-o', join(tmp.dir, 'never'), '--target-bpw', '6', '--imatrix', bad]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /other\.imatrix\.json: is from another model: model\.layers\.0\.self_attn\.q_proj\.weight is \[64, 128\] there, \[64, 64\] here/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);

    const fewer = JSON.parse(readFileSync(im, 'utf8')) as Imatrix;
    delete fewer.entries['model.layers.4.mlp.down_proj.weight'];
    writeFileSync(bad, JSON.stringify(fewer));
    const r2 = swan(['quantize', STORIES, '--dry-run', '--target-bpw', '6', '--imatrix', bad]);
    assert.notEqual(r2.status, 0);
    assert.match(r2.stderr, /is from another model: it has nothing for model\.layers\.4\.mlp\.down_proj\.weight/);
  });
});
