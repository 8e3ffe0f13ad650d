import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { Rng } from '../src/rng.js';
import { gemmGamma, referenceGemm, U } from './helpers/gemm-reference.js';
import { conditionedPanel, orthogonalityError, symmetricCases } from './helpers/qr-checks.js';
import { createWasmBackend, type WasmBackend, type WasmVariant } from '../src/kernels/wasm-backend.js';
import {
  cholesky,
  gramF64,
  invertUpper,
  mulUpper,
  orthonormalize,
  symmetricEigenvalues,
  symmetricEigenvaluesOn,
} from '../src/kernels/linalg.js';
import { outputDelta, svdMetric } from '../src/metrics/index.js';
import type { KernelBackend } from '../src/kernels/backend.js';
import { checkNormalPairs } from './helpers/normal-pairs.js';



function fill(rng: Rng, x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return x;
}

/** Checks C against the float64 reference with the standard bound |err| ≤ γ_k Σ|a||b|. */
function checkGemm(
  be: WasmBackend, ta: boolean, tb: boolean, m: number, n: number, k: number, rng: Rng,
  inWasm: boolean,
): void {
  const mk = (len: number) => (inWasm ? be.alloc(len) : new Float32Array(len));
  const a = fill(rng, mk(m * k));
  const b = fill(rng, mk(k * n));
  const c = mk(m * n).fill(Number.NaN); // must be overwritten, not accumulated into
  be.gemm(ta, tb, m, n, k, a, b, c);
  const ref = referenceGemm(ta, tb, m, n, k, a, b);
  const gamma = gemmGamma(k);
  for (let i = 0; i < m * n; i++) {
    const err = Math.abs(c[i]! - ref.c[i]!);
    const bound = gamma * ref.abs[i]! + 1e-30;
    if (!(err <= bound)) {
      assert.fail(
        `${be.name} ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${m}×${n}×${k}: C[${i}] = ${c[i]}, ` +
          `want ${ref.c[i]} (err ${err}, bound ${bound})`,
      );
    }
  }
  if (inWasm) for (const x of [a, b, c]) be.release(x);
}

const COMBOS: Array<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];

const backends: WasmBackend[] = [];
function make(variant?: WasmVariant, threads = 1): WasmBackend {
  const be = createWasmBackend({ variant, threads });
  backends.push(be);
  return be;
}
after(() => {
  for (const be of backends) be.close();
});

describe('wasm backend', () => {
  it('picks a build and names it', () => {
    const be = make();
    assert.ok(be.variant === 'relaxed' || be.variant === 'simd');
    assert.equal(be.name, `wasm-${be.variant}`);
    // Node ≥ 20 on x86-64/arm64 supports relaxed SIMD (behind a flag the backend sets).
    assert.equal(be.variant, 'relaxed');
  });

  for (const variant of ['relaxed', 'simd'] as const) {
    it(`${variant}: all transpose combos, random sizes 1..70, within float32 rounding`, () => {
      const be = make(variant);
      const rng = new Rng(1234);
      for (let trial = 0; trial < 40; trial++) {
        const m = 1 + Math.floor(rng.uniform() * 70);
        const n = 1 + Math.floor(rng.uniform() * 70);
        const k = 1 + Math.floor(rng.uniform() * 70);
        for (const [ta, tb] of COMBOS) checkGemm(be, ta, tb, m, n, k, rng, trial % 2 === 0);
      }
    });

    it(`${variant}: 300×266×500, all combos, k spanning several KC blocks`, () => {
      const be = make(variant);
      const rng = new Rng(99);
      for (const [ta, tb] of COMBOS) checkGemm(be, ta, tb, 300, 266, 500, rng, ta);
      checkGemm(be, true, false, 13, 9, 1100, rng, true);
    });
  }

  for (const variant of ['relaxed', 'simd'] as const) {
    it(`${variant}: bit-identical for 1, 2 and 3 threads (row and column splits)`, async () => {
      const one = make(variant, 1);
      const many = [make(variant, 2), make(variant, 3)];
      // Workers start asynchronously (until then the caller does every chunk); give them a moment.
      await new Promise((r) => setTimeout(r, 200));
      const rng = new Rng(7);
      // m ≥ n splits rows, m < n splits columns; sizes are large enough to use the threads.
      for (const [m, n, k] of [[301, 266, 517], [40, 530, 300], [266, 266, 1030]] as const) {
        for (const [ta, tb] of COMBOS) {
          const a = fill(rng, one.alloc(m * k));
          const b = fill(rng, one.alloc(k * n));
          const want = one.alloc(m * n);
          one.gemm(ta, tb, m, n, k, a, b, want);
          for (const be of many) {
            const got = new Float32Array(m * n);
            be.gemm(ta, tb, m, n, k, a, b, got); // staged: arrays belong to another backend
            const wa = be.alloc(m * k), wb = be.alloc(k * n), wc = be.alloc(m * n);
            wa.set(a);
            wb.set(b);
            be.gemm(ta, tb, m, n, k, wa, wb, wc);
            for (let i = 0; i < m * n; i++) {
              if (!Object.is(got[i], want[i]) || !Object.is(wc[i], want[i])) {
                assert.fail(`${be.name} ${m}×${n}×${k} ta=${ta} tb=${tb}: C[${i}] ${got[i]}/${wc[i]} vs ${want[i]}`);
              }
            }
            be.release(wa);
            be.release(wb);
            be.release(wc);
          }
          one.release(a);
          one.release(b);
          one.release(want);
        }
      }
      // The comparison means something only if the workers took part.
      for (const be of many) assert.ok(be.workerChunks > 0, `${be.name}: workers computed no chunk`);
    });
  }

  it('relaxed and simd builds agree within rounding (and the relaxed one fuses)', () => {
    const r = make('relaxed'), s = make('simd');
    const rng = new Rng(5);
    const m = 64, n = 64, k = 256;
    const a = fill(rng, new Float32Array(m * k)), b = fill(rng, new Float32Array(k * n));
    const cr = new Float32Array(m * n), cs = new Float32Array(m * n);
    r.gemm(false, false, m, n, k, a, b, cr);
    s.gemm(false, false, m, n, k, a, b, cs);
    for (let i = 0; i < m * n; i++) assert.ok(Math.abs(cr[i]! - cs[i]!) <= 1e-3, `C[${i}]`);
    // 1·(-(1+2⁻¹¹)) + (1+2⁻¹²)² = 2⁻²⁴ exactly; mul-then-add rounds the product to 1+2⁻¹¹ and gets 0.
    const x = 1 + 2 ** -12;
    const fa = Float32Array.of(1, x), fb = Float32Array.of(-(1 + 2 ** -11), x);
    const fr = new Float32Array(1), fs = new Float32Array(1);
    r.gemm(false, false, 1, 1, 2, fa, fb, fr);
    s.gemm(false, false, 1, 1, 2, fa, fb, fs);
    assert.equal(fs[0], 0);
    // relaxed madd is fused where the CPU has FMA (x86-64 with FMA3, arm64), else it may round twice.
    assert.ok(fr[0] === 2 ** -24 || fr[0] === 0, `relaxed gave ${fr[0]}`);
    if (process.arch === 'arm64') assert.equal(fr[0], 2 ** -24);
  });

  it('handles k = 0 and empty shapes, and rejects short arrays', () => {
    const be = make();
    const c = new Float32Array(6).fill(3);
    be.gemm(false, false, 2, 3, 0, new Float32Array(0), new Float32Array(0), c);
    assert.deepEqual([...c], [0, 0, 0, 0, 0, 0]);
    be.gemm(false, false, 0, 3, 4, new Float32Array(0), new Float32Array(12), new Float32Array(0));
    assert.throws(() => be.gemm(false, false, 2, 2, 2, new Float32Array(3), new Float32Array(4), new Float32Array(4)), RangeError);
    assert.throws(() => be.gemm(false, false, 2, 2, 2, new Float32Array(4), new Float32Array(4), new Float32Array(3)), RangeError);
  });

  it('works on subarray views above 2 GiB (pointers past the i32 sign bit)', () => {
    const be = make('relaxed', 2);
    const big = be.alloc(600 << 20); // 2.4 GiB, like a 151936×4096 embedding; untouched pages cost nothing
    const m = 300, n = 64, k = 333; // above the threading threshold
    const base = big.length - (m * k + k * n + m * n) - 5;
    assert.ok(big.byteOffset + base * 4 > 2 ** 31);
    const rng = new Rng(11);
    const a = fill(rng, big.subarray(base, base + m * k));
    const b = fill(rng, big.subarray(base + m * k, base + m * k + k * n));
    const c = big.subarray(base + m * k + k * n, base + m * k + k * n + m * n);
    for (const [ta, tb] of COMBOS) {
      be.gemm(ta, tb, m, n, k, a, b, c);
      const ref = referenceGemm(ta, tb, m, n, k, a, b);
      for (let i = 0; i < m * n; i++) {
        assert.ok(Math.abs(c[i]! - ref.c[i]!) <= (k + 2) * U * ref.abs[i]! * 1.01, `C[${i}]`);
      }
    }
    be.release(big);
  });

  it('alloc gives views that survive memory growth; release checks ownership', () => {
    const be = make();
    const small = be.alloc(1000);
    small.fill(1.5);
    const big = be.alloc(40 << 20); // 160 MB: forces memory.grow
    big[big.length - 1] = 2;
    assert.equal(small[999], 1.5);
    assert.equal(small.length, 1000);
    assert.equal(big.byteOffset % 64, 0);
    be.release(big);
    const again = be.alloc(1 << 20); // reuses the freed space
    assert.ok(again.byteOffset < big.byteOffset + big.byteLength);
    be.release(again);
    be.release(small);
    assert.throws(() => be.release(new Float32Array(4)));
    assert.throws(() => be.release(small)); // double release
  });

  it('cholesky, invertUpper and mulUpper give the TypeScript results bit for bit (both builds)', () => {
    for (const variant of ['relaxed', 'simd'] as const) {
      const be = make(variant);
      const rng = new Rng(31);
      for (const n of [1, 2, 3, 7, 64, 257]) {
        const y = fill(rng, new Float32Array((n + 40) * n));
        const g64 = gramF64(y, n + 40, n, 'cols');
        const g32 = Float32Array.from(g64);
        for (const [g, shift] of [[g64, 0], [g32, 0], [g32, 0.5]] as const) {
          const want = cholesky(g, n, shift)!;
          assert.ok(want, `n ${n}: positive definite`);
          assert.deepEqual(be.cholesky!(g, n, shift), want, `${variant} cholesky n ${n} shift ${shift}`);
        }
        const r = cholesky(g64, n)!;
        const rinv = invertUpper(r, n);
        assert.deepEqual(be.invertUpper!(r, n), rinv, `${variant} invertUpper n ${n}`);
        assert.deepEqual(be.mulUpper!(r, rinv, n), mulUpper(r, rinv, n), `${variant} mulUpper n ${n}`);
      }
      // Not positive definite, a NaN, an infinite pivot, zero: null like the TypeScript.
      for (const g of [[1, 2, 2, 1], [1, 0, 0, NaN], [Infinity, 0, 0, 1], [0, 0, 0, 0]]) {
        assert.equal(cholesky(g, 2), null);
        assert.equal(be.cholesky!(Float64Array.from(g), 2, 0), null, `[${g}]`);
      }
      // A zero pivot: the TypeScript's ±Inf and NaN, not an error.
      assert.deepEqual(be.invertUpper!(Float64Array.of(0, 1, 0, 1), 2), invertUpper(Float64Array.of(0, 1, 0, 1), 2));
    }
  });

  it('symmetric eigenvalues agree with the TypeScript to 1e-13 of the largest |λ|', () => {
    const be = make();
    const rng = new Rng(32);
    for (const [name, a, n] of symmetricCases(rng, [1, 2, 3, 50, 257])) {
      const want = symmetricEigenvalues(a, n);
      const got = symmetricEigenvaluesOn(be, a, n);
      assert.equal(got.length, n);
      const scale = Math.max(1e-300, ...Array.from(want, Math.abs));
      for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-13 * scale, `${name}[${i}]: ${got[i]} vs ${want[i]}`);
    }
    assert.throws(() => symmetricEigenvaluesOn(be, Float64Array.of(NaN, 0, 0, 1), 2), /did not converge/);
  });

  it('orthonormalize and the SVD metric: the same bytes for 1 and 2 threads, TypeScript-equal l×l results', () => {
    const one = make(undefined, 1), two = make(undefined, 2);
    // Only the GEMM from wasm: the l×l routines in TypeScript.
    const gemmOnly = { name: 'wasm-gemm-only', gemm: one.gemm.bind(one) };
    for (const cond of [1e1, 1e3, 1e4]) {
      const rows = 700, cols = 64;
      const y = conditionedPanel(new Rng(5), rows, cols, cond);
      const [a, b, ts] = [one, two, gemmOnly].map((be) => orthonormalize(be, y, rows, cols));
      for (const o of [b!, ts!]) {
        assert.equal(o.method, a!.method);
        assert.deepEqual(o.q, a!.q, `cond ${cond}: Q`);
        assert.deepEqual(o.r, a!.r, `cond ${cond}: R`);
      }
      assert.ok(orthogonalityError(a!.q, rows, cols) < 2e-6, `cond ${cond}`);
    }
    const rng = new Rng(41);
    for (const [rows, cols] of [[300, 700], [1100, 600]] as const) {
      const data = fill(rng, new Float32Array(rows * cols));
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j]! *= 1 + 4 * Math.exp(-j / 20);
      const [a, b, ts] = [one, two, gemmOnly].map((be) => svdMetric(be, rows, cols, data, new Rng(7)));
      assert.deepEqual(b, a, `${rows}×${cols}: 1 vs 2 threads`);
      assert.equal(ts!.method, a!.method);
      assert.ok(Math.abs(ts!.concentration - a!.concentration) < 1e-12, `${rows}×${cols}: ${a!.concentration} vs ${ts!.concentration}`);
      for (let i = 0; i < a!.values.length; i++) {
        assert.ok(Math.abs(a!.values[i]! - ts!.values[i]!) <= 1e-12 * ts!.values[0]!, `${rows}×${cols} σ${i + 1}`);
      }
    }
  });

  it('mulUpperRight: the GEMM with U\'s lower triangle zeroed, bit for bit, for 1, 2 and 3 threads', () => {
    const rng = new Rng(43);
    for (const variant of ['relaxed', 'simd'] as const) {
      const bes = [1, 2, 3].map((threads) => make(variant, threads));
      // Rows that are not a multiple of the tile, n across the 8-column strips and KC = 256 blocks.
      for (const [rows, n] of [[1, 1], [37, 29], [700, 64], [3000, 300]] as const) {
        const y = fill(rng, new Float32Array(rows * n));
        const u = fill(rng, new Float32Array(n * n)); // lower triangle: noise the kernel must ignore
        const zeroed = u.slice();
        for (let i = 0; i < n; i++) zeroed.fill(0, i * n, i * n + i);
        const want = new Float32Array(rows * n);
        bes[0]!.gemm(false, false, rows, n, n, y, zeroed, want);
        const outs = bes.map((be) => {
          const out = new Float32Array(rows * n).fill(Number.NaN);
          be.mulUpperRight!(y, rows, n, u, out);
          return out;
        });
        for (let i = 0; i < want.length; i++) {
          // Skipped products are exact zeros: the same values (a zero's sign may differ).
          if (outs[0]![i] !== want[i]) assert.fail(`${variant} ${rows}×${n}: [${i}] ${outs[0]![i]} vs ${want[i]}`);
        }
        for (const o of outs.slice(1)) assert.ok(Buffer.from(o.buffer).equals(Buffer.from(outs[0]!.buffer)), `${variant} ${rows}×${n}: thread bytes`);
      }
    }
    const be = make();
    assert.throws(() => be.mulUpperRight!(new Float32Array(4), 2, 2, new Float32Array(3), new Float32Array(4)), /short array/);
    const same = new Float32Array(4);
    assert.throws(() => be.mulUpperRight!(same, 2, 2, new Float32Array(4), same), /out must not be y/);
  });

  it('gramF64 gives the TypeScript float64 Gram bit for bit (both sides, chunk edges, an empty side)', () => {
    const be = make();
    const rng = new Rng(33);
    for (const [rows, cols] of [[1, 1], [3, 700], [513, 5], [192, 576], [300, 256], [0, 4]] as const) {
      const data = fill(rng, new Float32Array(rows * cols));
      for (const which of ['rows', 'cols'] as const) {
        assert.deepEqual(be.gramF64!(data, rows, cols, which), gramF64(data, rows, cols, which), `${rows}×${cols} ${which}`);
      }
    }
  });

  it('normalPairs: Rng.fillNormal gives the TypeScript values bit for bit and leaves the stream in step (out in wasm memory or not)', () => {
    const be = make();
    const kernel = be.normalPairs!.bind(be);
    checkNormalPairs(kernel);
    checkNormalPairs(kernel, (n) => be.alloc(n));
  });

  it('the SVD and output-noise metrics: the same values with the normalPairs kernel as without', () => {
    const be = make();
    // Every method of the backend but normalPairs (a getter like workerChunks is left out too).
    const without: KernelBackend = { name: `${be.name}-without-normalPairs`, gemm: be.gemm.bind(be) };
    const proto = Object.getPrototypeOf(be) as Record<string, unknown>;
    for (const key of Object.getOwnPropertyNames(proto)) {
      const f = Object.getOwnPropertyDescriptor(proto, key)!.value as unknown;
      if (key !== 'constructor' && key !== 'normalPairs' && typeof f === 'function') {
        (without as unknown as Record<string, unknown>)[key] = (f as (...args: unknown[]) => unknown).bind(be);
      }
    }
    assert.equal(typeof without.gramF64, 'function');
    assert.equal(without.normalPairs, undefined);
    const rng = new Rng(43);
    // Randomized SVDs only (exact ones draw nothing): the default rank needs min(rows, cols) > 512.
    for (const [rows, cols, rank] of [[300, 700, 16], [1100, 600, undefined], [576, 576, undefined]] as const) {
      const data = fill(rng, new Float32Array(rows * cols));
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j]! *= 1 + 4 * Math.exp(-j / 20);
      const withRng = new Rng(7), withoutRng = new Rng(7);
      const got = svdMetric(be, rows, cols, data, withRng, rank);
      assert.equal(got.method, 'randomized');
      assert.deepEqual(got, svdMetric(without, rows, cols, data, withoutRng, rank), `${rows}×${cols}: SVD metric`);
      assert.equal(withRng.nextU32(), withoutRng.nextU32(), `${rows}×${cols}: the stream goes on in step`);
      const [da, db] = [be, without].map((k) => outputDelta(k, rows, cols, data, new Rng(9)));
      assert.equal(da, db, `${rows}×${cols}: output delta`);
    }
  });
});
