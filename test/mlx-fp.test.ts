/**
 * swan's mxfp4 / nvfp4 / mxfp8 quantization (src/mlx/fp.ts) against a real MLX (mlx[cpu] in the
 * venv): packed codes, uint8 scales and mx.dequantize, bit for bit, for every mode × dtype, on
 * random groups and on the edge cases the rules were derived from (rounding ties of FP4 and E4M3,
 * amax at and beside a power of two, zero and negative-zero groups, groups so small that the E8M0
 * scale wraps, saturation). One Python process for all cases.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { decodeToF32, encodeFromF32, roundToDType, type FloatDType } from '../src/io/float.js';
import { FP_MODE_SPEC, FP_MODES, type FpMode } from '../src/format.js';
import { dequantizeFp, fpRelativeError, quantizeFp } from '../src/mlx/fp.js';
import { runPython } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { PY, tempDir } from './helpers/paths.js';

const SKIP = process.env.SWAN_SKIP_PYTHON === '1';
const DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];
const COLS = 256;
const ROWS = 64;

/** Written out here, not taken from src: FP4 magnitudes, their midpoints, and the E4M3 grid. */
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const E4M3: number[] = [];
for (let c = 0; c < 127; c++) E4M3.push(c >> 3 === 0 ? (c & 7) * 2 ** -9 : (1 + (c & 7) / 8) * 2 ** ((c >> 3) - 7));

interface Case {
  name: string;
  mode: FpMode;
  dtype: FloatDType;
  w: Float32Array;
  offset: number;
}

/** One group of `g` values of the given edge kind (k picks a variant). */
function fillGroup(out: Float32Array, kind: number, mode: FpMode, rng: Rng): void {
  const g = out.length;
  const top = mode === 'mxfp8' ? 448 : 6;
  const p2 = 2 ** (Math.floor(rng.uniform() * 14) - 10); // top · p2 stays finite in f16
  switch (kind % 10) {
    case 0: // normal, random magnitude
    case 1: {
      const mag = 10 ** (rng.uniform() * 6 - 4);
      for (let i = 0; i < g; i++) out[i] = rng.normal() * mag;
      break;
    }
    case 2: // heavy tails
      for (let i = 0; i < g; i++) out[i] = (rng.normal() / Math.sqrt(Math.max(rng.uniform(), 1e-3))) * 0.02;
      break;
    case 3: // FP4 / E4M3 ties at a power-of-two scale
      out[0] = top * p2;
      for (let i = 1; i < g; i++) {
        const j = Math.floor(rng.uniform() * 7);
        const v = mode === 'mxfp8' ? (E4M3[1 + Math.floor(rng.uniform() * 125)]! + E4M3[2 + Math.floor(rng.uniform() * 124)]!) / 2 : (FP4[j]! + FP4[j + 1]!) / 2;
        out[i] = (rng.uniform() < 0.5 ? -v : v) * p2;
      }
      break;
    case 4: {
      // nvfp4: ties at a scale with a non-trivial E4M3 mantissa (amax / 6 exactly that scale)
      const s = E4M3[8 + Math.floor(rng.uniform() * 110)]!;
      out[0] = 6 * s;
      for (let i = 1; i < g; i++) {
        const j = Math.floor(rng.uniform() * 7);
        out[i] = (rng.uniform() < 0.5 ? -1 : 1) * ((FP4[j]! + FP4[j + 1]!) / 2) * s;
      }
      break;
    }
    case 5: // amax at, just under and just over top · 2^k (the E8M0 ceiling)
      for (let i = 0; i < g; i++) out[i] = (rng.uniform() * 2 - 1) * top * p2;
      out[0] = top * p2 * [1, 1 - 2 ** -23, 1 + 2 ** -23, 1 + 2 ** -10][Math.floor(rng.uniform() * 4)]!;
      break;
    case 6: // zero, negative zero and sign of tiny values
      for (let i = 0; i < g; i++) out[i] = [0, -0, -1e-30, 1e-30][i % 4]!;
      if (rng.uniform() < 0.5) out[1] = 1;
      break;
    case 7: // subnormal amax: the E8M0 scale wraps in MLX
      for (let i = 0; i < g; i++) out[i] = (rng.uniform() * 2 - 1) * 1e-39;
      out[0] = 2e-39;
      break;
    case 8: // large values (nvfp4 scale saturation at 448)
      for (let i = 0; i < g; i++) out[i] = (rng.uniform() * 2 - 1) * 5000;
      out[0] = 6 * 480;
      break;
    default: // tiny normal values
      for (let i = 0; i < g; i++) out[i] = rng.normal() * 1e-6;
  }
}

function makeCases(): Case[] {
  const cases: Case[] = [];
  let offset = 0;
  for (const mode of FP_MODES) {
    for (const dtype of DTYPES) {
      const name = `${mode}-${dtype}`;
      const rng = Rng.forKey(77, name);
      const g = FP_MODE_SPEC[mode].groupSize;
      const w = new Float32Array(ROWS * COLS);
      for (let gi = 0; gi < w.length / g; gi++) fillGroup(w.subarray(gi * g, (gi + 1) * g), gi, mode, rng);
      roundToDType(w, dtype);
      cases.push({ name, mode, dtype, w, offset });
      offset += w.length * (dtype === 'F32' ? 4 : 2);
    }
  }
  return cases;
}

describe('mxfp4 / nvfp4 / mxfp8 against real MLX', { skip: SKIP ? 'SWAN_SKIP_PYTHON=1' : false }, () => {
  const cases = makeCases();
  const mlx = new Map<string, { wq: Uint32Array; scales: Uint8Array; deq: Float32Array }>();

  before(() => {
    const { dir, cleanup } = tempDir('swan-fp-');
    try {
      writeFileSync(join(dir, 'input.bin'), Buffer.concat(cases.map((c) => encodeFromF32(c.w, c.dtype))));
      const spec = cases.map((c) => ({ name: c.name, dtype: c.dtype, rows: ROWS, cols: COLS, bits: 0, group: 0, offset: c.offset, mode: c.mode }));
      writeFileSync(join(dir, 'cases.json'), JSON.stringify(spec));
      runPython(join(PY, 'mlx_quantize.py'), [dir], { timeoutMs: 120_000 });
      const meta = JSON.parse(readFileSync(join(dir, 'output.json'), 'utf8')) as { cases: { name: string; wq: number[]; scales: number[]; deq: number[] }[] };
      const out = readFileSync(join(dir, 'output.bin'));
      const slice = (r: number[]) => new Uint8Array(out.buffer.slice(out.byteOffset + r[0]!, out.byteOffset + r[0]! + r[1]!));
      for (const m of meta.cases) {
        const c = cases.find((x) => x.name === m.name)!;
        mlx.set(m.name, { wq: new Uint32Array(slice(m.wq).buffer), scales: slice(m.scales), deq: decodeToF32(slice(m.deq), c.dtype) });
      }
    } finally {
      cleanup();
    }
  });

  for (const c of cases) {
    test(`${c.name}: codes, scales and dequantization bit-identical`, () => {
      const ref = mlx.get(c.name)!;
      const q = quantizeFp(c.w, ROWS, COLS, c.mode, c.dtype);
      const badScale = q.scales.findIndex((s, i) => s !== ref.scales[i]);
      assert.equal(badScale, -1, `scale ${badScale}: swan ${q.scales[badScale]} mlx ${ref.scales[badScale]}`);
      const badWord = q.wq.findIndex((x, i) => x !== ref.wq[i]);
      assert.equal(badWord, -1, `word ${badWord}: swan ${q.wq[badWord]?.toString(16)} mlx ${ref.wq[badWord]?.toString(16)}`);
      const deq = dequantizeFp(q.wq, q.scales, ROWS, COLS, c.mode, c.dtype);
      const badDeq = deq.findIndex((x, i) => !Object.is(x, ref.deq[i]) && !(Number.isNaN(x) && Number.isNaN(ref.deq[i]!)));
      assert.equal(badDeq, -1, `deq ${badDeq}: swan ${deq[badDeq]} mlx ${ref.deq[badDeq]}`);
    });
  }
});

describe('fp modes: round-trip error', () => {
  test('relative error is small and ordered: mxfp8 < nvfp4 ≤ mxfp4 on Gaussian weights', () => {
    const rng = Rng.forKey(5, 'fp-err');
    const w = roundToDType(Float32Array.from({ length: 64 * 256 }, () => rng.normal() * 0.02), 'BF16');
    const e = Object.fromEntries(FP_MODES.map((m) => [m, fpRelativeError(w, 64, 256, m, 'BF16')])) as Record<FpMode, number>;
    assert.ok(e.mxfp8 < 2e-3, `mxfp8 ${e.mxfp8}`);
    assert.ok(e.nvfp4 < e.mxfp4 && e.mxfp4 < 0.05, JSON.stringify(e));
    assert.ok(e.mxfp8 < e.nvfp4);
  });
});
