import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KernelBackend } from '../src/kernels/backend.js';
import { getBackend, jsBackend, setBackend } from '../src/kernels/index.js';
import {
  cholesky,
  gramF64,
  householderQR,
  orthonormalize,
  singularValues,
  symmetricEigenvalues,
  symmetricEigenvaluesOn,
  Scratch,
  type QrResult,
} from '../src/kernels/linalg.js';
import { createNativeBackend, loadNativeAddon } from '../src/kernels/native-backend.js';
import { createWasmBackend } from '../src/kernels/wasm-backend.js';
import { runPython } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { referenceGemm, U } from './helpers/gemm-reference.js';
import { conditionedPanel, orthogonalityError, reconstructionError } from './helpers/qr-checks.js';
import { PY, tempDir } from './helpers/paths.js';

const SKIP_PY = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

/** Backends under test: the JS one, plus the active one when something else is installed. */
function backends(): KernelBackend[] {
  const active = getBackend();
  return active === jsBackend ? [jsBackend] : [jsBackend, active];
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return rng.fillNormal(new Float32Array(n), scale);
}


describe('GEMM', () => {
  // Odd sizes around the 4×4 tile, the KC=256 depth block and the NC=512 column block, plus the
  // small-product path.
  const sizes: Array<[number, number, number]> = [
    [1, 1, 1],
    [3, 5, 7],
    [4, 4, 4],
    [5, 3, 300],
    [67, 129, 33],
    [130, 70, 513],
    [9, 600, 20],
    [65, 517, 260],
  ];
  for (const backend of backends()) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`${backend.name}: ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} matches float64 within float32 rounding`, () => {
        const rng = new Rng(11);
        for (const [m, n, k] of sizes) {
          const a = randn(rng, m * k);
          const b = randn(rng, k * n);
          const c = new Float32Array(m * n).fill(NaN); // must be fully overwritten
          backend.gemm(tA, tB, m, n, k, a, b, c);
          const ref = referenceGemm(tA, tB, m, n, k, a, b);
          // Worst-case float32 dot-product bound k·u·Σ|a||b| (u = 2⁻²⁴) plus the final rounding.
          // The JS backend sums in float64 and rounds once per 256-deep block, far inside it.
          const perBlock = backend === jsBackend ? Math.ceil(k / 256) + 1 : k + 1;
          for (let i = 0; i < m * n; i++) {
            const err = Math.abs(c[i]! - ref.c[i]!);
            const bound = perBlock * U * ref.abs[i]! + 1e-30;
            assert.ok(err <= bound, `${m}×${n}×${k} entry ${i}: |err| ${err} > ${bound}`);
          }
        }
      });
    }
    it(`${backend.name}: k = 0 gives zeros`, () => {
      const c = new Float32Array(6).fill(7);
      backend.gemm(false, false, 2, 3, 0, new Float32Array(0), new Float32Array(0), c);
      assert.deepEqual([...c], [0, 0, 0, 0, 0, 0]);
    });
  }

  it('throughput (diagnostic)', (t) => {
    const rng = new Rng(1);
    const [m, n, k] = [512, 256, 1024];
    const a = randn(rng, m * k), b = randn(rng, k * n), c = new Float32Array(m * n);
    for (const backend of backends()) {
      backend.gemm(false, false, m, n, k, a, b, c); // warm-up
      for (const [tA, tB] of [
        [false, false],
        [true, false],
      ] as const) {
        const t0 = performance.now();
        backend.gemm(tA, tB, m, n, k, a, b, c);
        const s = (performance.now() - t0) / 1000;
        t.diagnostic(`${backend.name} ${tA ? 'T' : 'N'}N ${m}×${n}×${k}: ${((2 * m * n * k) / s / 1e9).toFixed(2)} GFLOP/s`);
      }
    }
  });

  it('setBackend swaps the active backend and returns the previous one', () => {
    const fake: KernelBackend = { name: 'fake', gemm: () => {} };
    const prev = setBackend(fake);
    try {
      assert.equal(getBackend(), fake);
    } finally {
      assert.equal(setBackend(prev), fake);
    }
    assert.equal(getBackend(), prev);
  });
});

describe('Cholesky and QR', () => {
  it('cholesky: RᵀR = G, and null for an indefinite matrix', () => {
    const rng = new Rng(2);
    const y = randn(rng, 50 * 20);
    const g = gramF64(y, 50, 20, 'cols');
    const r = cholesky(g, 20)!;
    assert.ok(r);
    let err = 0;
    for (let i = 0; i < 20; i++) {
      for (let j = 0; j < 20; j++) {
        let s = 0;
        for (let k = 0; k <= Math.min(i, j); k++) s += r[k * 20 + i]! * r[k * 20 + j]!;
        err = Math.max(err, Math.abs(s - g[i * 20 + j]!));
      }
    }
    assert.ok(err < 1e-11, `RᵀR − G: ${err}`);
    assert.equal(cholesky([1, 2, 2, 1], 2), null);
  });

  // Condition number → the path orthonormalize takes (measured; the test checks the result, and that
  // every path is exercised).
  const panels: Array<[string, number, string[]]> = [
    ['well conditioned', 1e1, ['cholqr2']],
    ['cond 1e3', 1e3, ['cholqr2', 'cholqr3', 'shifted-cholqr3']], // shifted with float32-accumulating GEMMs
    ['cond 1e4', 1e4, ['cholqr3', 'shifted-cholqr3', 'householder']],
    ['cond 1e8', 1e8, ['householder']],
  ];
  for (const backend of backends()) {
    for (const [label, cond, methods] of panels) {
      it(`${backend.name}: orthonormalize, ${label}: ‖QᵀQ − I‖ and ‖QR − Y‖ small`, () => {
        const rng = new Rng(5);
        const rows = 700, cols = 64;
        const y = conditionedPanel(rng, rows, cols, cond);
        const res = orthonormalize(backend, y, rows, cols);
        assert.ok(methods.includes(res.method), `method ${res.method}`);
        const o = orthogonalityError(res.q, rows, cols);
        const rec = reconstructionError(y, res, rows, cols);
        assert.ok(o < 2e-6, `orthogonality ${o}`);
        assert.ok(rec < 2e-6, `reconstruction ${rec}`);
      });
    }
  }

  it('orthonormalize: exactly rank-deficient panel falls back to Householder, still orthonormal', () => {
    const rng = new Rng(6);
    const rows = 300, cols = 40;
    const y = randn(rng, rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 10; j < cols; j++) y[i * cols + j] = j === 20 ? 0 : y[i * cols + (j % 10)]!;
    const res = orthonormalize(jsBackend, y, rows, cols);
    assert.equal(res.method, 'householder');
    assert.ok(orthogonalityError(res.q, rows, cols) < 1e-6);
    assert.ok(reconstructionError(y, res, rows, cols) < 1e-6);
  });

  it('householderQR on a square matrix', () => {
    const rng = new Rng(7);
    const y = randn(rng, 33 * 33);
    const res = householderQR(y, 33, 33);
    assert.ok(orthogonalityError(res.q, 33, 33) < 1e-6);
    assert.ok(reconstructionError(y, res, 33, 33) < 1e-6);
  });
});

describe('symmetric eigenvalues and singular values vs numpy', { skip: SKIP_PY }, () => {
  interface Case {
    name: string;
    kind: 'eigvalsh' | 'svd';
    rows: number;
    cols: number;
    data: Float64Array | Float32Array;
  }
  const cases: Case[] = [];
  const rng = new Rng(9);
  const sym = (n: number, fill: (i: number, j: number) => number): Float64Array => {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = fill(i, j);
    return a;
  };
  for (const n of [1, 2, 3, 50, 300]) cases.push({ name: `rand${n}`, kind: 'eigvalsh', rows: n, cols: n, data: sym(n, () => rng.normal()) });
  cases.push({ name: 'zero', kind: 'eigvalsh', rows: 20, cols: 20, data: new Float64Array(400) });
  cases.push({ name: 'diag', kind: 'eigvalsh', rows: 5, cols: 5, data: sym(5, (i, j) => (i === j ? [3, -1, 3, 0, 3][i]! : 0)) });
  {
    // Repeated eigenvalues hidden by a rotation: Q·diag·Qᵀ with a Householder Q of a random panel.
    const n = 40;
    const q = householderQR(randn(rng, n * n), n, n).q;
    const lam = Array.from({ length: n }, (_, i) => (i < 10 ? 2 : i < 25 ? -1 : i * 0.1));
    cases.push({
      name: 'repeated',
      kind: 'eigvalsh',
      rows: n,
      cols: n,
      data: sym(n, (i, j) => lam.reduce((s, l, k) => s + q[i * n + k]! * l * q[j * n + k]!, 0)),
    });
  }
  {
    // A Gram matrix with a wide dynamic range (what the SVD path feeds in).
    const y = randn(rng, 200 * 120);
    for (let i = 0; i < 200; i++) for (let j = 0; j < 120; j++) y[i * 120 + j]! *= Math.exp(-j / 12);
    cases.push({ name: 'gram', kind: 'eigvalsh', rows: 120, cols: 120, data: gramF64(y, 200, 120, 'cols') });
    cases.push({ name: 'sv-tall', kind: 'svd', rows: 200, cols: 120, data: y });
  }
  cases.push({ name: 'sv-wide', kind: 'svd', rows: 37, cols: 301, data: randn(rng, 37 * 301) });

  let ref: Record<string, { eig?: number[]; s?: number[] }> = {};
  const tmp = tempDir();
  before(() => {
    const parts: Buffer[] = [];
    const manifest = { data: join(tmp.dir, 'data.bin'), cases: [] as object[] };
    let offset = 0;
    for (const c of cases) {
      manifest.cases.push({ name: c.name, kind: c.kind, rows: c.rows, cols: c.cols, offset, dtype: c.data instanceof Float64Array ? 'f64' : 'f32' });
      parts.push(Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength));
      offset += c.data.byteLength;
    }
    writeFileSync(manifest.data, Buffer.concat(parts));
    writeFileSync(join(tmp.dir, 'manifest.json'), JSON.stringify(manifest));
    ref = JSON.parse(runPython(join(PY, 'metrics_ref.py'), [join(tmp.dir, 'manifest.json')]));
  });
  after(() => tmp.cleanup());

  // The TypeScript routines, the WebAssembly ones (assembly/linalg.ts), and LAPACK's through the
  // native backend when it is built.
  const wasm = createWasmBackend({ threads: 1 });
  after(() => wasm.close());
  const eigenBackends: Array<KernelBackend | null> = [
    null,
    wasm,
    ...('addon' in loadNativeAddon() ? [createNativeBackend({ threads: 1 })] : []),
  ];

  for (const b of eigenBackends) it(`${b?.name ?? 'TypeScript'}: eigenvalues match numpy.linalg.eigvalsh to 1e-12 of the largest |λ|`, () => {
    for (const c of cases.filter((x) => x.kind === 'eigvalsh')) {
      const ours = b ? symmetricEigenvaluesOn(b, c.data, c.rows) : symmetricEigenvalues(c.data, c.rows);
      const theirs = ref[c.name]!.eig!;
      assert.equal(ours.length, theirs.length);
      const scale = Math.max(1e-300, ...theirs.map(Math.abs));
      for (let i = 0; i < ours.length; i++) {
        assert.ok(Math.abs(ours[i]! - theirs[i]!) <= 1e-12 * scale, `${c.name}[${i}]: ${ours[i]} vs ${theirs[i]}`);
      }
    }
  });

  for (const b of eigenBackends) it(`${b?.name ?? 'TypeScript'}: singular values (float64 Gram) match numpy.linalg.svd to 1e-7 of σ₁`, () => {
    for (const c of cases.filter((x) => x.kind === 'svd')) {
      const ours = singularValues(c.data, c.rows, c.cols, b);
      const theirs = ref[c.name]!.s!;
      assert.equal(ours.length, theirs.length);
      for (let i = 0; i < ours.length; i++) {
        assert.ok(Math.abs(ours[i]! - theirs[i]!) <= 1e-7 * theirs[0]!, `${c.name}[${i}]: ${ours[i]} vs ${theirs[i]}`);
      }
    }
  });
});

describe('Scratch (no backend memory)', () => {
  it('hands a given-back array out again (stale), never one still in use, and keeps no very long ones', () => {
    const a = new Scratch(null);
    const x = a.f32(1000);
    const y = a.f32(1000);
    assert.notEqual(x, y);
    x.fill(7);
    a.free(x);
    const b = new Scratch(jsBackend);
    const again = b.f32(1000);
    assert.equal(again, x, 'the freed array is taken again');
    assert.equal(again[0], 7, 'as it was left: callers must not expect zeros');
    const fresh = b.f32(1000);
    assert.notEqual(fresh, y, 'y is still in use by the first Scratch');
    a.releaseAll();
    b.releaseAll();
    const c = new Scratch(null);
    assert.ok([x, y, fresh].includes(c.f32(1000)), 'released arrays are kept for the next Scratch');
    const big = c.f32((1 << 21) + 1);
    c.free(big);
    assert.notEqual(c.f32((1 << 21) + 1), big, 'an array over the kept length is let go');
    c.releaseAll();
  });
});
