import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { roundToDType, type FloatDType } from '../src/io/float.js';
import {
  AFFINE_BITS,
  AFFINE_GROUP_SIZES,
  affineRelativeError,
  dequantizeAffine,
  quantizeAffine,
  type QuantRules,
} from '../src/mlx/affine.js';
import { packBits, unpackBits } from '../src/mlx/pack.js';
import { Rng } from '../src/rng.js';

const fr = Math.fround;
const EPS = fr(1e-7);

/** One group of 32 (default): `vals` first, the rest filled with `fill`. */
function group(vals: number[], fill: number, g = 32): Float32Array {
  const w = new Float32Array(g).fill(fill);
  w.set(vals);
  return w;
}

function codesOf(w: Float32Array, bits: number, g: number, rules: QuantRules) {
  const r = quantizeAffine(w, w.length / g, g, bits, g, rules);
  return { scale: r.scales[0]!, bias: r.biases[0]!, codes: unpackBits(r.wq, bits, g), all: r };
}

describe('affine quantization: spec worked cases', () => {
  for (const rules of ['metal', 'cpu'] as const) {
    test(`negative scale when |wmax| >= |wmin|; bias is wmax (${rules})`, () => {
      // s0 = -(2/15); q0 = round(1.5 / s0) = round(-11.25) = -11; scale = 1.5 / -11.
      const { scale, bias, codes } = codesOf(group([1.5, -0.5, 0], 0), 4, 32, rules);
      assert.equal(scale, fr(1.5 / -11));
      assert.ok(scale < 0);
      assert.equal(bias, 1.5);
      assert.equal(codes[0], 0); // code 0 decodes to the edge
      assert.equal(codes[1], 15); // 14.67 → 15
      assert.equal(codes[2], 11); // zero lands exactly on code -q0
    });

    test(`positive scale when |wmin| > |wmax|; bias is wmin (${rules})`, () => {
      const { scale, bias, codes } = codesOf(group([-1.5, 0.5, 0], 0), 4, 32, rules);
      assert.equal(scale, fr(-1.5 / -11));
      assert.ok(scale > 0);
      assert.equal(bias, -1.5);
      assert.deepEqual([codes[0], codes[1], codes[2]], [0, 15, 11]);
    });

    test(`all-zero group: scale = -eps, bias 0, codes 0 (${rules})`, () => {
      for (const bits of AFFINE_BITS) {
        const { scale, bias, codes } = codesOf(new Float32Array(64), bits, 64, rules);
        assert.equal(scale, -EPS);
        assert.ok(Object.is(bias, 0));
        assert.ok(codes.every((q) => q === 0));
      }
    });

    test(`constant positive group: tiny negative scale, bias c (${rules})`, () => {
      const c = 0.75;
      const { scale, bias, codes } = codesOf(group([], c), 4, 32, rules);
      assert.ok(scale < 0 && Math.abs(scale + 1e-7) < 1e-12, `scale ${scale}`);
      assert.equal(bias, c);
      assert.ok(codes.every((q) => q === 0));
    });
  }

  test('constant negative group: metal scale = |c|/n, cpu a tiny negative scale', () => {
    const c = -0.75;
    const m = codesOf(group([], c), 4, 32, 'metal');
    assert.equal(m.scale, fr(-0.75 / -15));
    assert.equal(m.bias, c);
    assert.ok(m.codes.every((q) => q === 0));
    const p = codesOf(group([], c), 4, 32, 'cpu');
    // CPU: wmax = wmin = c, neg is false, s0 = -eps, q0 = rint(c / -eps) > 0.
    assert.ok(p.scale < 0 && Math.abs(p.scale + 1e-7) < 1e-12, `scale ${p.scale}`);
    assert.equal(p.bias, c);
    assert.ok(p.codes.every((q) => q === 0));
  });

  test('spec example: all -1 → metal scale 1/15 bias -1; cpu scale -1e-7 bias -1', () => {
    const m = codesOf(group([], -1), 4, 32, 'metal');
    assert.equal(m.scale, fr(1 / 15));
    assert.equal(m.bias, -1);
    const p = codesOf(group([], -1), 4, 32, 'cpu');
    assert.ok(Math.abs(p.scale + 1e-7) < 1e-12, `scale ${p.scale}`);
    assert.equal(p.bias, -1);
    // Both decode to -1.
    for (const r of [m, p]) {
      const d = dequantizeAffine(r.all.wq, r.all.scales, r.all.biases, 1, 32, 4, 32, 'F16');
      assert.ok(d.every((v) => v === -1));
    }
  });

  test('all-negative group: metal range [wmin, 0], cpu range [wmin, wmax]', () => {
    const w = group([-2, -0.5], -1.2);
    const m = codesOf(w, 4, 32, 'metal');
    assert.equal(m.scale, fr(2 / 15)); // wmin / -n
    assert.equal(m.bias, -2);
    assert.deepEqual([m.codes[0], m.codes[1]], [0, 11]); // -0.5 → 11.25 → 11
    const p = codesOf(w, 4, 32, 'cpu');
    assert.equal(p.scale, fr(0.1)); // s0 = 1.5/15, q0 = -20, scale = -2 / -20
    assert.equal(p.bias, -2);
    assert.deepEqual([p.codes[0], p.codes[1]], [0, 15]);
  });

  test('code ties: metal rounds halves away from zero, cpu to even', () => {
    // bits 2: wmin 0, wmax 3 → scale -1, bias 3; (w - 3) / -1 = 0.5, 1.5, 2.5.
    const w = group([3, 0, 2.5, 1.5, 0.5], 3);
    const m = codesOf(w, 2, 32, 'metal');
    const p = codesOf(w, 2, 32, 'cpu');
    assert.equal(m.scale, -1);
    assert.equal(p.scale, -1);
    assert.deepEqual([...m.codes.subarray(0, 5)], [0, 3, 1, 2, 3]);
    assert.deepEqual([...p.codes.subarray(0, 5)], [0, 3, 0, 2, 2]);
    // Mirror image: scale +1, bias -3.
    const wn = group([-3, 0, -2.5, -1.5, -0.5], -3);
    const mn = codesOf(wn, 2, 32, 'metal');
    const pn = codesOf(wn, 2, 32, 'cpu');
    assert.equal(mn.scale, 1);
    assert.equal(mn.bias, -3);
    assert.deepEqual([...mn.codes.subarray(0, 5)], [0, 3, 1, 2, 3]);
    assert.deepEqual([...pn.codes.subarray(0, 5)], [0, 3, 0, 2, 2]);
  });

  test('q0 tie: metal round(-8.5) = -9, cpu rint(-8.5) = -8', () => {
    const w = group([8.5, -6.5], 1); // s0 = -(15/15) = -1, edge/s0 = -8.5
    const m = codesOf(w, 4, 32, 'metal');
    const p = codesOf(w, 4, 32, 'cpu');
    assert.equal(m.scale, fr(8.5 / -9));
    assert.equal(p.scale, -1.0625);
    assert.equal(m.bias, 8.5);
    assert.equal(p.bias, 8.5);
  });

  test('codes use the float32 scale/bias and are independent per group and row', () => {
    const rng = new Rng(7);
    const w = rng.fillNormal(new Float32Array(4 * 256), 0.02);
    const whole = quantizeAffine(w, 4, 256, 4, 64);
    for (let r = 0; r < 4; r++) {
      for (let gcol = 0; gcol < 4; gcol++) {
        const off = r * 256 + gcol * 64;
        const one = quantizeAffine(w.slice(off, off + 64), 1, 64, 4, 64);
        const gi = r * 4 + gcol;
        assert.equal(one.scales[0], whole.scales[gi]);
        assert.equal(one.biases[0], whole.biases[gi]);
        assert.deepEqual([...one.wq], [...whole.wq.subarray(gi * 8, gi * 8 + 8)]);
      }
    }
  });
});

describe('affine quantization: round trip', () => {
  for (const rules of ['metal', 'cpu'] as const) {
    test(`|w - dequant(quant(w))| <= |scale| + 1e-6 for every bits × group (${rules})`, () => {
      const rows = 32;
      const cols = 512;
      const w = new Rng(11).fillNormal(new Float32Array(rows * cols));
      for (const bits of AFFINE_BITS) {
        for (const g of AFFINE_GROUP_SIZES) {
          const q = quantizeAffine(w, rows, cols, bits, g, rules);
          assert.equal(q.wq.length, (rows * cols * bits) / 32);
          assert.equal(q.scales.length, (rows * cols) / g);
          const d = dequantizeAffine(q.wq, q.scales, q.biases, rows, cols, bits, g, 'F32');
          for (let i = 0; i < w.length; i++) {
            const s = Math.abs(q.scales[Math.floor(i / g)]!);
            assert.ok(Math.abs(w[i]! - d[i]!) <= s + 1e-6, `bits ${bits} g ${g} i ${i}`);
          }
        }
      }
    });
  }

  test('an all-zero matrix comes back exactly zero', () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const q = quantizeAffine(new Float32Array(2 * 128), 2, 128, 4, 64);
      const d = dequantizeAffine(q.wq, q.scales, q.biases, 2, 128, 4, 64, dtype);
      assert.ok(d.every((v) => v === 0));
    }
  });

  test('affineRelativeError equals the error of quantize + dequantize, and falls with bits', () => {
    const rows = 16;
    const cols = 256;
    const rng = new Rng(5);
    const w = rng.fillNormal(new Float32Array(rows * cols), 0.05);
    for (let i = 0; i < w.length; i += 97) w[i] = w[i]! * 20; // outliers
    for (const dtype of ['F32', 'F16', 'BF16'] as FloatDType[]) {
      const wt = roundToDType(w.slice(), dtype);
      let prev = Infinity;
      for (const bits of AFFINE_BITS) {
        for (const rules of ['metal', 'cpu'] as const) {
          const q = quantizeAffine(wt, rows, cols, bits, 64, rules);
          const d = dequantizeAffine(q.wq, q.scales, q.biases, rows, cols, bits, 64, dtype);
          let num = 0;
          let den = 0;
          for (let i = 0; i < wt.length; i++) {
            num += (wt[i]! - d[i]!) ** 2;
            den += wt[i]! ** 2;
          }
          const e = affineRelativeError(wt, rows, cols, bits, 64, dtype, rules);
          assert.equal(e, num / den, `${dtype} bits ${bits} ${rules}`);
          if (rules === 'metal') {
            assert.ok(e < prev, `error should fall with bits (${dtype} ${bits})`);
            prev = e;
          }
        }
      }
    }
    assert.equal(affineRelativeError(new Float32Array(64), 1, 64, 4, 64, 'F16'), 0);
  });
});

describe('bit packing', () => {
  /** Expected words from a BigInt bit stream: element i at bits [i·bits, (i+1)·bits). */
  function bigIntWords(codes: number[], bits: number): number[] {
    let s = 0n;
    codes.forEach((q, i) => (s |= BigInt(q) << BigInt(i * bits)));
    const words: number[] = [];
    for (let k = 0; k < (codes.length * bits) / 32; k++) words.push(Number((s >> BigInt(32 * k)) & 0xffffffffn));
    return words;
  }

  // Codes i mod 2^bits for one row of 32. 2/3/4/8 derived by hand (3-bit: 8 codes make the 24-bit
  // chunk 0o76543210 = 0xfac688, repeated 4 times across 3 words); 5/6 from an independent script.
  const HAND: Record<number, number[]> = {
    2: [0xe4e4e4e4, 0xe4e4e4e4],
    3: [0x88fac688, 0xc688fac6, 0xfac688fa],
    4: [0x76543210, 0xfedcba98, 0x76543210, 0xfedcba98],
    5: [0x8a418820, 0xc5a92839, 0xca307b9a, 0x38bdab49, 0xffbbcdeb],
    6: [0x440c2040, 0xa2481c61, 0x3ce34c2c, 0x544d2450, 0xa6585d65, 0x7de75c6d],
    8: [0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c, 0x13121110, 0x17161514, 0x1b1a1918, 0x1f1e1d1c],
  };

  for (const bits of AFFINE_BITS) {
    test(`exact words for codes 0..n cycling, ${bits} bits`, () => {
      const codes = Array.from({ length: 32 }, (_, i) => i % (1 << bits));
      const packed = packBits(Uint8Array.from(codes), bits, 32);
      assert.deepEqual([...packed], HAND[bits]);
      assert.deepEqual([...packed], bigIntWords(codes, bits));
      assert.deepEqual([...unpackBits(packed, bits, 32)], codes);
    });
  }

  test('random codes round-trip and match the BigInt stream, every width', () => {
    const rng = new Rng(3);
    for (const bits of AFFINE_BITS) {
      for (const rowLength of [32, 64, 96, 128, 4096]) {
        const rows = 3;
        const codes = new Uint8Array(rows * rowLength);
        for (let i = 0; i < codes.length; i++) codes[i] = rng.nextU32() & ((1 << bits) - 1);
        const packed = packBits(codes, bits, rowLength);
        assert.equal(packed.length, (rows * rowLength * bits) / 32);
        assert.deepEqual(unpackBits(packed, bits, rowLength), codes);
        if (rowLength === 96) {
          // Each row is its own stream starting at a word boundary.
          const wpr = (rowLength * bits) / 32;
          for (let r = 0; r < rows; r++) {
            const row: number[] = Array.from(codes.subarray(r * rowLength, (r + 1) * rowLength));
            assert.deepEqual([...packed.subarray(r * wpr, (r + 1) * wpr)], bigIntWords(row, bits));
          }
        }
      }
    }
  });

  test('quantizeAffine packs exactly what packBits packs', () => {
    const w = new Rng(9).fillNormal(new Float32Array(4 * 128));
    for (const bits of AFFINE_BITS) {
      const q = quantizeAffine(w, 4, 128, bits, 32, 'cpu');
      const codes = unpackBits(q.wq, bits, 128);
      assert.deepEqual(packBits(codes, bits, 128), q.wq);
    }
  });

  test('argument errors', () => {
    assert.throws(() => packBits(new Uint8Array(32), 7, 32), /bits/);
    assert.throws(() => packBits(new Uint8Array(48), 4, 48), /multiple of 32/);
    assert.throws(() => packBits(new Uint8Array(40), 4, 32), /whole number of rows/);
    assert.throws(() => packBits(Uint8Array.of(...new Array(31).fill(0), 16), 4, 32), /does not fit/);
    assert.throws(() => unpackBits(new Uint32Array(3), 4, 32), /whole number of rows/);
  });
});

describe('affine quantization: argument validation', () => {
  const w = new Float32Array(128);
  test('bits, group size, cols and length are checked', () => {
    assert.throws(() => quantizeAffine(w, 1, 128, 7, 64), /bits must be one of/);
    assert.throws(() => quantizeAffine(w, 1, 128, 4, 16), /group size must be one of/);
    assert.throws(() => quantizeAffine(new Float32Array(96), 1, 96, 4, 64), /multiple of the group size 64/);
    assert.throws(() => quantizeAffine(w, 2, 128, 4, 64), /expected 2×128/);
    assert.throws(() => quantizeAffine(w, 1, 128, 4, 64, 'gpu' as QuantRules), /rules/);
    assert.throws(() => affineRelativeError(w, 1, 128, 1, 64, 'F16'), /bits must be one of/);
    const q = quantizeAffine(w, 1, 128, 4, 64);
    assert.throws(() => dequantizeAffine(q.wq, q.scales, q.biases, 1, 128, 4, 32, 'F16'), /scales\/biases/);
    assert.throws(() => dequantizeAffine(q.wq, q.scales, q.biases, 1, 128, 8, 64, 'F16'), /wq has/);
  });
});

describe('affine quantization: speed', () => {
  test('quantizes a 1024×4096 matrix quickly', () => {
    const rows = 1024;
    const cols = 4096;
    const w = new Rng(1).fillNormal(new Float32Array(rows * cols), 0.02);
    const t0 = performance.now();
    quantizeAffine(w, rows, cols, 4, 64);
    const t1 = performance.now();
    affineRelativeError(w, rows, cols, 4, 64, 'BF16');
    const t2 = performance.now();
    const mw = (rows * cols) / 1e6;
    console.log(
      `quantizeAffine ${(mw / ((t1 - t0) / 1000)).toFixed(0)} Mweights/s, ` +
        `affineRelativeError(BF16) ${(mw / ((t2 - t1) / 1000)).toFixed(0)} Mweights/s`,
    );
    assert.ok(t1 - t0 < 10_000); // generous: the machine is shared
  });
});
