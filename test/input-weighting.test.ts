/**
 * `--weighting norm` (src/options.ts INPUT_WEIGHTINGS, src/measure/input-weights.ts): errors
 * weighted per input channel by the squared gains of the RMSNorm feeding the layer, in the budget's
 * measurements and in `--rounding search`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { roundToDType } from '../src/io/float.js';
import { readSafetensorsHeader, readTensorBytes, readTensorF32 } from '../src/io/safetensors.js';
import { AFFINE_BITS, dequantizeAffine, quantizeAffine } from '../src/mlx/affine.js';
import { quantizeAffineSearch, searchRelativeError } from '../src/mlx/rounding-search.js';
import { IMATRIX_CLIP, inputWeightsFor } from '../src/measure/input-weights.js';
import { planModel } from '../src/pipeline/quantize.js';
import { openModel } from '../src/arch/source.js';
import { runPython, venvPython } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const skipPython = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = 0.02 * rng.normal() * Math.exp(0.5 * rng.normal());
  return w;
}

function randomWeights(cols: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const c = new Float64Array(cols);
  for (let j = 0; j < cols; j++) c[j] = Math.exp(1.5 * rng.normal()); // spread over ~two decades
  return c;
}

/** Per-group Σ c_j·(w − deq)² of a row-major matrix, straight from the decoded values. */
function weightedGroupErrors(w: Float32Array, deq: Float32Array, cols: number, g: number, c: ArrayLike<number>): Float64Array {
  const out = new Float64Array(w.length / g);
  for (let i = 0; i < w.length; i++) {
    const d = w[i]! - deq[i]!;
    out[Math.floor(i / g)]! += c[i % cols]! * d * d;
  }
  return out;
}

describe('input-channel weighting', () => {
  test('searchRelativeError with weights: the plain relative error of the weighted search, as MLX dequantizes it', () => {
    const rows = 6;
    const cols = 256;
    const w = roundToDType(randomMatrix(rows, cols, 5), 'BF16');
    const c = randomWeights(cols, 6);
    for (const bits of AFFINE_BITS) {
      for (const g of [32, 64, 128]) {
        const s = quantizeAffineSearch(w, rows, cols, { bits, groupSize: g, dtype: 'BF16', rules: 'metal', colWeights: c });
        const deq = dequantizeAffine(s.wq, s.scales, s.biases, rows, cols, bits, g, 'BF16');
        let num = 0;
        let den = 0;
        for (let i = 0; i < w.length; i++) {
          num += (w[i]! - deq[i]!) ** 2;
          den += w[i]! ** 2;
        }
        const got = searchRelativeError(w, rows, cols, { bits, groupSize: g, dtype: 'BF16', rules: 'metal', colWeights: c });
        assert.ok(Math.abs(got / (num / den) - 1) < 1e-9, `${bits}-bit g${g}: ${got} vs ${num / den}`);
        // Without weights the plain and the minimised sums are one and the same.
        const plain = quantizeAffineSearch(w, rows, cols, { bits, groupSize: g, dtype: 'BF16', rules: 'metal' }).stats;
        assert.deepEqual(plain.plain, { searchErr: plain.searchErr, rtnErr: plain.rtnErr, energy: plain.energy });
      }
    }
    assert.throws(() => quantizeAffineSearch(w, rows, cols, { bits: 4, groupSize: 64, dtype: 'BF16', rules: 'metal', colWeights: new Float64Array(3) }), /3 column weights for 256 columns/);
  });

  test('weighted search: every group ≤ RTN in the weighted error; unit weights give the unweighted bytes', () => {
    const rows = 8;
    const cols = 256;
    for (const dtype of ['BF16', 'F16'] as const) {
      const w = roundToDType(randomMatrix(rows, cols, 9), dtype);
      const c = randomWeights(cols, 10);
      for (const bits of AFFINE_BITS) {
        for (const g of [32, 64, 128]) {
          const s = quantizeAffineSearch(w, rows, cols, { bits, groupSize: g, dtype, rules: 'metal', colWeights: c, groupErrors: true });
          const mine = weightedGroupErrors(w, dequantizeAffine(s.wq, s.scales, s.biases, rows, cols, bits, g, dtype), cols, g, c);
          const r = quantizeAffine(w, rows, cols, bits, g, 'metal');
          const rtn = weightedGroupErrors(w, dequantizeAffine(r.wq, r.scales, r.biases, rows, cols, bits, g, dtype), cols, g, c);
          let better = 0;
          for (let gi = 0; gi < rtn.length; gi++) {
            assert.ok(Math.abs(mine[gi]! - s.groupErr!.search[gi]!) <= 1e-12 * (1 + mine[gi]!), `group ${gi} reported weighted error`);
            assert.ok(mine[gi]! <= rtn[gi]! * (1 + 1e-12), `${bits}-bit g${g} ${dtype} group ${gi}: ${mine[gi]} > RTN ${rtn[gi]}`);
            if (mine[gi]! < rtn[gi]!) better++;
          }
          assert.ok(better > 0, `${bits}-bit g${g}: the weighted search should improve some group`);
          const plain = quantizeAffineSearch(w, rows, cols, { bits, groupSize: g, dtype, rules: 'metal' });
          const unit = quantizeAffineSearch(w, rows, cols, { bits, groupSize: g, dtype, rules: 'metal', colWeights: new Float64Array(cols).fill(1) });
          assert.deepEqual(unit.wq, plain.wq);
          assert.deepEqual(unit.scales, plain.scales);
          assert.deepEqual(unit.biases, plain.biases);
        }
      }
    }
  });

  test('stories260K: q/k/v ← input_layernorm, gate/up ← post_attention_layernorm, tied embedding ← final norm, o/down unweighted', () => {
    const source = openModel(STORIES);
    const weights = inputWeightsFor(source, 'norm');
    const info = new Map(source.entries.map((e) => [e.info.name, e]));
    const squared = (name: string) => Float64Array.from(readTensorF32(info.get(name)!.info), (g) => g * g);
    const of = (name: string) => {
      const e = info.get(name)!;
      return weights(e.record, e.info.shape[1]!);
    };
    for (const l of [0, 4]) {
      for (const m of ['q_proj', 'k_proj', 'v_proj']) assert.deepEqual(of(`model.layers.${l}.self_attn.${m}.weight`), squared(`model.layers.${l}.input_layernorm.weight`));
      for (const m of ['gate_proj', 'up_proj']) assert.deepEqual(of(`model.layers.${l}.mlp.${m}.weight`), squared(`model.layers.${l}.post_attention_layernorm.weight`));
      assert.equal(of(`model.layers.${l}.self_attn.o_proj.weight`), undefined);
      assert.equal(of(`model.layers.${l}.mlp.down_proj.weight`), undefined);
    }
    assert.deepEqual(of('model.embed_tokens.weight'), squared('model.norm.weight'));
    const none = inputWeightsFor(source, 'none');
    assert.equal(none(info.get('model.layers.0.self_attn.q_proj.weight')!.record, 64), undefined);
  });

  test('--imatrix: its E[x²] replaces the prior where it covers a tensor, each column capped at IMATRIX_CLIP times the tensor mean', () => {
    const source = openModel(STORIES);
    const info = new Map(source.entries.map((e) => [e.info.name, e]));
    const down = 'model.layers.0.mlp.down_proj.weight'; // 172 columns: one massive channel can exceed 100× the mean
    const q = 'model.layers.0.self_attn.q_proj.weight'; // 64 columns: no column can exceed 64× the mean
    const massive = Float64Array.from({ length: 172 }, (_, j) => (j === 5 ? 1e4 : 1 + j / 172));
    const mild = Float64Array.from({ length: 64 }, (_, j) => 0.5 + (j % 7));
    const imatrix = { info: { tokens: 1, calibration: {} }, byTensor: new Map([[down, massive], [q, mild]]) };
    const weights = inputWeightsFor(source, 'norm', imatrix);
    const of = (name: string) => {
      const e = info.get(name)!;
      return weights(e.record, e.info.shape[1]!);
    };
    assert.equal(IMATRIX_CLIP, 100);
    let sum = 1e4;
    for (let j = 0; j < 172; j++) if (j !== 5) sum += 1 + j / 172;
    const capped = Float64Array.from(massive, (x, j) => (j === 5 ? (100 * sum) / 172 : x));
    assert.ok(capped[5]! < 1e4 && capped[5]! > 5000, 'the massive channel is capped');
    assert.deepEqual(of(down), capped);
    assert.equal(massive[5], 1e4, 'the imatrix itself is not changed');
    assert.deepEqual(of(q), mild, 'nothing above the cap: the imatrix as it is');
    const gate = 'model.layers.0.mlp.gate_proj.weight';
    assert.deepEqual(of(gate), inputWeightsFor(source, 'norm')(info.get(gate)!.record, 64), 'not covered: the norm prior');
  });

  test('the manifest records the weighting; a search re-plan with another weighting is refused in one line, an RTN one is the same plan', () => {
    const tmp = tempDir();
    try {
      const manifest = join(tmp.dir, 'm.json');
      const r = swan(['analyze', STORIES, '-o', manifest, '--weighting', 'none', '-q']);
      assert.equal(r.status, 0, r.stderr);
      const fresh = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.5 }, rounding: 'search' }); // norm is the default
      assert.equal(fresh.manifest!.measurement!.input_weighting, 'norm');
      assert.equal(fresh.manifest!.plan!.input_weighting, 'norm');
      const re = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--manifest', manifest, '--target-bpw', '6.5', '--rounding', 'search', '--dry-run']);
      assert.equal(re.status, 1);
      assert.match(re.stderr, /^swan: error: .*m\.json: was measured with --weighting none, not norm; pass --weighting none or analyse again\n$/);
      const ok = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--manifest', manifest, '--target-bpw', '6.5', '--rounding', 'search', '--weighting', 'none', '--dry-run']);
      assert.equal(ok.status, 0, ok.stderr);
      // RTN plans measure plain errors only: the weighting does not change them.
      const rtnNone = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.5 }, rounding: 'rtn', manifestFile: manifest, weighting: 'none' }).plan;
      const rtnNorm = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.5 }, rounding: 'rtn', manifestFile: manifest }).plan;
      assert.deepEqual(rtnNorm.entries.map((e) => e.format), rtnNone.entries.map((e) => e.format));
      assert.equal(rtnNorm.budget!.damage, rtnNone.budget!.damage);
      const bad = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--weighting', 'activations']);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /must be none or norm/);
      const none = planModel(STORIES, { strategy: 'budget', target: { bpw: 6.5 }, rounding: 'search', weighting: 'none' });
      assert.equal(none.manifest!.measurement!.input_weighting, 'none');
    } finally {
      tmp.cleanup();
    }
  });
});

describe('weighted search through real MLX', { skip: skipPython }, () => {
  const tmp = tempDir();
  before(() => venvPython());
  after(() => tmp.cleanup());

  test('mlx-lm loads it; layers not fed by a norm get the same bytes as the unweighted search', () => {
    const dirs = { none: join(tmp.dir, 'none'), norm: join(tmp.dir, 'norm') };
    for (const [w, dir] of Object.entries(dirs)) {
      const r = swan(['quantize', STORIES, '-o', dir, '--uniform', '--q-bits', '4', '--rounding', 'search', '--weighting', w, '--quiet']);
      assert.equal(r.status, 0, r.stderr);
    }
    const tensors = (dir: string) => new Map(readSafetensorsHeader(join(dir, 'model.safetensors')).tensors.map((t) => [t.name, t]));
    const a = tensors(dirs.none);
    const b = tensors(dirs.norm);
    let same = 0;
    let differ = 0;
    for (const [name, t] of a) {
      const eq = readTensorBytes(t).equals(readTensorBytes(b.get(name)!));
      if (/o_proj|down_proj|norm/.test(name)) {
        assert.ok(eq, `${name} should not depend on the weighting`);
        same++;
      } else if (/(q|k|v|gate|up)_proj\.(scales|biases)$|embed_tokens\.scales$/.test(name) && !eq) differ++;
    }
    assert.ok(same >= 20, `${same} unweighted tensors compared`);
    assert.ok(differ >= 20, `only ${differ} scales/biases of norm-fed layers changed`);
    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [dirs.norm, 'Once upon a time', '30']));
    assert.ok((gen.text.match(/[A-Za-z]+/g) ?? []).length >= 10, gen.text);
  });
});
