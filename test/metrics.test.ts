import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jsBackend, type KernelBackend } from '../src/kernels/index.js';
import { createNativeBackend, loadNativeAddon } from '../src/kernels/native-backend.js';
import { createWasmBackend } from '../src/kernels/wasm-backend.js';
import {
  computeMetrics,
  energyConcentration,
  errorProxyMetric,
  expertSampleIndices,
  kurtosisMetric,
  outputDelta,
  outputSensitivityScore,
  reduceTo2D,
  roundHalfEven,
  svdMetric,
  svdScore,
} from '../src/metrics/index.js';
import { randomizedSingularValues, sketchRoute, SVD_NITER, SVD_RANK } from '../src/metrics/svd.js';
import { runPython } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { PY, tempDir } from './helpers/paths.js';

const SKIP_PY = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

interface M {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** rows×cols, entry (i, j) = f(rng, i, j), rounded to float32. */
function make(rows: number, cols: number, seed: number, f: (rng: Rng, i: number, j: number) => number): M {
  const rng = new Rng(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = f(rng, i, j);
  return { rows, cols, data };
}
const gauss = (rows: number, cols: number, seed: number, scale = 1): M => make(rows, cols, seed, (r) => r.normal() * scale);

function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / x.length);
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

// --------------------------------------------------------------------------------------------
// Cases checked against the independent numpy reference (test/py/metrics_ref.py), one python run.

const kurtosisCases: Record<string, M> = {
  gauss: gauss(300, 200, 1),
  outliers: (() => {
    const m = gauss(512, 256, 2);
    m.data[0] = 100;
    m.data[257] = -100;
    m.data[514] = 80;
    return m;
  })(),
  uniform: make(200, 150, 3, (r) => r.uniform() * 2 - 1), // κ ≈ −1.2
  heavy: make(256, 256, 4, (r) => r.normal() / Math.sqrt(r.uniform() + 0.02)), // large κ
  offset: make(100, 100, 5, (r) => 1000 + r.normal() * 0.01), // mean ≫ σ: needs the two-pass form
};

const errorCases: Record<string, M> = {
  padded: gauss(200, 300, 6, 0.02), // 300 = 2·128 + 44: pad zeros in the last group
  aligned: gauss(64, 256, 7),
  // Integers 0..30 with groups spanning 0..30 give scale 2 and many exact .5 ties: ties-to-even.
  ties: make(32, 130, 8, (r, i, j) => (j === 0 ? 0 : j === 1 ? 30 : Math.floor(r.uniform() * 31))),
  constantRows: make(16, 200, 9, (_r, i) => i * 0.25 - 1),
  tiny: gauss(40, 129, 10, 1e-20),
  narrow: make(8, 5, 11, (r) => r.normal()), // a single partly padded group per row
};

// Exact path (min dim ≤ 512) and randomized path (min dim > 512).
const svdCases: Record<string, M> = {
  exactGauss: gauss(300, 500, 12),
  exactDecay: make(512, 256, 13, (r, _i, j) => r.normal() * Math.exp(-j / 30)),
  exactRank1: (() => {
    const rng = new Rng(14);
    const u = Array.from({ length: 512 }, () => rng.normal());
    const v = Array.from({ length: 256 }, () => rng.normal());
    return make(512, 256, 0, (_r, i, j) => u[i]! * v[j]!);
  })(),
  // Slowly decaying spectrum (column scale (j+1)^−0.3, like real weight matrices).
  rsvdPower: make(600, 1100, 15, (r, _i, j) => r.normal() * (j + 1) ** -0.3),
  // Fast (exponential) decay, tall.
  rsvdExp: make(1100, 600, 16, (r, _i, j) => r.normal() * Math.exp(-j / 80)),
  rsvdGauss: gauss(520, 600, 17),
};

interface Ref {
  kurtosis?: number;
  nrmse?: number;
  s?: number[];
  rsvd?: number[];
  c_ref?: number;
  c_exact_top256?: number;
  c_full?: number;
}

let ref: Record<string, Ref> = {};
// The SVD metric is checked on the TypeScript backend, on the WebAssembly one (its own float64 l×l
// routines, assembly/linalg.ts) and on the native one (LAPACK for the l×l linear algebra) when it is built.
const wasmSvd = createWasmBackend({ threads: 2 });
const svdBackends: KernelBackend[] = [
  jsBackend,
  wasmSvd,
  ...('addon' in loadNativeAddon() ? [createNativeBackend({ threads: 2 })] : []),
];
const oursBy: Record<string, Record<string, ReturnType<typeof svdMetric>>> = {};
const tmp = tempDir();

before(() => {
  if (SKIP_PY) return;
  const parts: Buffer[] = [];
  const manifest = { data: join(tmp.dir, 'data.bin'), cases: [] as object[] };
  let offset = 0;
  const add = (name: string, kind: string, m: M) => {
    manifest.cases.push({ name, kind, rows: m.rows, cols: m.cols, offset, dtype: 'f32' });
    parts.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    offset += m.data.byteLength;
  };
  for (const [k, m] of Object.entries(kurtosisCases)) add(`kurtosis/${k}`, 'kurtosis', m);
  for (const [k, m] of Object.entries(errorCases)) add(`error/${k}`, 'error_proxy', m);
  for (const [k, m] of Object.entries(svdCases)) add(`svd/${k}`, 'svd', m);
  writeFileSync(manifest.data, Buffer.concat(parts));
  writeFileSync(join(tmp.dir, 'manifest.json'), JSON.stringify(manifest));
  ref = JSON.parse(runPython(join(PY, 'metrics_ref.py'), [join(tmp.dir, 'manifest.json')]));
});
after(() => {
  tmp.cleanup();
  wasmSvd.close();
});

describe('kurtosis', () => {
  it('matches numpy (float64 population moments) to 1e-6 relative', { skip: SKIP_PY }, () => {
    for (const [k, m] of Object.entries(kurtosisCases)) {
      const got = kurtosisMetric(m.data).kurtosis;
      const want = ref[`kurtosis/${k}`]!.kurtosis!;
      assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${k}: ${got} vs ${want}`);
    }
  });
  it('scores: Gaussian ≈ 0, outliers saturate, undefined cases are 0', () => {
    assert.ok(kurtosisMetric(kurtosisCases.gauss!.data).score < 0.03);
    assert.equal(kurtosisMetric(kurtosisCases.outliers!.data).score, 1);
    assert.equal(kurtosisMetric(kurtosisCases.uniform!.data).score, 0); // negative κ clips to 0
    assert.deepEqual(kurtosisMetric(new Float32Array([1, 2, 3])), { kurtosis: 0, score: 0 });
    assert.deepEqual(kurtosisMetric(new Float32Array(100).fill(3)), { kurtosis: 0, score: 0 });
  });
});

describe('error proxy', () => {
  it('round half to even', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 0, 15].map(roundHalfEven), [0, 2, 2, 4, 2, 3, 0, 15]);
  });
  it('matches numpy (float32 RTN ops, float64 sums) to 1e-6 relative', { skip: SKIP_PY }, () => {
    for (const [k, m] of Object.entries(errorCases)) {
      const got = errorProxyMetric(m.rows, m.cols, m.data).nrmse;
      const want = ref[`error/${k}`]!.nrmse!;
      assert.ok(relErr(got, want) <= 1e-6, `${k}: ${got} vs ${want}`);
    }
  });
  it('scores: a Gaussian saturates at 1 (NRMSE ≈ 0.1); all-zero is 0', () => {
    const r = errorProxyMetric(errorCases.aligned!.rows, errorCases.aligned!.cols, errorCases.aligned!.data);
    assert.ok(r.nrmse > 0.08 && r.nrmse < 0.13, `nrmse ${r.nrmse}`);
    assert.equal(r.score, 1);
    assert.deepEqual(errorProxyMetric(4, 300, new Float32Array(1200)), { nrmse: 0, score: 0 });
  });
});

describe('svd concentration', () => {
  before(() => {
    for (const b of svdBackends) {
      const ours: Record<string, ReturnType<typeof svdMetric>> = (oursBy[b.name] = {});
      for (const [k, m] of Object.entries(svdCases)) ours[k] = svdMetric(b, m.rows, m.cols, m.data, new Rng(99));
    }
  });

  for (const b of svdBackends) it(`${b.name}: exact path (min dim ≤ 512): all min(m,n) values, within 1e-6·σ₁ of numpy.linalg.svd`, { skip: SKIP_PY }, () => {
    const ours = oursBy[b.name]!;
    for (const k of ['exactGauss', 'exactDecay', 'exactRank1']) {
      const o = ours[k]!;
      const s = ref[`svd/${k}`]!.s!;
      assert.equal(o.method, 'exact');
      assert.equal(o.values.length, s.length);
      for (let i = 0; i < s.length; i++) assert.ok(Math.abs(o.values[i]! - s[i]!) <= 1e-6 * s[0]!, `${k}[${i}]`);
      assert.ok(Math.abs(o.concentration - ref[`svd/${k}`]!.c_ref!) <= 1e-9, `${k} c ${o.concentration}`);
    }
    // Rank one: all energy in the top value.
    assert.ok(Math.abs(ours.exactRank1!.concentration - 1) < 1e-9);
    assert.equal(ours.exactRank1!.score, 1);
    // A Gaussian's top-10% share (c ≈ 0.26 for 300×500) gives a low score.
    assert.ok(ours.exactGauss!.score > 0.1 && ours.exactGauss!.score < 0.25, `gauss score ${ours.exactGauss!.score}`);
  });

  /*
   * Accuracy of a q = 256, niter = 2 sketch with no oversampling (torch.svd_lowrank's settings),
   * measured on these matrices against the exact float64 SVD:
   *   σ₁ within 2e-4 relative (Gaussian; 3e-8 on the decaying spectra), σ₁₀ within 3e-4,
   *   σ₆₄ within 1.6e-3, σ₁₂₈ within 1e-2, and σ₂₅₆ 12–13% too low (a property of the algorithm on a
   *   spectrum that is still flat at 256; the numpy run of the same algorithm is off by as much).
   *   Against numpy's run of the same algorithm with an independent sketch: every value within 1.5%,
   *   the concentration within 3e-4 relative.
   * Asserted with margin below. Ritz values never exceed the true ones, so σᵢ ≤ exact σᵢ·(1+1e-6).
   */
  for (const b of svdBackends) it(`${b.name}: randomized path (min dim > 512): values and concentration vs numpy`, { skip: SKIP_PY }, () => {
    const ours = oursBy[b.name]!;
    for (const k of ['rsvdPower', 'rsvdExp', 'rsvdGauss']) {
      const o = ours[k]!;
      const r = ref[`svd/${k}`]!;
      const s = r.s!, rs = r.rsvd!;
      assert.equal(o.method, 'randomized');
      assert.equal(o.values.length, 256);
      const tol: Array<[number, number]> = [
        [0, 1e-3],
        [9, 1e-3],
        [63, 5e-3],
        [127, 2e-2],
        [255, 0.2],
      ];
      for (const [i, t] of tol) assert.ok(relErr(o.values[i]!, s[i]!) <= t, `${k} σ${i + 1}: ${o.values[i]} vs ${s[i]}`);
      for (let i = 0; i < 256; i++) {
        assert.ok(o.values[i]! <= s[i]! * (1 + 1e-6), `${k} σ${i + 1} exceeds the exact value`);
        assert.ok(relErr(o.values[i]!, rs[i]!) <= 0.03, `${k} σ${i + 1} vs numpy rSVD: ${o.values[i]} vs ${rs[i]}`);
      }
      assert.ok(relErr(o.concentration, r.c_ref!) <= 2e-3, `${k} c ${o.concentration} vs ${r.c_ref}`);
      // The denominator is the top-256 energy, not ‖W‖²: far below the full-spectrum share here.
      assert.ok(r.c_full! > o.concentration + 0.05, `${k}: full ${r.c_full} vs ${o.concentration}`);
    }
    // Gaussian: low concentration; exponential decay: high.
    assert.ok(ours.rsvdGauss!.concentration < 0.2);
    assert.ok(ours.rsvdExp!.concentration > 0.45);
  });

  it('the parity cases above take the Gram route, in both orientations; 4096-wide shapes the direct one', () => {
    const route = (m: M) => sketchRoute(m.rows, m.cols, SVD_RANK, SVD_NITER);
    assert.equal(route(svdCases.rsvdExp!), 'gram'); // n ≤ m: iterations with WᵀW
    assert.equal(route(svdCases.rsvdPower!), 'gram'); // m < n: with W·Wᵀ
    assert.equal(route(svdCases.rsvdGauss!), 'gram');
    for (const [m, n] of [[4096, 4096], [4096, 12288], [12288, 4096]]) assert.equal(sketchRoute(m, n, SVD_RANK, SVD_NITER), 'direct', `${m}×${n}`);
    // SmolLM2's shapes and its tied embedding.
    for (const [m, n] of [[576, 576], [1536, 576], [576, 1536], [49152, 576]]) assert.equal(sketchRoute(m, n, SVD_RANK, SVD_NITER), 'gram', `${m}×${n}`);
  });

  /*
   * The two routes reach the same subspaces for the same sketch (svd.ts gramSketchValues), so they
   * differ by float32 rounding only. Measured on these matrices: the concentration within 4e-7
   * relative and every value within 8e-7·σ₁ on every backend. Bounds: the Gram route's rounding
   * reaches each eigenvalue σᵢ² as ~u·σ₁² (u = 6e-8), i.e. σᵢ by ~u·σ₁²/σᵢ ≤ u·cond·σ₁ ≈ 2e-6·σ₁ at
   * cond 30, and the concentration, an energy ratio, by ~q·u relative at most: asserted 1e-5·σ₁ and
   * 2e-6. On an exactly rank-deficient W the values past the rank are rounding noise on both routes,
   * ~u·σ₁ on the direct one and ~√u·σ₁ on the Gram one (the square root of noise in σ²): 1e-3·σ₁
   * there, while the concentration still agrees to 2e-6 (m < n falls back on the direct route when
   * Pᵀ·H·P is not positive definite, which rank deficiency makes it).
   */
  for (const b of svdBackends) it(`${b.name}: Gram route and direct route agree (decaying spectra, both orientations, rank-deficient)`, () => {
    const cases: Array<[string, M, number]> = [];
    for (const [rows, cols, q] of [[300, 140, 64], [140, 300, 64], [700, 300, 128], [300, 700, 128]] as const) {
      cases.push([`exp ${rows}×${cols}`, make(rows, cols, rows + cols, (r, i, j) => r.normal() * (Math.exp(-(i + j) / 20) + 0.01)), q]);
      cases.push([`power ${rows}×${cols}`, make(rows, cols, rows * cols, (r, _i, j) => r.normal() * (j + 1) ** -0.6), q]);
    }
    for (const [rows, cols] of [[300, 140], [140, 300]] as const) {
      const rng = new Rng(rows);
      const u = Array.from({ length: rows * 10 }, () => rng.normal()), v = Array.from({ length: 10 * cols }, () => rng.normal());
      cases.push([`rank 10 ${rows}×${cols}`, make(rows, cols, 0, (_r, i, j) => {
        let t = 0;
        for (let k = 0; k < 10; k++) t += (u[i * 10 + k]! * v[k * cols + j]!) / (k + 1);
        return t;
      }), 64]);
    }
    for (const [name, m, q] of cases) {
      const direct = randomizedSingularValues(b, m.rows, m.cols, m.data, q, SVD_NITER, new Rng(3), 'direct');
      const gram = randomizedSingularValues(b, m.rows, m.cols, m.data, q, SVD_NITER, new Rng(3), 'gram');
      const tol = name.startsWith('rank') ? 1e-3 : 1e-5;
      for (let i = 0; i < q; i++) assert.ok(Math.abs(gram[i]! - direct[i]!) <= tol * direct[0]!, `${name} σ${i + 1}: ${gram[i]} vs ${direct[i]}`);
      const cd = energyConcentration(direct), cg = energyConcentration(gram);
      assert.ok(Math.abs(cg - cd) <= 2e-6 * cd, `${name} c: ${cg} vs ${cd}`);
    }
  });

  it('concentration and score helpers', () => {
    assert.equal(energyConcentration([3, 0, 0]), 1);
    assert.equal(energyConcentration([0, 0]), 0);
    assert.equal(energyConcentration(new Array(20).fill(1)), 0.1); // t = 2 of 20
    assert.equal(svdScore(0.1), 0);
    assert.equal(svdScore(0.5), 0.5);
    assert.equal(svdScore(0.95), 1);
    for (const b of svdBackends) {
      const z = svdMetric(b, 600, 520, new Float32Array(600 * 520), new Rng(1));
      assert.equal(z.score, 0, b.name);
      const bad = new Float32Array(64 * 64);
      bad[5] = NaN;
      assert.equal(svdMetric(b, 64, 64, bad, new Rng(1)).score, 0.5, b.name);
    }
  });
});

describe('output sensitivity', () => {
  /*
   * Closed form. E has iid entries U(−r/32, r/32): variance σ_E² = (r/16)²/12. A probe column x is
   * independent of E with ‖x‖ = 1, so each entry of E·x has variance σ_E²·‖x‖² = σ_E², and
   * ‖E·X‖_F² ≈ m·p·σ_E² (relative spread √(2/(m·p))). For W·x: E[xᵀWᵀWx] = tr(WᵀW)/n for x uniform on
   * the sphere, so ‖W·X‖_F² ≈ p·‖W‖_F²/n = m·p·RMS(W)². Hence
   *   δ ≈ σ_E/RMS(W) = r / (16·√12·RMS(W)).
   * With m·p = 1024·32 the sampling spread of δ is ≈ 0.5%, so 2% holds comfortably.
   */
  const closedForm = (m: M): number => {
    let mn = Infinity, mx = -Infinity;
    for (const v of m.data) {
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    return (mx - mn) / (16 * Math.sqrt(12) * rms(m.data));
  };
  const mats: Record<string, M> = {
    gauss: gauss(1024, 512, 20, 0.02),
    uniform: make(1024, 384, 21, (r) => r.uniform() - 0.5),
    heavy: make(1024, 512, 22, (r) => r.normal() / Math.sqrt(r.uniform() + 0.05)),
  };
  for (const [k, m] of Object.entries(mats)) {
    it(`${k}: δ within 2% of r/(16·√12·RMS(W))`, () => {
      const d = outputDelta(jsBackend, m.rows, m.cols, m.data, new Rng(5));
      const cf = closedForm(m);
      assert.ok(relErr(d, cf) < 0.02, `δ ${d} vs closed form ${cf}`);
    });
  }
  it('does not depend on the scale of W', () => {
    const m = mats.gauss!;
    const big = new Float32Array(m.data.length);
    for (let i = 0; i < big.length; i++) big[i] = m.data[i]! * 1024; // power of two: exact
    const a = outputDelta(jsBackend, m.rows, m.cols, m.data, new Rng(8));
    const b = outputDelta(jsBackend, m.rows, m.cols, big, new Rng(8));
    assert.ok(relErr(a, b) < 1e-6, `${a} vs ${b}`);
  });
  it('score mapping and degenerate inputs', () => {
    assert.equal(outputSensitivityScore(0), 0);
    assert.equal(outputSensitivityScore(5e-7), 0);
    assert.equal(outputSensitivityScore(0.005), 0); // clamped up to 0.01 → 0
    assert.ok(Math.abs(outputSensitivityScore(0.1) - 1 / 3) < 1e-12);
    assert.equal(outputSensitivityScore(100), 1);
    assert.equal(outputDelta(jsBackend, 10, 20, new Float32Array(200).fill(0.5), new Rng(1)), 0);
    // A Gaussian 4096² scores ≈ 0.42 in the reference; a Gaussian's crest factor sets it.
    const s = outputSensitivityScore(outputDelta(jsBackend, 1024, 512, mats.gauss!.data, new Rng(3)));
    assert.ok(s > 0.35 && s < 0.45, `score ${s}`);
  });
});

describe('computeMetrics', () => {
  const m = gauss(520, 530, 30); // randomized SVD path, kept small
  it('same seed → identical results; different seed → different random metrics', () => {
    const a = computeMetrics(m, 42, 'model.layers.0.mlp.up_proj.weight');
    const b = computeMetrics(m, 42, 'model.layers.0.mlp.up_proj.weight');
    const c = computeMetrics(m, 43, 'model.layers.0.mlp.up_proj.weight');
    const d = computeMetrics(m, 42, 'model.layers.1.mlp.up_proj.weight');
    assert.deepEqual(a.scores, b.scores);
    assert.deepEqual(a.raw, b.raw);
    for (const other of [c, d]) {
      assert.notEqual(other.raw.svd_concentration, a.raw.svd_concentration);
      assert.notEqual(other.raw.output_delta, a.raw.output_delta);
      // Deterministic metrics do not use the seed.
      assert.equal(other.raw.kurtosis, a.raw.kurtosis);
      assert.equal(other.raw.error_nrmse, a.raw.error_nrmse);
    }
    for (const v of Object.values(a.scores)) assert.ok(v >= 0 && v <= 1);
    for (const v of Object.values(a.seconds)) assert.ok(v >= 0);
    // Gaussian: S ≈ 0.27 in the reference (svd ~0.02–0.17, kurt 0, out ~0.4, err 1).
    assert.ok(a.scores.svd < 0.2 && a.scores.kurtosis < 0.05 && a.scores.error_proxy === 1);
    assert.ok(a.scores.output_sensitivity > 0.3 && a.scores.output_sensitivity < 0.5);
  });
});

describe('reduceTo2D', () => {
  it('E = 128 samples experts [0, 42, 84, 127]', () => {
    assert.deepEqual(expertSampleIndices(128), [0, 42, 84, 127]);
    assert.deepEqual(expertSampleIndices(8), [0, 2, 4, 7]);
    assert.deepEqual(expertSampleIndices(5), [0, 1, 2, 4]);
    const [e, r, c] = [128, 3, 2];
    const data = new Float32Array(e * r * c).map((_, i) => i);
    const out = reduceTo2D([e, r, c], data);
    assert.equal(out.rows, 4 * r);
    assert.equal(out.cols, c);
    const want: number[] = [];
    for (const idx of [0, 42, 84, 127]) for (let i = 0; i < r * c; i++) want.push(idx * r * c + i);
    assert.deepEqual([...out.data], want);
  });
  it('E ≤ 4 reshapes, 2-D passes through, ≥ 4-D flattens the tail', () => {
    const d = new Float32Array(4 * 3 * 5);
    assert.deepEqual({ ...reduceTo2D([4, 3, 5], d), data: null }, { rows: 12, cols: 5, data: null });
    assert.equal(reduceTo2D([4, 3, 5], d).data, d);
    assert.deepEqual({ ...reduceTo2D([12, 5], d), data: null }, { rows: 12, cols: 5, data: null });
    assert.deepEqual({ ...reduceTo2D([2, 3, 2, 5], d.subarray(0, 60)), data: null }, { rows: 2, cols: 30, data: null });
    // conv1d weight [C, 1, K] takes the expert path too.
    assert.deepEqual({ ...reduceTo2D([16, 1, 4], new Float32Array(64)), data: null }, { rows: 4, cols: 4, data: null });
  });
});
