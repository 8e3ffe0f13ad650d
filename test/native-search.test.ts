/**
 * The native `--rounding search` (native/search.c, the native backend's quantizeAffineSearch): the
 * TypeScript's codes, scales, biases, SearchStats sums and group errors bit for bit, for any thread
 * count, and the same model bytes end to end. Skipped where the addon is not built, like
 * test/native-backend.test.ts.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { getBackend, setBackend, type KernelBackend } from '../src/kernels/index.js';
import { createNativeBackend, loadNativeAddon } from '../src/kernels/native-backend.js';
import { roundToDType, type FloatDType } from '../src/io/float.js';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, affineRelativeError, affineRelativeErrorOn, type QuantRules } from '../src/mlx/affine.js';
import { quantizeAffineSearch, searchRelativeError, type SearchOutput, type SearchQuantizeOptions } from '../src/mlx/rounding-search.js';
import { quantizeModel } from '../src/pipeline/quantize.js';
import { Rng } from '../src/rng.js';
import { STORIES, tempDir } from './helpers/paths.js';
import { testMatrix } from './helpers/search-matrix.js';

const loaded = loadNativeAddon();
const addon = 'addon' in loaded ? loaded.addon : undefined;
const SKIP = addon ? false : `native addon not available: ${'reason' in loaded ? loaded.reason : ''}`;

/** testMatrix's awkward rows plus values on a coarse grid (exact code ties) and a row of half zeros. */
function awkwardMatrix(rows: number, cols: number, seed: number): Float32Array {
  const w = testMatrix(rows, cols, seed, 0.8);
  for (let j = 0; j < cols; j++) {
    w[5 * cols + j] = Math.round(w[5 * cols + j]! * 256) / 64;
    if (j % 2) w[6 * cols + j] = 0;
  }
  return w;
}

/** Positive column weights spanning four decades, one column at zero. */
function columnWeights(cols: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const c = new Float64Array(cols);
  for (let j = 0; j < cols; j++) c[j] = Math.exp(2.3 * rng.normal());
  c[3] = 0;
  return c;
}

/** The native search of w on `threadCounts` threads against the TypeScript's (computed once). */
function assertSameSearch(native: KernelBackend, w: Float32Array, rows: number, cols: number, opts: SearchQuantizeOptions, tag: string, threadCounts = [2]): void {
  const want = quantizeAffineSearch(w, rows, cols, opts);
  for (const threads of threadCounts) {
    addon!.setThreads(threads);
    assertSame(native.quantizeAffineSearch!(w, rows, cols, opts), want, `${tag} ×${threads}`);
  }
}

function assertSame(got: SearchOutput, want: SearchOutput, tag: string): void {
  assert.deepEqual(got.wq, want.wq, `${tag}: codes`);
  assert.deepEqual(got.scales, want.scales, `${tag}: scales`);
  assert.deepEqual(got.biases, want.biases, `${tag}: biases`);
  assert.deepEqual(got.stats, want.stats, `${tag}: stats`);
  assert.deepEqual(got.groupErr, want.groupErr, `${tag}: group errors`);
}

describe('native rounding search', () => {
  const previous = getBackend();
  after(() => {
    setBackend(previous);
    addon?.setThreads(2);
  });

  it('the TypeScript bits and sums for every bits × group × dtype, with and without column weights, on 1, 2 and 3 threads', { skip: SKIP }, () => {
    const native = createNativeBackend({ threads: 2 });
    // 96 rows × 384: enough weights (≥ 2 × 16384) for the addon to use a second thread.
    const rows = 96;
    const cols = 384;
    const raw = awkwardMatrix(rows, cols, 5);
    const cw = columnWeights(cols, 6);
    let improved = 0;
    for (const dtype of ['BF16', 'F16', 'F32'] as FloatDType[]) {
      const w = roundToDType(raw.slice(), dtype);
      for (const bits of AFFINE_BITS) {
        for (const groupSize of AFFINE_GROUP_SIZES) {
          for (const colWeights of [undefined, cw]) {
            const opts = { bits, groupSize, dtype, rules: 'metal' as QuantRules, colWeights, groupErrors: true };
            assertSameSearch(native, w, rows, cols, opts, `${dtype} ${bits}-bit g${groupSize}${colWeights ? ' weighted' : ''}`, [1, 2, 3]);
            improved += quantizeAffineSearch(w, rows, cols, { bits, groupSize, dtype, colWeights }, native).stats.improvedGroups;
          }
        }
      }
    }
    assert.ok(improved > 0, 'the search replaced some RTN groups');
  });

  it('the CPU rules, and a matrix of more than one block of groups (the sums across blocks in group order)', { skip: SKIP }, () => {
    const native = createNativeBackend({ threads: 2 });
    const w = roundToDType(awkwardMatrix(24, 512, 7), 'BF16');
    for (const bits of [3, 4]) assertSameSearch(native, w, 24, 512, { bits, groupSize: 32, dtype: 'BF16', rules: 'cpu', groupErrors: true }, `cpu ${bits}-bit`);
    // 2100 rows × 1024 in groups of 32: 67200 groups, over the 65536 summed per block in native/search.c.
    const big = roundToDType(awkwardMatrix(2100, 1024, 8), 'BF16');
    assertSameSearch(native, big, 2100, 1024, { bits: 4, groupSize: 32, dtype: 'BF16', rules: 'metal' }, 'two blocks', [1, 2]);
  });

  it("affineErrorSums: affineRelativeError's value bit for bit for every bits × group × dtype × rules, with non-finite and overflowing groups", { skip: SKIP }, () => {
    const native = createNativeBackend({ threads: 2 });
    const rows = 96;
    const cols = 384;
    const raw = awkwardMatrix(rows, cols, 11);
    raw[7 * cols + 3] = 7e4; // beyond float16: its group's scale overflows there
    let nonZero = 0;
    for (const dtype of ['BF16', 'F16', 'F32'] as FloatDType[]) {
      const w = roundToDType(raw.slice(), dtype);
      for (const rules of ['metal', 'cpu'] as QuantRules[]) {
        for (const bits of AFFINE_BITS) {
          for (const groupSize of AFFINE_GROUP_SIZES) {
            const want = affineRelativeError(w, rows, cols, bits, groupSize, dtype, rules);
            for (const threads of [1, 2, 3]) {
              addon!.setThreads(threads);
              const got = affineRelativeErrorOn(native, w, rows, cols, bits, groupSize, dtype, rules);
              assert.ok(Object.is(got, want), `${dtype} ${rules} ${bits}-bit g${groupSize} ×${threads}: ${got} vs ${want}`);
            }
            if (want > 0) nonZero++;
          }
        }
      }
    }
    assert.ok(nonZero > 0);
    // A NaN weight makes the sums NaN on both sides; an all-zero matrix gives 0.
    const nan = roundToDType(raw.slice(), 'BF16');
    nan[9 * cols + 1] = NaN;
    assert.ok(Number.isNaN(affineRelativeErrorOn(native, nan, rows, cols, 4, 64, 'BF16')));
    assert.ok(Number.isNaN(affineRelativeError(nan, rows, cols, 4, 64, 'BF16')));
    assert.equal(affineRelativeErrorOn(native, new Float32Array(2 * 64), 2, 64, 4, 64, 'BF16'), 0);
    // The arguments are checked before the backend is called.
    assert.throws(() => affineRelativeErrorOn(native, raw, rows, cols, 7, 64, 'BF16'), /bits must be one of/);
    assert.throws(() => affineRelativeErrorOn(native, raw, rows, cols, 4, 64, 'BF16', 'gpu' as QuantRules), /rules must be 'metal' or 'cpu'/);
    assert.throws(() => affineRelativeErrorOn(native, raw.subarray(1), rows, cols, 4, 64, 'BF16'), /elements, expected/);
  });

  it('quantizeAffineSearch and searchRelativeError run on the backend when given one, with the same checks', { skip: SKIP }, () => {
    const native = createNativeBackend({ threads: 2 });
    let calls = 0;
    const counting: KernelBackend = { ...native, quantizeAffineSearch: (...a) => (calls++, native.quantizeAffineSearch!(...a)) };
    const w = roundToDType(awkwardMatrix(512, 1024, 9), 'BF16');
    const opts = { bits: 3, groupSize: 64, dtype: 'BF16' as FloatDType, rules: 'metal' as QuantRules };
    const rtnRelError = affineRelativeError(w, 512, 1024, 3, 64, 'BF16', 'metal');
    // Sampled rows (the analysis's path) and the whole small tensor.
    assert.equal(searchRelativeError(w, 512, 1024, { ...opts, rtnRelError }, counting), searchRelativeError(w, 512, 1024, { ...opts, rtnRelError }));
    const small = w.subarray(0, 16 * 1024);
    assert.equal(searchRelativeError(small, 16, 1024, opts, counting), searchRelativeError(small, 16, 1024, opts));
    assert.equal(calls, 2);
    assert.throws(() => quantizeAffineSearch(w, 512, 1024, { ...opts, colWeights: new Float64Array(3) }, counting), /3 column weights for 1024 columns/);
    assert.throws(() => quantizeAffineSearch(w, 512, 1024, { ...opts, rules: 'gpu' as QuantRules }, counting), /rules must be 'metal' or 'cpu'/);
    assert.throws(() => quantizeAffineSearch(w, 512, 1024, { ...opts, bits: 7 }, counting), /bits must be one of/);
    assert.equal(calls, 2, 'bad arguments never reach the backend');
  });

  it('default quantize of stories260K: the same model and manifest bytes with the native search and RTN error as without them', { skip: SKIP }, () => {
    const tmp = tempDir();
    try {
      const native = createNativeBackend({ threads: 2 });
      let calls = 0;
      let sums = 0;
      const counting: KernelBackend = {
        ...native,
        quantizeAffineSearch: (...a) => (calls++, native.quantizeAffineSearch!(...a)),
        affineErrorSums: (...a) => (sums++, native.affineErrorSums!(...a)),
      };
      const withoutSearch: KernelBackend = { ...native, quantizeAffineSearch: undefined, affineErrorSums: undefined };
      const files = ['model.safetensors', 'swan-manifest.json'];
      // jobs 1: the analysis runs in this thread, on the backend installed here.
      const outputs = [counting, withoutSearch].map((backend, i) => {
        setBackend(backend);
        const out = join(tmp.dir, `out${i}`);
        quantizeModel(STORIES, out, { jobs: 1 });
        return files.map((f) => readFileSync(join(out, f)));
      });
      assert.ok(calls > 100, `the analysis and the writer searched natively (${calls} calls)`);
      assert.ok(sums > 100, `the analysis measured RTN errors natively (${sums} calls)`);
      for (let k = 0; k < files.length; k++) assert.ok(outputs[0]![k]!.equals(outputs[1]![k]!), `${files[k]} differs`);
    } finally {
      setBackend(previous);
      tmp.cleanup();
    }
  });
});
