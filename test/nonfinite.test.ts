/**
 * Non-finite weights (docs/reliability.md): NaN, ±Inf and values beyond the target dtype's range
 * are refused with one line naming the tensor and the count, whichever stage reads the tensor first
 * (the analysis, the writer, or `swan analyze`); `--allow-nonfinite` writes the output and records
 * them in the manifest and the card.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { countNonFinite, decodeToF32, encodeFromF32, f32ToBf16, f32ToF16 } from '../src/io/float.js';
import { loadNativeAddon } from '../src/kernels/native-backend.js';
import { closeBackend, installBestBackend } from '../src/kernels/select.js';
import { copyModel, poisonTensor, swan } from './helpers/cli.js';
import { FIXTURES, STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-nonfinite-');
after(() => tmp.cleanup());

let n = 0;
/** A copy of `from` with `values` written at element `index` onward of tensor `name` (in its own dtype). */
function poisoned(name: string, values: number[], index = 5, from = STORIES): string {
  const dir = copyModel(from, join(tmp.dir, `m-${n++}`));
  poisonTensor(join(dir, 'model.safetensors'), name, values, index);
  return dir;
}

function run(args: string[]): { status: number | null; stderr: string; out: string } {
  const out = join(tmp.dir, `out-${n++}`);
  const r = swan([...args, '--quiet', '-o', args[0] === 'analyze' ? `${out}.json` : out]);
  return { status: r.status, stderr: r.stderr, out };
}

/** Refused with one line naming the tensor and the count; no output, no temporary sibling. */
function expectRefused(args: string[], problem: RegExp): void {
  const r = run(args);
  assert.notEqual(r.status, 0, `${args.join(' ')} should fail`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^swan: error: \S*model\.safetensors: tensor /);
  assert.match(lines[0]!, problem);
  assert.match(lines[0]!, /--allow-nonfinite/);
  assert.equal(existsSync(r.out), false, 'no output directory');
  assert.equal(existsSync(`${r.out}.json`), false, 'no manifest');
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.includes('swan-tmp')), [], 'no temporary sibling left');
}

const Q = 'model.layers.1.self_attn.q_proj.weight';

describe('non-finite weights are refused, naming the tensor and the count', () => {
  test('NaN in a scored tensor: the analysis refuses it; uniform (no analysis) and swan analyze too', () => {
    const dir = poisoned(Q, [NaN]);
    const problem = /tensor model\.layers\.1\.self_attn\.q_proj\.weight has 1 NaN \(of 4,096 values\)/;
    expectRefused(['quantize', dir], problem);
    expectRefused(['quantize', dir, '--uniform'], problem);
    expectRefused(['quantize', dir, '--target-bpw', '6.5'], problem);
    expectRefused(['analyze', dir], problem);
  });

  test('Inf in a tensor the analysis does not read (a norm): the writer refuses it, before the output is in place', () => {
    const dir = poisoned('model.norm.weight', [Infinity, -Infinity], 3);
    const problem = /tensor model\.norm\.weight has 2 ±Inf \(of 64 values\)/;
    expectRefused(['quantize', dir], problem);
    expectRefused(['quantize', dir, '--uniform'], problem);
    expectRefused(['analyze', dir], problem);
  });

  test('NaN and Inf in the (protected, unscored) embedding', () => {
    const dir = poisoned('model.embed_tokens.weight', [NaN, NaN, Infinity], 100);
    expectRefused(['quantize', dir], /tensor model\.embed_tokens\.weight has 2 NaN and 1 ±Inf \(of 32,768 values\)/);
  });

  test('an F32 value beyond float16/bfloat16 range is refused when written in that dtype, kept in float32', () => {
    const f32 = join(FIXTURES, 'stories260K-f32');
    const dir = poisoned(Q, [70000, -65520], 7, f32);
    expectRefused(['quantize', dir, '--dtype', 'float16'], /tensor model\.layers\.1\.self_attn\.q_proj\.weight has 2 values beyond float16's range \(max 65504/);
    expectRefused(['quantize', dir, '--dtype', 'float16', '--uniform'], /has 2 values beyond float16's range/);
    expectRefused(['analyze', dir, '--dtype', 'float16'], /has 2 values beyond float16's range/);
    const ok = run(['quantize', dir, '--uniform']);
    assert.equal(ok.status, 0, ok.stderr);
    // 65504 is float16's max: it stays finite.
    const edge = poisoned('model.norm.weight', [65504, -65519], 0, f32);
    const r = run(['quantize', edge, '--dtype', 'float16', '--uniform']);
    assert.equal(r.status, 0, r.stderr);

    const big = poisoned('model.norm.weight', [3.4e38], 0, f32);
    expectRefused(['quantize', big, '--dtype', 'bfloat16', '--uniform'], /tensor model\.norm\.weight has 1 value beyond bfloat16's range \(max 3\.3895e38/);
    assert.equal(run(['quantize', big, '--uniform']).status, 0);
  });
});

describe('--allow-nonfinite', () => {
  test('writes the output and records the counts in the manifest, the card and a warning', () => {
    const dir = poisoned(Q, [NaN]);
    const norm = poisoned('model.norm.weight', [Infinity], 0, dir);
    for (const extra of [['--strategy', 'thresholds'], ['--target-bpw', '6.5']]) {
      const r = run(['quantize', norm, '--allow-nonfinite', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /^swan: warning: kept non-finite values \(--allow-nonfinite\) in 2 tensors: .*model\.layers\.1\.self_attn\.q_proj\.weight \(1 NaN\)/m);
      const m = JSON.parse(readFileSync(join(r.out, 'swan-manifest.json'), 'utf8'));
      const tensors = m.shards['model.safetensors'].tensors;
      assert.deepEqual(tensors[Q].nonfinite, { nan: 1, inf: 0, overflow: 0 });
      // Not read by the thresholds analysis: counted by the writer.
      assert.deepEqual(tensors['model.norm.weight'].nonfinite, { nan: 0, inf: 1, overflow: 0 });
      assert.equal(tensors['model.layers.0.self_attn.q_proj.weight'].nonfinite, undefined);
      assert.deepEqual(m.summary.nonfinite, { nan: 1, inf: 1, overflow: 0, tensors: 2 });
      const card = readFileSync(join(r.out, 'README.md'), 'utf8');
      assert.match(card, /## Non-finite weights/);
      assert.match(card, /\| `model\.layers\.1\.self_attn\.q_proj\.weight` \| 1 NaN \|/);
      assert.match(card, /\| `model\.norm\.weight` \| 1 ±Inf \|/);
    }
  });

  test('uniform: the card records them (there is no manifest)', () => {
    const dir = poisoned(Q, [-Infinity]);
    const r = run(['quantize', dir, '--uniform', '--allow-nonfinite']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(readFileSync(join(r.out, 'README.md'), 'utf8'), /\| `model\.layers\.1\.self_attn\.q_proj\.weight` \| 1 ±Inf \|/);
  });

  test('swan analyze records tensors it does not score, and overflow in the target dtype', () => {
    const dir = poisoned('model.layers.0.input_layernorm.weight', [1e6], 0, join(FIXTURES, 'stories260K-f32'));
    const r = run(['analyze', dir, '--dtype', 'float16', '--allow-nonfinite']);
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(`${r.out}.json`, 'utf8'));
    assert.deepEqual(m.shards['model.safetensors'].tensors['model.layers.0.input_layernorm.weight'].nonfinite, { nan: 0, inf: 0, overflow: 1 });
    assert.deepEqual(m.summary.nonfinite, { nan: 0, inf: 0, overflow: 1, tensors: 1 });
  });

  test('clean models: no nonfinite field, no card section, no warning', () => {
    const r = run(['quantize', STORIES]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const m = JSON.parse(readFileSync(join(r.out, 'swan-manifest.json'), 'utf8'));
    assert.equal(m.summary.nonfinite, undefined);
    assert.doesNotMatch(readFileSync(join(r.out, 'README.md'), 'utf8'), /Non-finite/);
  });
});

describe('counting (io/float.ts)', () => {
  test('overflow is exactly "becomes ±Inf when cast with round-to-nearest-even"', () => {
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    // Every f32 bit pattern around each dtype's overflow edge, and the edges of NaN/Inf.
    const patterns: number[] = [];
    for (const edge of [0x477ff000, 0x7f7f8000, 0x7f800000]) for (let d = -300; d <= 300; d++) patterns.push(edge + d, (edge + d) | 0x80000000);
    for (const target of ['F16', 'BF16', 'F32'] as const) {
      for (const p of patterns) {
        u[0] = p >>> 0;
        const x = f[0]!;
        const c = countNonFinite(new Uint8Array(u.slice().buffer), 'F32', target);
        const bits = target === 'F16' ? f32ToF16(x) : target === 'BF16' ? f32ToBf16(x) : 0;
        const castInf = target === 'F16' ? (bits & 0x7fff) === 0x7c00 : target === 'BF16' ? (bits & 0x7fff) === 0x7f80 : x === Infinity || x === -Infinity;
        assert.equal(c.nan, Number.isNaN(x) ? 1 : 0, `${target} ${p.toString(16)}`);
        assert.equal(c.inf + c.overflow, castInf ? 1 : 0, `${target} ${p.toString(16)} (${x})`);
        assert.equal(c.inf, x === Infinity || x === -Infinity ? 1 : 0);
      }
    }
  });

  test('16-bit sources: the decode counts what the raw count counts, and decodes the same values', () => {
    for (const dtype of ['BF16', 'F16'] as const) {
      const all = new Uint16Array(65536).map((_, i) => i);
      const bytes = new Uint8Array(all.buffer);
      for (const target of ['F16', 'BF16', 'F32'] as const) {
        const counts = { nan: 0, inf: 0, overflow: 0 };
        const checked = decodeToF32(bytes, dtype, undefined, { target, counts });
        assert.deepEqual(checked, decodeToF32(bytes, dtype));
        assert.deepEqual(counts, countNonFinite(bytes, dtype, target));
        const values = [...checked];
        const nan = values.filter(Number.isNaN).length;
        const inf = values.filter((v) => v === Infinity || v === -Infinity).length;
        const over = target === 'F16' && dtype === 'BF16' ? values.filter((v) => Number.isFinite(v) && (f32ToF16(v) & 0x7fff) === 0x7c00).length : 0;
        assert.deepEqual(counts, { nan, inf, overflow: over }, `${dtype} → ${target}`);
      }
    }
  });

  // The TypeScript loops, and the native backend's conversions where the addon is built (installed with it).
  const decoders = ['TypeScript', ...('addon' in loadNativeAddon() ? ['native'] : [])];
  for (const decoder of decoders) {
    test(`BF16 encode (${decoder}): round to nearest even, NaN quieted, for every upper half with low halves at and around the ties`, () => {
      if (decoder === 'native') installBestBackend({ backend: 'native', threads: 1 });
      try {
        const lows = [0, 1, 0x7fff, 0x8000, 0x8001, 0xffff];
        const bits = new Uint32Array(65536 * lows.length + 3); // + 3: not a multiple of 8
        for (let h = 0; h < 65536; h++) lows.forEach((l, k) => (bits[h * lows.length + k] = ((h << 16) | l) >>> 0));
        const got = new Uint16Array(encodeFromF32(new Float32Array(bits.buffer), 'BF16').slice().buffer);
        for (let i = 0; i < bits.length; i++) {
          const x = bits[i]!, upper = x >>> 16, lower = x & 0xffff;
          const nan = (x & 0x7fffffff) > 0x7f800000;
          const want = nan ? upper | 0x40 : (upper + (lower > 0x8000 || (lower === 0x8000 && upper & 1) ? 1 : 0)) & 0xffff;
          assert.equal(got[i], want, `0x${x.toString(16)}`);
        }
      } finally {
        closeBackend();
      }
    });

    test(`BF16 decode (${decoder}): every bit pattern is its f32 with 16 zero bits below, at 4-aligned, 2-aligned and odd offsets and odd lengths, counted for each target`, () => {
      if (decoder === 'native') installBestBackend({ backend: 'native', threads: 1 });
      try {
        const all = new Uint16Array(65536 + 4).map((_, i) => (i * 40503) & 0xffff); // every pattern, shuffled
        for (const [offset, n] of [[0, 65536], [2, 65535], [1, 65535], [4, 65533]] as const) {
          const raw = new Uint8Array(all.buffer).slice(); // a copy, so that odd offsets are really unaligned
          const bytes = raw.subarray(offset, offset + n * 2);
          for (const target of ['F16', 'BF16', 'F32', undefined] as const) {
            const counts = { nan: 0, inf: 0, overflow: 0 };
            const got = new Uint32Array(decodeToF32(bytes, 'BF16', undefined, target && { target, counts }).buffer);
            const expected = { nan: 0, inf: 0, overflow: 0 };
            for (let i = 0; i < n; i++) {
              const b = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
              assert.equal(got[i], (b << 16) >>> 0, `offset ${offset}, value ${i}`);
              const m = b & 0x7fff;
              if (!target) continue;
              if (m > 0x7f80) expected.nan++;
              else if (m === 0x7f80) expected.inf++;
              else if (target === 'F16' && m >= 0x4780) expected.overflow++; // 65520 and up round to ±Inf in float16
            }
            assert.deepEqual(counts, expected, `offset ${offset}, ${n} values, target ${target}`);
          }
        }
      } finally {
        closeBackend();
      }
    });
  }
});
