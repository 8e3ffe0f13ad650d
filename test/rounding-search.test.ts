/**
 * `--rounding search` (src/mlx/rounding-search.ts): never worse than MLX round-to-nearest on any
 * group, errors reported exactly as MLX's dequantize sees them, and the output loads in mlx-lm.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { roundToDType, type FloatDType } from '../src/io/float.js';
import { readTensorF32 } from '../src/io/safetensors.js';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, affineRelativeError, dequantizeAffine, quantizeAffine, type QuantRules } from '../src/mlx/affine.js';
import { quantizeAffineSearch, searchRelativeError } from '../src/mlx/rounding-search.js';
import { openModel } from '../src/arch/source.js';
import { runPython, venvPython } from '../src/python.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';
import { testMatrix } from './helpers/search-matrix.js';

const skipPython = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;


/** Per-group squared error of a decoded matrix. */
function groupErrors(w: Float32Array, deq: Float32Array, groupSize: number): Float64Array {
  const out = new Float64Array(w.length / groupSize);
  for (let i = 0; i < w.length; i++) {
    const d = w[i]! - deq[i]!;
    out[Math.floor(i / groupSize)]! += d * d;
  }
  return out;
}

function checkEveryGroup(w: Float32Array, rows: number, cols: number, bits: number, g: number, dtype: FloatDType, rules: QuantRules): { rtn: number; search: number } {
  const s = quantizeAffineSearch(w, rows, cols, { bits, groupSize: g, dtype, rules, groupErrors: true });
  const mine = groupErrors(w, dequantizeAffine(s.wq, s.scales, s.biases, rows, cols, bits, g, dtype), g);
  const r = quantizeAffine(w, rows, cols, bits, g, rules);
  const rtn = groupErrors(w, dequantizeAffine(r.wq, r.scales, r.biases, rows, cols, bits, g, dtype), g);
  let sumR = 0;
  let sumS = 0;
  for (let gi = 0; gi < rtn.length; gi++) {
    // What the search reports is what MLX's dequantize gives, and never above RTN.
    assert.equal(mine[gi], s.groupErr!.search[gi], `group ${gi} reported error`);
    assert.equal(rtn[gi], s.groupErr!.rtn[gi], `group ${gi} RTN error`);
    assert.ok(mine[gi]! <= rtn[gi]!, `${bits}-bit g${g} ${dtype} ${rules} group ${gi}: ${mine[gi]} > RTN ${rtn[gi]}`);
    sumR += rtn[gi]!;
    sumS += mine[gi]!;
  }
  return { rtn: sumR, search: sumS };
}

describe('rounding search', () => {
  test('every group ≤ RTN, every bits × group × dtype × rules, awkward groups included', () => {
    const rows = 8;
    const cols = 256;
    for (const dtype of ['BF16', 'F16', 'F32'] as FloatDType[]) {
      const w = roundToDType(testMatrix(rows, cols, 11), dtype);
      for (const rules of ['metal', 'cpu'] as QuantRules[]) {
        for (const bits of AFFINE_BITS) {
          for (const g of AFFINE_GROUP_SIZES) {
            const { rtn, search } = checkEveryGroup(w, rows, cols, bits, g, dtype, rules);
            assert.ok(search < rtn, `${bits}-bit g${g} ${dtype}: the search should improve on random weights`);
          }
        }
      }
    }
  });

  test('every group of every quantizable stories260K tensor ≤ RTN (4-bit g64, 2-bit g32, 8-bit g32)', () => {
    const source = openModel(STORIES);
    let tensors = 0;
    for (const { info, record } of source.entries) {
      if (!record.quantizable || info.shape[1]! % 32 !== 0) continue;
      const [rows, cols] = info.shape as [number, number];
      const w = roundToDType(readTensorF32(info), source.dtype);
      for (const [bits, g] of [[4, 64], [2, 32], [8, 32]] as const) {
        if (cols % g === 0) checkEveryGroup(w, rows, cols, bits, g, source.dtype, 'metal');
      }
      tensors++;
    }
    assert.ok(tensors >= 30);
  });

  test('searchRelativeError: exact on small tensors, a sampled ratio on large ones', () => {
    const w = roundToDType(testMatrix(16, 512, 3), 'BF16');
    const s = quantizeAffineSearch(w, 16, 512, { bits: 4, groupSize: 64, dtype: 'BF16', rules: 'metal' }).stats;
    assert.equal(searchRelativeError(w, 16, 512, { bits: 4, groupSize: 64, dtype: 'BF16', rules: 'metal' }), s.searchErr / s.energy);
    const big = roundToDType(testMatrix(512, 1024, 4), 'BF16');
    const rtn = affineRelativeError(big, 512, 1024, 3, 64, 'BF16', 'metal');
    const full = quantizeAffineSearch(big, 512, 1024, { bits: 3, groupSize: 64, dtype: 'BF16', rules: 'metal' }).stats;
    const est = searchRelativeError(big, 512, 1024, { bits: 3, groupSize: 64, dtype: 'BF16', rules: 'metal', rtnRelError: rtn });
    assert.ok(Math.abs(est / (full.searchErr / full.energy) - 1) < 0.05, `estimate ${est} vs ${full.searchErr / full.energy}`);
    assert.ok(est < rtn);
  });
});

describe('rounding search through real MLX', { skip: skipPython }, () => {
  const tmp = tempDir();
  before(() => venvPython());
  after(() => tmp.cleanup());

  test('mlx-lm loads the output; MLX dequantizes every layer with less error than RTN', () => {
    const rtnDir = join(tmp.dir, 'u4-rtn');
    const searchDir = join(tmp.dir, 'u4-search');
    for (const [dir, rounding] of [[rtnDir, 'rtn'], [searchDir, 'search']] as const) {
      const r = swan(['quantize', STORIES, '-o', dir, '--uniform', '--q-bits', '3', '--q-group-size', '64', '--rounding', rounding, '--quiet']);
      assert.equal(r.status, 0, r.stderr);
    }
    const rtn = JSON.parse(runPython(join(PY, 'dequant_error.py'), [rtnDir, STORIES])) as Record<string, number>;
    const search = JSON.parse(runPython(join(PY, 'dequant_error.py'), [searchDir, STORIES])) as Record<string, number>;
    assert.deepEqual(Object.keys(search).sort(), Object.keys(rtn).sort());
    assert.ok(Object.keys(rtn).length >= 30);
    for (const m of Object.keys(rtn)) assert.ok(search[m]! < rtn[m]!, `${m}: search ${search[m]} vs RTN ${rtn[m]}`);

    const gen = JSON.parse(runPython(join(PY, 'load_generate.py'), [searchDir, 'Once upon a time', '30']));
    assert.ok((gen.text.match(/[A-Za-z]+/g) ?? []).length >= 10, gen.text);
    assert.equal(Object.keys(gen.quantized).length, Object.keys(rtn).length);
  });
});
