/**
 * swan's affine quantization against a real MLX (mlx[cpu] in the venv, which runs the MLX CPU
 * kernel). All cases go to one Python process: its start-up dominates.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { decodeToF32, encodeFromF32, roundToDType, type FloatDType } from '../src/io/float.js';
import { AFFINE_BITS, AFFINE_GROUP_SIZES, affineRelativeError, dequantizeAffine, quantizeAffine } from '../src/mlx/affine.js';
import { runPython } from '../src/python.js';
import { Rng } from '../src/rng.js';
import { PY, tempDir } from './helpers/paths.js';

const SKIP = process.env.SWAN_SKIP_PYTHON === '1';
const DTYPES: FloatDType[] = ['F32', 'F16', 'BF16'];
const ROWS = 12;
const COLS = 512;

type Kind = 'normal' | 'heavy' | 'allneg' | 'constpos' | 'constneg' | 'zero' | 'tie' | 'tieneg' | 'q0tie';
const KINDS: Kind[] = ['normal', 'heavy', 'allneg', 'constpos', 'normal', 'constneg', 'zero', 'tie', 'heavy', 'tieneg', 'q0tie', 'normal'];

interface Case {
  name: string;
  dtype: FloatDType;
  bits: number;
  group: number;
  w: Float32Array; // values representable in dtype
  kinds: Kind[]; // per group
  offset: number;
}

const bytesPer = (dtype: FloatDType) => (dtype === 'F32' ? 4 : 2);

function representable(v: number, dtype: FloatDType): boolean {
  return roundToDType(Float32Array.of(v), dtype)[0] === Math.fround(v);
}

/**
 * Fill one group. Tie groups are built so that (w - bias) / scale is exactly k + 0.5:
 * wmin = 0, wmax = n·step (scale -step, bias wmax), or the mirror image (scale +step, bias wmin).
 */
function fillGroup(g: Float32Array, kind: Kind, bits: number, dtype: FloatDType, rng: Rng): void {
  const n = (1 << bits) - 1;
  const mag = 10 ** (rng.uniform() * 4 - 3); // 1e-3 .. 10
  const step = 2 ** -(2 + Math.floor(rng.uniform() * 8));
  switch (kind) {
    case 'normal':
      for (let i = 0; i < g.length; i++) g[i] = rng.normal() * mag;
      break;
    case 'heavy': // Student-t like tails plus an occasional outlier
      for (let i = 0; i < g.length; i++) {
        const u = Math.max(rng.uniform(), 1e-3);
        g[i] = (rng.normal() / Math.sqrt(u)) * mag * (rng.uniform() < 0.03 ? 40 : 1);
      }
      break;
    case 'allneg':
      // |wmax| >= |wmin|/4, so the CPU range [wmin, wmax] gives another step than Metal's [wmin, 0].
      for (let i = 0; i < g.length; i++) g[i] = -(1 + Math.min(Math.abs(rng.normal()), 3)) * mag;
      break;
    case 'constpos':
      g.fill(mag);
      break;
    case 'constneg':
      g.fill(-mag);
      break;
    case 'zero':
      g.fill(0);
      break;
    case 'tie':
    case 'tieneg': {
      const sign = kind === 'tie' ? 1 : -1;
      // tie: values n·step - (k + 0.5)·step; tieneg: -n·step + (k + 0.5)·step.
      g[0] = 0;
      g[1] = sign * n * step;
      g[2] = sign * 0.5 * step; // k = n - 1 (even): metal and cpu must differ here
      for (let i = 3; i < g.length; i++) {
        const k = Math.floor(rng.uniform() * n);
        const v = sign * (n - k - 0.5) * step;
        g[i] = representable(v, dtype) ? v : sign * (n - k) * step;
      }
      break;
    }
    case 'q0tie': {
      // s0 = -step, wmax / s0 = -(m + 0.5) with m = 2^(bits-1) even: metal q0 = -(m+1), cpu -m.
      const m = 1 << (bits - 1);
      const wmax = (m + 0.5) * step;
      const wmin = wmax - n * step;
      g[0] = wmax;
      g[1] = wmin;
      for (let i = 2; i < g.length; i++) g[i] = wmin + rng.uniform() * (wmax - wmin);
      break;
    }
  }
  roundToDType(g, dtype);
}

function makeCases(): Case[] {
  const cases: Case[] = [];
  let offset = 0;
  for (const dtype of DTYPES) {
    for (const bits of AFFINE_BITS) {
      for (const group of AFFINE_GROUP_SIZES) {
        const name = `${dtype}-b${bits}-g${group}`;
        const rng = Rng.forKey(1234, name);
        const w = new Float32Array(ROWS * COLS);
        const kinds: Kind[] = [];
        for (let gi = 0; gi < w.length / group; gi++) {
          const kind = KINDS[gi % KINDS.length]!;
          kinds.push(kind);
          fillGroup(w.subarray(gi * group, (gi + 1) * group), kind, bits, dtype, rng);
        }
        cases.push({ name, dtype, bits, group, w, kinds, offset });
        offset += w.length * bytesPer(dtype);
      }
    }
  }
  return cases;
}

/**
 * Independently of src/mlx/affine.ts: does this group contain an exact tie (at q0 or at a code)
 * under the CPU parameters, or is it all negative? Those are the only groups where the Metal and
 * CPU rules may give different bytes. float32 math by storing into a Float32Array.
 */
function metalMayDiffer(vals: Float32Array, bits: number): boolean {
  const f = new Float32Array(1);
  const f32 = (x: number) => ((f[0] = x), f[0]);
  let lo = vals[0]!;
  let hi = vals[0]!;
  for (const v of vals) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi < 0) return true;
  const isTie = (x: number) => Math.abs(x - Math.trunc(x)) === 0.5;
  const n = 2 ** bits - 1;
  let s0 = Math.max(f32(f32(hi - lo) / n), f32(1e-7));
  const useMin = Math.abs(lo) > Math.abs(hi);
  if (!useMin) s0 = -s0;
  const edge = useMin ? lo : hi;
  const r = f32(edge / s0);
  if (isTie(r)) return true;
  const q0 = Math.round(r);
  const scale = q0 === 0 ? s0 : f32(edge / q0);
  const bias = q0 === 0 ? 0 : edge;
  for (const v of vals) if (isTie(f32(f32(v - bias) / scale))) return true;
  return false;
}

interface MlxOut {
  wq: Uint32Array;
  scalesBits: Uint8Array;
  biasesBits: Uint8Array;
  deqBits: Uint8Array;
}

function slice(buf: Buffer, [start, len]: [number, number]): Uint8Array {
  return new Uint8Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + len));
}

/** The dtype's raw bits of each value (each value must be representable). */
function toBits(values: Float32Array, dtype: FloatDType): Uint8Array {
  const out = encodeFromF32(values, dtype);
  assert.deepEqual(decodeToF32(out, dtype), values, 'value not representable in dtype');
  return out;
}

describe('affine quantization vs real MLX (mx.quantize on the CPU)', { skip: SKIP ? 'SWAN_SKIP_PYTHON=1' : false }, () => {
  const cases = makeCases();
  const mlx = new Map<string, MlxOut>();
  let version = '';

  before(() => {
    const { dir, cleanup } = tempDir('swan-mlx-affine-');
    try {
      const input = Buffer.concat(cases.map((c) => encodeFromF32(c.w, c.dtype)));
      writeFileSync(join(dir, 'input.bin'), input);
      const spec = cases.map((c) => ({ name: c.name, dtype: c.dtype, rows: ROWS, cols: COLS, bits: c.bits, group: c.group, offset: c.offset }));
      writeFileSync(join(dir, 'cases.json'), JSON.stringify(spec));
      runPython(join(PY, 'mlx_quantize.py'), [dir], { timeoutMs: 120_000 });
      const meta = JSON.parse(readFileSync(join(dir, 'output.json'), 'utf8')) as {
        mlx: string;
        device: string;
        cases: { name: string; wq: [number, number]; scales: [number, number]; biases: [number, number]; deq: [number, number] }[];
      };
      version = `${meta.mlx} on ${meta.device}`;
      const out = readFileSync(join(dir, 'output.bin'));
      for (const m of meta.cases) {
        const wqBytes = slice(out, m.wq);
        mlx.set(m.name, {
          wq: new Uint32Array(wqBytes.buffer, 0, wqBytes.byteLength / 4),
          scalesBits: slice(out, m.scales),
          biasesBits: slice(out, m.biases),
          deqBits: slice(out, m.deq),
        });
      }
    } finally {
      cleanup();
    }
  });

  test('MLX ran every case on the CPU', () => {
    assert.match(version, /^0\.32\.4 on Device\(cpu/);
    assert.equal(mlx.size, cases.length);
  });

  test("rules 'cpu': wq, scales and biases are bit-identical to MLX for every dtype × bits × group", () => {
    for (const c of cases) {
      const ref = mlx.get(c.name)!;
      const q = quantizeAffine(c.w, ROWS, COLS, c.bits, c.group, 'cpu');
      assert.deepEqual(q.wq, ref.wq, `${c.name}: wq`);
      assert.deepEqual(encodeFromF32(q.scales, c.dtype), ref.scalesBits, `${c.name}: scales`);
      assert.deepEqual(encodeFromF32(q.biases, c.dtype), ref.biasesBits, `${c.name}: biases`);
    }
  });

  test("rules 'metal' (default): differs from the MLX CPU kernel only on tie or all-negative groups", () => {
    let differing = 0;
    let flagged = 0;
    const seen = new Set<Kind>();
    for (const c of cases) {
      const ref = mlx.get(c.name)!;
      const q = quantizeAffine(c.w, ROWS, COLS, c.bits, c.group);
      const sBits = encodeFromF32(q.scales, c.dtype);
      const bBits = encodeFromF32(q.biases, c.dtype);
      const wpg = (c.group * c.bits) / 32;
      const bpv = bytesPer(c.dtype);
      for (let gi = 0; gi < c.kinds.length; gi++) {
        const same =
          q.wq.subarray(gi * wpg, (gi + 1) * wpg).every((x, i) => x === ref.wq[gi * wpg + i]) &&
          sBits.subarray(gi * bpv, (gi + 1) * bpv).every((x, i) => x === ref.scalesBits[gi * bpv + i]) &&
          bBits.subarray(gi * bpv, (gi + 1) * bpv).every((x, i) => x === ref.biasesBits[gi * bpv + i]);
        const mayDiffer = metalMayDiffer(c.w.subarray(gi * c.group, (gi + 1) * c.group), c.bits);
        const kind = c.kinds[gi]!;
        const where = `${c.name} group ${gi} (${kind})`;
        if (mayDiffer) flagged++;
        if (!same) {
          differing++;
          seen.add(kind);
          assert.ok(mayDiffer, `${where}: differs but has no tie and is not all negative`);
        }
        // The planted groups must actually show the Metal behaviour.
        if (kind === 'allneg' || kind === 'constneg' || kind === 'tie' || kind === 'tieneg') {
          assert.ok(mayDiffer && !same, `${where}: expected a Metal/CPU difference`);
        }
        // (A q0 tie cannot be stored in bf16 at 8 bits: wmax = 257·step/2 needs 9 significant bits.)
        if (kind === 'q0tie' && !(c.dtype === 'BF16' && c.bits === 8)) {
          assert.ok(mayDiffer && !same, `${where}: expected a Metal/CPU difference at q0`);
        }
      }
    }
    for (const k of ['allneg', 'constneg', 'tie', 'tieneg', 'q0tie'] as Kind[]) assert.ok(seen.has(k), `no differing ${k} group`);
    assert.ok(differing > 0 && differing <= flagged);
  });

  test('dequantizeAffine matches mx.dequantize bit for bit in the dtype', () => {
    for (const c of cases) {
      const ref = mlx.get(c.name)!;
      const scales = decodeToF32(ref.scalesBits, c.dtype);
      const biases = decodeToF32(ref.biasesBits, c.dtype);
      const d = dequantizeAffine(ref.wq, scales, biases, ROWS, COLS, c.bits, c.group, c.dtype);
      assert.deepEqual(toBits(d, c.dtype), ref.deqBits, `${c.name}: dequantize`);
    }
  });

  test("affineRelativeError ('cpu') equals the error of MLX's own round trip", () => {
    for (const c of cases) {
      const deq = decodeToF32(mlx.get(c.name)!.deqBits, c.dtype);
      let num = 0;
      let den = 0;
      for (let i = 0; i < c.w.length; i++) {
        num += (c.w[i]! - deq[i]!) ** 2;
        den += c.w[i]! ** 2;
      }
      assert.equal(affineRelativeError(c.w, ROWS, COLS, c.bits, c.group, c.dtype, 'cpu'), num / den, c.name);
    }
  });
});
