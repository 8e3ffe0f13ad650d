/**
 * The manifest's summary tells what was written: every figure is recomputed here from the output's
 * safetensors files and config.json alone (the header's offsets, the packed shapes and the bits
 * config.json gives each layer), and, with Python, from mlx-lm's own compute_bits_per_weight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, readSync, closeSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runPython } from '../src/python.js';
import { swan } from './helpers/cli.js';
import { PY, STORIES, tempDir } from './helpers/paths.js';

const skipPython = process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON is set' : false;

/** The JSON header of a safetensors file, read with nothing but the format's definition. */
function header(file: string): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE());
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    const h = JSON.parse(json.toString('utf8'));
    delete h.__metadata__;
    return h;
  } finally {
    closeSync(fd);
  }
}

const FLOAT_BITS: Record<string, number> = { BF16: 16, F16: 16, F32: 32 };

/** bytes, parameters as mlx-lm counts them (a packed weight counts its unpacked values), nominal bits per parameter. */
function writtenFigures(dir: string) {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const q = config.quantization as Record<string, any>;
  const tensors = Object.assign({}, ...readdirSync(dir).filter((f) => f.endsWith('.safetensors')).map((f) => header(join(dir, f))));
  let bytes = 0;
  let params = 0;
  const byBits = new Map<number, number>();
  for (const [name, t] of Object.entries<any>(tensors)) {
    bytes += t.data_offsets[1] - t.data_offsets[0];
    const module = name.replace(/\.(weight|scales|biases)$/, '');
    const quantized = `${module}.scales` in tensors;
    if (quantized && !name.endsWith('.weight')) continue; // scales and biases are bytes, not parameters
    const numel = t.shape.reduce((a: number, b: number) => a * b, 1);
    const bits = quantized ? (q[module]?.bits ?? q.bits) : FLOAT_BITS[t.dtype]!;
    const n = quantized ? (numel * 32) / bits : numel;
    params += n;
    byBits.set(bits, (byBits.get(bits) ?? 0) + n);
  }
  const nominal = [...byBits].reduce((s, [b, n]) => s + b * n, 0) / params;
  return { bytes, params, byBits, nominal, bpw: (8 * bytes) / params };
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

for (const args of [[], ['--target-bpw', '6.5'], ['--strategy', 'thresholds']]) {
  test(`manifest summary = the written output's figures (quantize ${args.join(' ') || 'with the defaults'})`, () => {
    const tmp = tempDir();
    try {
      const out = join(tmp.dir, 'out');
      const r = swan(['quantize', STORIES, '-o', out, '--quiet', ...args]);
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8')).summary;
      const w = writtenFigures(out);
      assert.equal(s.output_bytes, w.bytes);
      assert.equal(JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')).metadata.total_size, w.bytes);
      assert.equal(s.output_params, w.params);
      assert.equal(s.true_bpw, round(w.bpw, 4));
      assert.equal(s.average_bits, round(w.nominal, 4));
      assert.equal(s.nominal_average_bits, round(w.nominal, 4));
      assert.equal(s.estimated_size_gb, round(w.bytes / 1e9, 4));
      assert.deepEqual(
        Object.fromEntries(Object.entries<any>(s.bits_distribution).map(([b, v]) => [b, v.params])),
        Object.fromEntries([...w.byBits].map(([b, n]) => [String(b), n])),
      );
      // The card states the same figures and what the target counts.
      const card = readFileSync(join(out, 'README.md'), 'utf8');
      assert.ok(card.includes(w.bytes.toLocaleString('en-US')), 'card states the written bytes');
      assert.ok(card.includes(w.bpw.toFixed(3)), 'card states the true bpw');
    } finally {
      tmp.cleanup();
    }
  });
}

test('mlx-lm counts the same bits per weight as the manifest', { skip: skipPython }, () => {
  const tmp = tempDir();
  try {
    const out = join(tmp.dir, 'out');
    const r = swan(['quantize', STORIES, '-o', out, '--quiet', '--target-bpw', '6.5']);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8')).summary;
    const mlx = JSON.parse(runPython(join(PY, 'bits_per_weight.py'), [out]));
    assert.equal(s.true_bpw, round(mlx.bpw, 4));
    assert.equal(s.output_bytes, mlx.bytes);
  } finally {
    tmp.cleanup();
  }
});
