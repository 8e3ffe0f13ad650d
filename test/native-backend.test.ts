/**
 * The optional native (BLAS) backend. Where dist/native/swan_blas.node is not built (no C compiler
 * or OpenBLAS at build time, Windows, SWAN_NO_NATIVE=1) the backend's own tests skip with the reason
 * and only the fallback is checked.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { getBackend, jsBackend, setBackend } from '../src/kernels/index.js';
import { createNativeBackend, loadNativeAddon, type NativeAddon } from '../src/kernels/native-backend.js';
import { closeBackend, installBestBackend } from '../src/kernels/select.js';
import { roundToDType } from '../src/io/float.js';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, quantizeAffine, quantizeAffineOn } from '../src/mlx/affine.js';
import { computeMetrics, rtnNrmse } from '../src/metrics/index.js';
import { svdMetric } from '../src/metrics/svd.js';
import {
  cholesky,
  gramF64,
  invertUpper,
  mulUpper,
  orthonormalize,
  symmetricEigenvalues,
  symmetricEigenvaluesOn,
  sumMinMax,
} from '../src/kernels/linalg.js';
import { Rng } from '../src/rng.js';
import { gemmGamma, referenceGemm } from './helpers/gemm-reference.js';
import { checkNormalPairs } from './helpers/normal-pairs.js';
import { conditionedPanel, orthogonalityError, reconstructionError, symmetricCases } from './helpers/qr-checks.js';

const loaded = loadNativeAddon();
const addon: NativeAddon | undefined = 'addon' in loaded ? loaded.addon : undefined;
const SKIP = addon ? false : `native addon not available: ${'reason' in loaded ? loaded.reason : ''}`;


function randn(rng: Rng, n: number): Float32Array {
  return rng.fillNormal(new Float32Array(n), 1);
}


/** max |a − b| / max |b|. */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? d : d / s;
}

const COMBOS = [[false, false], [true, false], [false, true], [true, true]] as const;
const tag = (ta: boolean, tb: boolean) => `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`;

describe('native backend', () => {
  it('availability (diagnostic)', (t) => {
    if (addon) {
      const i = addon.info();
      t.diagnostic(`native: ${i.blas} ${i.corename}; ${i.config}`);
    } else {
      t.diagnostic(SKIP as string);
    }
  });

  // Sizes around BLAS tile edges, plus ones large enough for the addon to split C into chunks
  // (≥ 4 MFLOP, ≥ 128 rows or columns) and to use threads.
  const sizes: Array<[number, number, number]> = [
    [1, 1, 1], [3, 5, 7], [17, 33, 65], [130, 70, 513], [9, 600, 20], [300, 70, 260], [67, 517, 300],
  ];
  for (const [ta, tb] of COMBOS) {
    it(`${tag(ta, tb)} matches float64 within float32 rounding`, { skip: SKIP }, () => {
      const be = createNativeBackend({ threads: 2 });
      const rng = new Rng(21);
      for (const [m, n, k] of sizes) {
        const a = randn(rng, m * k), b = randn(rng, k * n);
        const c = new Float32Array(m * n).fill(NaN); // must be overwritten, not accumulated into
        be.gemm(ta, tb, m, n, k, a, b, c);
        const ref = referenceGemm(ta, tb, m, n, k, a, b);
        const gamma = gemmGamma(k);
        for (let i = 0; i < m * n; i++) {
          const err = Math.abs(c[i]! - ref.c[i]!);
          const bound = gamma * ref.abs[i]! + 1e-30;
          assert.ok(err <= bound, `${m}×${n}×${k} entry ${i}: |err| ${err} > ${bound}`);
        }
      }
    });
  }

  it('k = 0 gives zeros; m = 0 or n = 0 leaves c alone', { skip: SKIP }, () => {
    const be = createNativeBackend({ threads: 1 });
    const c = new Float32Array(6).fill(7);
    be.gemm(false, false, 2, 3, 0, new Float32Array(0), new Float32Array(0), c);
    assert.deepEqual([...c], [0, 0, 0, 0, 0, 0]);
    const d = new Float32Array(2).fill(7);
    be.gemm(false, false, 0, 2, 3, new Float32Array(0), new Float32Array(6), d);
    be.gemm(true, true, 2, 0, 3, new Float32Array(6), new Float32Array(0), d);
    assert.deepEqual([...d], [7, 7]);
  });

  it('works on views of a SharedArrayBuffer and at an offset', { skip: SKIP }, () => {
    const be = createNativeBackend({ threads: 1 });
    const buf = new SharedArrayBuffer(4 * 100);
    const a = new Float32Array(buf, 4 * 1, 6).fill(1); // 2×3
    const b = new Float32Array(buf, 4 * 10, 6).fill(2); // 3×2
    const c = new Float32Array(buf, 4 * 20, 4);
    be.gemm(false, false, 2, 2, 3, a, b, c);
    assert.deepEqual([...c], [6, 6, 6, 6]);
  });

  it('bad arguments throw', { skip: SKIP }, () => {
    const a = addon!;
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => a.gemm(false, false, 2, 2, 2, f(3), f(4), f(4)), RangeError);
    assert.throws(() => a.gemm(false, false, 2, 2, 2, f(4), f(4), f(3)), RangeError);
    assert.throws(() => a.gemm(true, true, 2, 3, 4, f(8), f(11), f(6)), RangeError);
    assert.throws(() => a.gemm(false, false, 2, 2, 2, new Float64Array(4) as never, f(4), f(4)), TypeError);
    assert.throws(() => a.gemm(false, false, 2, 2, 2, [1, 2, 3, 4] as never, f(4), f(4)), TypeError);
    assert.throws(() => a.gemm(false, false, -1, 2, 2, f(4), f(4), f(4)), TypeError);
    assert.throws(() => a.gemm(false, false, 1.5, 2, 2, f(4), f(4), f(4)), TypeError);
    assert.throws(() => a.gemm(0 as never, false, 2, 2, 2, f(4), f(4), f(4)), TypeError);
    assert.throws(() => (a.gemm as (...x: unknown[]) => void)(false, false, 2, 2, 2, f(4), f(4)), TypeError);
    assert.throws(() => a.setThreads(0), TypeError);
  });

  it('the same bytes with 1, 2 and 3 threads, and run to run', { skip: SKIP }, () => {
    const rng = new Rng(5);
    const shapes: Array<[number, number, number]> = [[1000, 266, 700], [266, 266, 2000], [150, 900, 400]];
    for (const [m, n, k] of shapes) {
      const a = randn(rng, m * k), b = randn(rng, k * n);
      for (const [ta, tb] of COMBOS) {
        const outs = [1, 2, 3, 2].map((threads) => {
          const c = new Float32Array(m * n);
          createNativeBackend({ threads }).gemm(ta, tb, m, n, k, a, b, c);
          return Buffer.from(c.buffer);
        });
        for (const o of outs.slice(1)) assert.ok(o.equals(outs[0]!), `${tag(ta, tb)} ${m}×${n}×${k}`);
      }
    }
  });

  it('computeMetrics gives identical results with 1 and 2 threads', { skip: SKIP }, () => {
    // min(rows, cols) > 2·256: the randomized SVD and all of its GEMMs run.
    const rows = 1100, cols = 600;
    const data = randn(new Rng(9), rows * cols);
    const prev = getBackend();
    try {
      const runs = [1, 2].map((threads) => {
        setBackend(createNativeBackend({ threads }));
        const r = computeMetrics({ rows, cols, data }, 1234, 'model.layers.0.mlp.up_proj.weight');
        assert.equal(r.skipped, false);
        return { scores: r.scores, raw: r.raw };
      });
      assert.deepEqual(runs[1], runs[0]);
      assert.ok(Number.isFinite(runs[0]!.scores.svd) && Number.isFinite(runs[0]!.scores.output_sensitivity));
    } finally {
      setBackend(prev);
    }
  });

  it("installBestBackend: 'native' and 'auto' install it", { skip: SKIP }, () => {
    try {
      const label = installBestBackend({ backend: 'native', threads: 2 });
      assert.match(label, /^native-(openblas|accelerate)( \([A-Za-z0-9]+ kernels\))? ×2 threads$/);
      assert.match(getBackend().name, /^native-/);
      assert.match(installBestBackend({ backend: 'auto', threads: 1 }), /^native-\S+( \(\w+ kernels\))? ×1 thread$/);
    } finally {
      closeBackend();
    }
    assert.equal(getBackend(), jsBackend);
  });

  it("installBestBackend: 'native' throws a clear error when the addon is missing", { skip: !SKIP }, () => {
    assert.throws(() => installBestBackend({ backend: 'native' }), /native backend unavailable/);
    try {
      assert.match(installBestBackend({ backend: 'auto', threads: 1 }), /^(wasm-|js)/);
    } finally {
      closeBackend();
    }
  });

  it('rtnErrorSums gives the TypeScript error proxy bit for bit (padding, bits, groups, NaN, ±Inf, zeros, ties)', { skip: SKIP }, () => {
    const rng = new Rng(17);
    const cases: { rows: number; cols: number; data: Float32Array; label: string }[] = [];
    // Eight rows go side by side in the AVX2 kernel: blocks, a left-over row, padded last groups.
    for (const [rows, cols] of [[7, 300], [5, 128], [3, 1000], [1, 1], [16, 4096], [9, 300], [17, 77]] as const) {
      const d = randn(rng, rows * cols);
      for (let i = 0; i < d.length; i++) d[i] = d[i]! * Math.exp(0.7 * rng.normal()) * 0.02;
      cases.push({ rows, cols, data: d, label: `${rows}×${cols} heavy-tailed` });
    }
    // Values on a coarse grid make exact .5 ties in (w − min)/scale common.
    const grid = new Float32Array(4 * 256);
    for (let i = 0; i < grid.length; i++) grid[i] = Math.floor(rng.uniform() * 31) / 8 - 2;
    cases.push({ rows: 4, cols: 256, data: grid, label: 'grid (ties)' });
    cases.push({ rows: 3, cols: 200, data: new Float32Array(600), label: 'zeros' });
    const special = randn(rng, 2 * 300);
    special[5] = NaN;
    special[400] = Infinity;
    special[401] = -Infinity;
    cases.push({ rows: 2, cols: 300, data: special, label: 'NaN and ±Inf' });
    // The same inside eight-row blocks: NaN, ±Inf, a group of +Inf only, signed zeros, ties.
    const blockRows = 10, blockCols = 260;
    const mixed = randn(rng, blockRows * blockCols);
    for (let i = 0; i < mixed.length; i += 7) mixed[i] = Math.floor(mixed[i]! * 4) / 4;
    mixed[3] = NaN;
    mixed[blockCols + 40] = Infinity;
    mixed[2 * blockCols + 100] = -Infinity;
    for (let j = 0; j < 32; j++) mixed[3 * blockCols + 128 + j] = Infinity;
    for (let j = 0; j < blockCols; j++) mixed[4 * blockCols + j] = j % 2 ? -0 : 0;
    mixed[9 * blockCols + 259] = NaN;
    cases.push({ rows: blockRows, cols: blockCols, data: mixed, label: 'blocks with NaN, ±Inf, zeros, ties' });
    for (const c of cases) {
      for (const bits of [2, 3, 4, 8]) {
        for (const group of [32, 64, 128]) {
          const js = rtnNrmse(c.rows, c.cols, c.data, bits, group);
          const [e, w] = addon!.rtnErrorSums(c.data, c.rows, c.cols, bits, group);
          const native = w === 0 ? (e === 0 ? 0 : Infinity) : Math.sqrt(e / w);
          assert.ok(Object.is(native, js), `${c.label} ${bits}-bit g${group}: native ${native} vs TypeScript ${js}`);
        }
      }
    }
    assert.throws(() => addon!.rtnErrorSums(new Float32Array(10), 4, 4, 4, 128), /shorter than rows × cols/);
    assert.throws(() => addon!.rtnErrorSums(new Float64Array(16) as unknown as Float32Array, 4, 4, 4, 128), /Float32Array/);
  });

  it('sumMinMax and centralMoments give the TypeScript doubles bit for bit (NaN, ±Inf, signed zeros)', { skip: SKIP }, () => {
    const rng = new Rng(31);
    const heavy = randn(rng, 100_003).map((v) => v * Math.exp(rng.normal()) * 0.02);
    const zeros = (signs: number[]) => Float32Array.from(signs, (s) => (s < 0 ? -0 : 0));
    const cases: [string, Float32Array][] = [
      ['heavy-tailed', heavy],
      ['empty', new Float32Array(0)],
      ['NaN', Float32Array.of(1, NaN, -2)],
      ['±Inf', Float32Array.of(Infinity, 3, -Infinity)],
      ['+0 then −0', zeros([1, -1])],
      ['−0 then +0', zeros([-1, 1])],
      ['only −0', zeros([-1, -1])],
      ['only +0', zeros([1, 1])],
      ['min −0 among positives', Float32Array.of(2, -0, 0, 5)],
      ['max +0 among negatives', Float32Array.of(-2, 0, -0, -5)],
    ];
    const backend = createNativeBackend({ threads: 1 });
    for (const [label, x] of cases) {
      const want = sumMinMax(x);
      const got = backend.sumMinMax!(x);
      for (const k of ['sum', 'min', 'max'] as const) assert.ok(Object.is(got[k], want[k]), `${label}: ${k} ${got[k]} vs ${want[k]}`);
      if (x.length < 4 || !Number.isFinite(want.sum)) continue;
      const mean = want.sum / x.length;
      let m2 = 0, m4 = 0;
      for (let i = 0; i < x.length; i++) {
        const d = x[i]! - mean;
        m2 += d * d;
        m4 += d * d * (d * d);
      }
      const [g2, g4] = backend.centralMoments!(x, mean);
      assert.ok(Object.is(g2, m2) && Object.is(g4, m4), `${label}: moments ${g2}, ${g4} vs ${m2}, ${m4}`);
    }
  });

  it('uniformNoise gives the TypeScript noise bit for bit and leaves the stream where fillU32 would', { skip: SKIP }, () => {
    for (const [len, half] of [[1, 0.5], [1000, Math.fround(0.013)], [65_537, Math.fround(3.7e-5)]] as const) {
      const js = new Rng(99);
      const bits = js.fillU32(new Uint32Array(len));
      const want = new Float32Array(len);
      for (let i = 0; i < len; i++) want[i] = (2 * ((bits[i]! >>> 8) * (1 / 16777216)) - 1) * half;
      const nat = new Rng(99);
      const state = nat.getState();
      const got = new Float32Array(len);
      addon!.uniformNoise(state, got, len, half);
      nat.setState(state);
      assert.deepEqual(got, want, `len ${len}`);
      assert.equal(nat.nextU32(), js.nextU32(), `len ${len}: the stream continues in step`);
    }
    assert.throws(() => addon!.uniformNoise(new Uint32Array(4), new Float32Array(3), 4, 1), /out shorter than len/);
    assert.throws(() => addon!.uniformNoise(new Uint32Array(3), new Float32Array(3), 3, 1), /Uint32Array of 4/);
  });

  it('quantizeAffine gives the TypeScript codes, scales and biases bit for bit, for any thread count', { skip: SKIP }, () => {
    const rng = new Rng(23);
    const rows = 37;
    const cols = 384;
    const w = randn(rng, rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! * Math.exp(0.8 * rng.normal()) * 0.03;
    // Awkward groups: all negative, all zero, constant, exact ties on a coarse grid, one outlier.
    for (let j = 0; j < cols; j++) {
      w[j] = -Math.abs(w[j]!) - 1e-3;
      w[cols + j] = 0;
      w[2 * cols + j] = 0.25;
      w[3 * cols + j] = Math.round(w[3 * cols + j]! * 64) / 16;
    }
    w[4 * cols + 7] = 5;
    // Non-finite weights (let through with --allow-non-finite), and signed zeros at a group's min or
    // max (the AVX2 kernel finds min and max lane by lane: the same values up to a zero's sign).
    for (let j = 0; j < cols; j += 13) w[5 * cols + j] = NaN;
    w[6 * cols + 3] = Infinity;
    w[6 * cols + 70] = -Infinity;
    for (let j = 0; j < cols; j++) {
      w[7 * cols + j] = j % 3 === 0 ? (j % 2 ? -0 : 0) : Math.abs(w[7 * cols + j]!);
      w[8 * cols + j] = j % 2 ? -0 : 0;
      w[9 * cols + j] = j % 3 === 0 ? (j % 2 ? -0 : 0) : -Math.abs(w[9 * cols + j]!);
    }
    const backend = createNativeBackend({ threads: 2 });
    try {
      for (const dtype of ['BF16', 'F16', 'F32'] as const) {
        const x = roundToDType(w.slice(), dtype);
        for (const rules of ['metal', 'cpu'] as const) {
          for (const bits of AFFINE_BITS) {
            for (const g of AFFINE_GROUP_SIZES) {
              const want = quantizeAffine(x, rows, cols, bits, g, rules);
              for (const threads of [1, 2, 3]) {
                addon!.setThreads(threads);
                const got = quantizeAffineOn(backend, x, rows, cols, bits, g, rules);
                const tag = `${dtype} ${rules} ${bits}-bit g${g} ×${threads}`;
                assert.deepEqual(got.wq, want.wq, `${tag}: codes`);
                assert.deepEqual(got.scales, want.scales, `${tag}: scales`);
                assert.deepEqual(got.biases, want.biases, `${tag}: biases`);
              }
            }
          }
        }
      }
      // A matrix big enough to be split between threads (≥ 2^16 weights).
      const big = roundToDType(randn(rng, 512 * 512).map((v) => v * 0.02), 'BF16');
      const want = quantizeAffine(big, 512, 512, 4, 64, 'metal');
      for (const threads of [1, 2, 5]) {
        addon!.setThreads(threads);
        assert.deepEqual(quantizeAffineOn(backend, big, 512, 512, 4, 64, 'metal').wq, want.wq, `×${threads}`);
      }
      assert.throws(() => quantizeAffineOn(backend, big, 512, 512, 7, 64, 'metal'), /bits must be one of/);
    } finally {
      addon!.setThreads(2);
    }
  });

  it('LAPACK cholesky, invertUpper and mulUpper agree with the TypeScript to float64 rounding', { skip: SKIP }, () => {
    const nb = createNativeBackend({ threads: 1 });
    const rng = new Rng(31);
    for (const n of [1, 2, 7, 64, 257]) {
      const y = randn(rng, (n + 40) * n);
      const g64 = gramF64(y, n + 40, n, 'cols');
      const g32 = Float32Array.from(g64);
      for (const [g, shift] of [[g64, 0], [g32, 0], [g32, 0.5]] as const) {
        const want = cholesky(g, n, shift)!;
        const got = nb.cholesky!(g, n, shift)!;
        assert.ok(got, `n ${n}: positive definite`);
        assert.ok(maxRelDiff(got, want) < 1e-12, `cholesky n ${n}: ${maxRelDiff(got, want)}`);
        for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) assert.equal(got[i * n + j], 0, 'lower triangle zero');
      }
      const r = cholesky(g64, n)!;
      const rinv = invertUpper(r, n);
      assert.ok(maxRelDiff(nb.invertUpper!(r, n), rinv) < 1e-10, `invertUpper n ${n}`);
      assert.ok(maxRelDiff(nb.mulUpper!(r, rinv, n), mulUpper(r, rinv, n)) < 1e-12, `mulUpper n ${n}`);
    }
    // Not positive definite, a NaN, an infinite pivot: null like the TypeScript.
    for (const g of [[1, 2, 2, 1], [1, 0, 0, NaN], [Infinity, 0, 0, 1], [0, 0, 0, 0]]) {
      assert.equal(cholesky(g, 2), null);
      assert.equal(nb.cholesky!(Float64Array.from(g), 2, 0), null, `[${g}]`);
    }
    // A zero pivot: the TypeScript's ±Inf, not an error.
    assert.deepEqual(nb.invertUpper!(Float64Array.of(0, 1, 0, 1), 2), invertUpper(Float64Array.of(0, 1, 0, 1), 2));
    assert.throws(() => addon!.cholesky(new Float64Array(3), 2, 0, new Float64Array(4)), /g shorter than n × n/);
    assert.throws(() => addon!.cholesky(new Float64Array(4), 2, 0, new Float32Array(4) as unknown as Float64Array), /r must be a Float64Array/);
    assert.throws(() => addon!.mulUpper(new Float64Array(4), new Float64Array(4), 2, new Float64Array(3)), RangeError);
    assert.throws(() => addon!.symmetricEigenvalues(new Float64Array(4), 2, new Float64Array(1)), /w shorter than n/);
  });

  it('the float64 Gram by BLAS agrees with the TypeScript gramF64 to float64 rounding', { skip: SKIP }, () => {
    const nb = createNativeBackend({ threads: 1 });
    const rng = new Rng(33);
    // Both sides, lengths around the 256-element chunks, an empty side.
    for (const [rows, cols] of [[1, 1], [3, 700], [513, 5], [192, 576], [300, 256], [0, 4]] as const) {
      const data = randn(rng, rows * cols);
      for (const which of ['rows', 'cols'] as const) {
        const want = gramF64(data, rows, cols, which);
        const got = nb.gramF64!(data, rows, cols, which);
        assert.equal(got.length, want.length);
        assert.ok(maxRelDiff(got, want) < 1e-13, `${rows}×${cols} ${which}: ${maxRelDiff(got, want)}`);
        const s = which === 'rows' ? rows : cols;
        for (let i = 0; i < s; i++) for (let j = 0; j < i; j++) assert.equal(got[i * s + j], got[j * s + i], 'symmetric');
      }
    }
    assert.throws(() => addon!.gram(new Float32Array(5), 2, 3, true, new Float64Array(4)), /data shorter than rows × cols/);
    assert.throws(() => addon!.gram(new Float32Array(6), 2, 3, false, new Float64Array(4)), /g must be a Float64Array of s × s/);
  });

  it('the float32 Gram (SGEMMs on the lower triangle) is symmetric, float32-accurate, the same bytes for 1, 2 and 3 threads', { skip: SKIP }, () => {
    const rng = new Rng(35);
    // Shapes below and above the 64-row chunks and the threading threshold, both sides, an empty side.
    for (const [rows, cols] of [[1, 1], [3, 700], [513, 5], [192, 576], [1100, 600], [300, 1100], [0, 4]] as const) {
      const data = randn(rng, rows * cols);
      for (const which of ['rows', 'cols'] as const) {
        const s = which === 'rows' ? rows : cols, len = which === 'rows' ? cols : rows;
        const want = gramF64(data, rows, cols, which);
        const outs = [1, 2, 3].map((threads) => {
          const out = new Float32Array(s * s).fill(NaN);
          createNativeBackend({ threads }).gramF32!(data, rows, cols, which, out);
          return out;
        });
        const got = outs[0]!;
        // A float32 dot product of length len: within gemmGamma(len)·Σ|a||b| ≤ gemmGamma(len)·√(Gᵢᵢ·Gⱼⱼ).
        for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
          const bound = gemmGamma(len) * Math.sqrt(want[i * s + i]! * want[j * s + j]!) + 1e-30;
          assert.ok(Math.abs(got[i * s + j]! - want[i * s + j]!) <= bound, `${rows}×${cols} ${which} [${i},${j}]`);
          assert.equal(got[i * s + j], got[j * s + i], 'symmetric');
        }
        for (const o of outs.slice(1)) assert.ok(Buffer.from(o.buffer).equals(Buffer.from(got.buffer)), `${rows}×${cols} ${which}: bytes`);
      }
    }
    assert.throws(() => addon!.gram32(new Float32Array(5), 2, 3, true, new Float32Array(4)), /data shorter than rows × cols/);
    assert.throws(() => addon!.gram32(new Float32Array(6), 2, 3, false, new Float32Array(8)), /out shorter than s × s/);
  });

  it('LAPACK symmetric eigenvalues agree with the TypeScript to 1e-12 of the largest |λ|', { skip: SKIP }, () => {
    const nb = createNativeBackend({ threads: 1 });
    const rng = new Rng(32);
    for (const [name, a, n] of symmetricCases(rng, [1, 2, 3, 50, 256])) {
      const want = symmetricEigenvalues(a, n);
      const got = symmetricEigenvaluesOn(nb, a, n);
      const scale = Math.max(1e-300, ...Array.from(want, Math.abs));
      for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-12 * scale, `${name}[${i}]: ${got[i]} vs ${want[i]}`);
    }
    assert.throws(() => symmetricEigenvaluesOn(nb, Float64Array.of(NaN, 0, 0, 1), 2), /did not converge/);
  });

  it('orthonormalize on the native backend: every path orthonormal, the same bytes for 1, 2 and 3 threads', { skip: SKIP }, () => {
    // Condition number → the path taken, as in test/kernels.test.ts (there with the active backend).
    const panels: Array<[number, string[]]> = [[1e1, ['cholqr2']], [1e3, ['cholqr2', 'cholqr3', 'shifted-cholqr3']], [1e4, ['cholqr3', 'shifted-cholqr3', 'householder']], [1e8, ['householder']]];
    const seen = new Set<string>();
    for (const [cond, methods] of panels) {
      const rows = 700, cols = 64;
      const y = conditionedPanel(new Rng(5), rows, cols, cond);
      const outs = [1, 2, 3].map((threads) => orthonormalize(createNativeBackend({ threads }), y, rows, cols));
      const res = outs[0]!;
      assert.ok(methods.includes(res.method), `cond ${cond}: method ${res.method}`);
      seen.add(res.method);
      for (const o of outs.slice(1)) {
        assert.equal(o.method, res.method);
        assert.ok(Buffer.from(o.q.buffer, o.q.byteOffset, o.q.byteLength).equals(Buffer.from(res.q.buffer, res.q.byteOffset, res.q.byteLength)), `cond ${cond}: Q bytes`);
        assert.deepEqual(o.r, res.r, `cond ${cond}: R`);
      }
      const orth = orthogonalityError(res.q, rows, cols);
      assert.ok(orth < 2e-6, `cond ${cond}: orthogonality ${orth}`);
      const rec = reconstructionError(y, res, rows, cols);
      // OpenBLAS's SGEMM accumulates in float32: 2.6e-6 at cond 10 with the TypeScript l×l routines too.
      assert.ok(rec < 5e-6, `cond ${cond}: reconstruction ${rec}`);
    }
    assert.ok(seen.has('householder') && seen.has('cholqr2'), [...seen].join());
  });

  it('mulUpperRight: Y·U as GEMM gives it to float32 rounding, the same bytes for 1, 2 and 3 threads', { skip: SKIP }, () => {
    const rng = new Rng(34);
    for (const [rows, n] of [[1, 1], [5, 3], [700, 64], [3000, 256], [129, 200]] as const) {
      const y = randn(rng, rows * n);
      const u = randn(rng, n * n);
      const ref = new Float64Array(rows * n);
      for (let i = 0; i < rows; i++) for (let j = 0; j < n; j++) {
        let t = 0;
        for (let k = 0; k <= j; k++) t += y[i * n + k]! * u[k * n + j]!;
        ref[i * n + j] = t;
      }
      const outs = [1, 2, 3].map((threads) => {
        const out = new Float32Array(rows * n);
        createNativeBackend({ threads }).mulUpperRight!(y, rows, n, u, out);
        return out;
      });
      // Error bound of a float32 dot product of length n, relative to Σ|y||u|.
      for (let i = 0; i < rows; i++) for (let j = 0; j < n; j++) {
        let mag = 0;
        for (let k = 0; k <= j; k++) mag += Math.abs(y[i * n + k]! * u[k * n + j]!);
        assert.ok(Math.abs(outs[0]![i * n + j]! - ref[i * n + j]!) <= gemmGamma(n) * mag + 1e-30, `${rows}×${n} [${i},${j}]`);
      }
      for (const o of outs.slice(1)) assert.ok(Buffer.from(o.buffer).equals(Buffer.from(outs[0]!.buffer)), `${rows}×${n}: bytes`);
    }
    assert.throws(() => addon!.mulUpperRight(new Float32Array(6), 3, 2, new Float32Array(3), new Float32Array(6)), /buffers too small/);
    const y = new Float32Array(4);
    assert.throws(() => addon!.mulUpperRight(y, 2, 2, new Float32Array(4), y), /out must not be y/);
  });

  it('solveUpperRight: Y·U⁻¹ by STRSM satisfies out·U = Y to float32 rounding, the same bytes for 1, 2 and 3 threads', { skip: SKIP }, () => {
    const rng = new Rng(36);
    for (const [rows, n] of [[1, 1], [5, 3], [700, 64], [3000, 256]] as const) {
      const y = randn(rng, rows * n);
      // A Cholesky factor of a well-conditioned Gram, as orthonormalize hands over.
      const u = new Float32Array(n * n);
      for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = i === j ? 2 + rng.uniform() : 0.3 * rng.normal() / Math.sqrt(n);
      const outs = [1, 2, 3].map((threads) => {
        const out = new Float32Array(rows * n);
        createNativeBackend({ threads }).solveUpperRight!(y, rows, n, u, out);
        return out;
      });
      const x = outs[0]!;
      let err = 0, mag = 0;
      for (let i = 0; i < rows; i++) for (let j = 0; j < n; j++) {
        let t = 0;
        for (let k = 0; k <= j; k++) t += x[i * n + k]! * u[k * n + j]!;
        err = Math.max(err, Math.abs(t - y[i * n + j]!));
        mag = Math.max(mag, Math.abs(y[i * n + j]!));
      }
      assert.ok(err <= 1e-5 * mag, `${rows}×${n}: residual ${err / mag}`);
      for (const o of outs.slice(1)) assert.ok(Buffer.from(o.buffer).equals(Buffer.from(x.buffer)), `${rows}×${n}: bytes`);
    }
    assert.throws(() => addon!.solveUpperRight(new Float32Array(6), 3, 2, new Float32Array(3), new Float32Array(6)), /solveUpperRight: buffers too small/);
  });

  it('the SVD metric on the native backend matches the TypeScript linear algebra (exact and randomized)', { skip: SKIP }, () => {
    const nb = createNativeBackend({ threads: 2 });
    // The same float32 products, only the l×l routines in TypeScript.
    const gemmOnly = { name: 'native-gemm-only', gemm: nb.gemm, mulUpperRight: nb.mulUpperRight, gramF32: nb.gramF32, solveUpperRight: nb.solveUpperRight };
    const rng = new Rng(41);
    for (const [rows, cols] of [[300, 700], [700, 520], [1100, 600]] as const) {
      const data = randn(rng, rows * cols);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j]! *= 1 + 4 * Math.exp(-j / 20);
      const got = svdMetric(nb, rows, cols, data, new Rng(7));
      const want = svdMetric(gemmOnly, rows, cols, data, new Rng(7));
      assert.equal(got.method, want.method);
      assert.ok(Math.abs(got.concentration - want.concentration) < 1e-9, `${rows}×${cols}: ${got.concentration} vs ${want.concentration}`);
      assert.ok(maxRelDiff(got.values, want.values) < 1e-5, `${rows}×${cols}: values ${maxRelDiff(got.values, want.values)}`);
    }
  });

  it('normalPairs: Rng.fillNormal gives the TypeScript values bit for bit and leaves the stream in step, for 1, 2 and 3 threads', { skip: SKIP }, () => {
    const same = (x: Float32Array, y: Float32Array) => Buffer.from(x.buffer).equals(Buffer.from(y.buffer));
    // Odd and even lengths (one and several blocks of transforms), a spare pending before and left
    // after, scales; the transforms on 1, 2 and 3 threads.
    for (const threads of [2, 3]) {
      const kernel = createNativeBackend({ threads }).normalPairs!.bind(null);
      for (const [seed, n] of [[11, 1_000_001], [12, 70_000]] as const) {
        const js = new Rng(seed), nat = new Rng(seed);
        assert.ok(same(nat.fillNormal(new Float32Array(n), 1, kernel), js.fillNormal(new Float32Array(n))), `${threads} threads, n ${n}`);
        assert.equal(nat.nextU32(), js.nextU32());
      }
    }
    const nb = createNativeBackend({ threads: 1 });
    checkNormalPairs(nb.normalPairs!.bind(nb));
  });

  it('normalPairs: 10M pairs at several scales are the TypeScript float32 values bit for bit, under 1e-4 of them handed back', { skip: SKIP }, () => {
    // 2.5M pairs per scale (3e-39: values in float32's subnormal range), on 2 threads. The pairs
    // listed in redo are computed here as Rng.normal() does; every value is compared with
    // Rng.fillNormal without a kernel, and the state must end where the TypeScript's does.
    createNativeBackend({ threads: 2 }); // sets the addon's threads
    const pairs = 2_500_000;
    let listedAll = 0;
    for (const [seed, scale] of [[31, 1], [32, 0.02], [33, 3.7], [34, 3e-39]] as const) {
      const js = new Rng(seed);
      const want = js.fillNormal(new Float32Array(2 * pairs), scale);
      const st = new Rng(seed).getState();
      const out = new Float32Array(2 * pairs);
      const redo = new Float64Array(3 * 250); // 1e-4 of the pairs: a higher rate stops it short
      const [done, listed] = addon!.normalPairs(st, out, 0, pairs, scale, redo);
      assert.equal(done, pairs, `scale ${scale}: all pairs done (${listed} listed)`);
      for (let k = 0; k < listed; k++) {
        const o = 2 * redo[3 * k]!;
        const r = Math.sqrt(-2 * Math.log(redo[3 * k + 1]!));
        const theta = 2 * Math.PI * redo[3 * k + 2]!;
        out[o] = r * Math.cos(theta) * scale;
        out[o + 1] = r * Math.sin(theta) * scale;
      }
      const got = new Uint32Array(out.buffer), exp = new Uint32Array(want.buffer);
      let diff = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== exp[i]) diff++;
      assert.equal(diff, 0, `scale ${scale}: values differing from the TypeScript's`);
      assert.deepEqual(st, js.getState(), `scale ${scale}: the stream ends in step`);
      listedAll += listed;
    }
    assert.ok(listedAll / (4 * pairs) < 1e-4, `redo rate ${listedAll / (4 * pairs)}`);
  });

  it('normalPairs: a u = 0 pair inside a block stops the addon just before it; fillNormal stays the TypeScript\'s', { skip: SKIP }, () => {
    // (a, 0, a, b) draws two zero words (u = 0) next; stepping xoshiro128** back 4·n draws from it
    // gives a state whose pair n draws u = 0 (n = 1000 in the first block of 32768, 40000 in the second).
    const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
    const back = (s: Uint32Array): void => {
      const a3 = rotl(s[3]!, 21);
      const s0 = (s[0]! ^ a3) >>> 0;
      const y = (s[1]! ^ s[2]!) >>> 0; // s1 ^ (s1 << 9)
      const s1 = (y ^ (y << 9) ^ (y << 18) ^ (y << 27)) >>> 0;
      const a2 = (s[2]! ^ (s1 << 9)) >>> 0;
      s.set([s0, s1, (a2 ^ s0) >>> 0, (a3 ^ s1) >>> 0]);
    };
    const zero = Uint32Array.of(123, 0, 123, 77);
    const check = new Rng(0);
    check.setState(zero.slice());
    assert.equal(check.nextU32() | check.nextU32(), 0, 'the zero state draws two zero words');
    createNativeBackend({ threads: 2 });
    for (const n of [1000, 40_000]) {
      const start = zero.slice();
      for (let i = 0; i < 4 * n; i++) back(start);
      const st = start.slice();
      const [done, listed] = addon!.normalPairs(st, new Float32Array(2 * (n + 10)), 0, n + 10, 1, new Float64Array(3 * 256));
      assert.deepEqual([done, st], [n, zero], `n ${n}: stops before the u = 0 pair (${listed} listed)`);
      const js = new Rng(0), nat = new Rng(0);
      js.setState(start);
      nat.setState(start);
      const same = Buffer.from(nat.fillNormal(new Float32Array(2 * n + 101), 1, addon!.normalPairs).buffer).equals(
        Buffer.from(js.fillNormal(new Float32Array(2 * n + 101)).buffer),
      );
      assert.ok(same, `n ${n}: fillNormal across the u = 0 pair`);
      assert.equal(nat.nextU32(), js.nextU32());
    }
  });

  it('SWAN_NO_NATIVE=1: auto falls back to wasm, native throws', () => {
    const select = fileURLToPath(new URL('../src/kernels/select.js', import.meta.url));
    const script = `
      import(${JSON.stringify(select)}).then((s) => {
        const label = s.installBestBackend({ backend: 'auto', threads: 1 });
        s.closeBackend();
        let err = '';
        try { s.installBestBackend({ backend: 'native' }); } catch (e) { err = e.message; }
        s.closeBackend();
        console.log(JSON.stringify({ label, err }));
      });`;
    const out = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, SWAN_NO_NATIVE: '1' },
      encoding: 'utf8',
    });
    const r = JSON.parse(out) as { label: string; err: string };
    assert.match(r.label, /^wasm-/);
    assert.match(r.err, /native backend unavailable: SWAN_NO_NATIVE is set/);
  });
});
