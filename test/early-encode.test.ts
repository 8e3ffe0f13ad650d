/**
 * Tensors encoded in their analysis (src/pipeline/early-encode.ts, `--strategy thresholds`): the
 * same files as when the writer reads and encodes every tensor itself, the same non-finite counts;
 * the writer ignores early bytes of another format or made another way.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { closeBackend, installBestBackend } from '../src/kernels/select.js';
import { sameFormat } from '../src/format.js';
import { encodeEntry } from '../src/pipeline/encode-tensor.js';
import type { EarlyEncoded } from '../src/pipeline/early-encode.js';
import { analyzeModelJobs } from '../src/pipeline/parallel-analysis.js';
import { DEFAULT_SWAN_CONFIG } from '../src/plan/swan-rules.js';
import { MANIFEST_FILE, planModel, quantizeModel, type QuantizeOptions } from '../src/pipeline/quantize.js';
import { writeMlxModel } from '../src/pipeline/write-mlx.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import { copyModel, poisonTensor, writeTensorBytes } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-early-');
after(() => {
  closeBackend();
  tmp.cleanup();
});

let runs = 0;
function fresh(): string {
  const parent = join(tmp.dir, `run-${runs++}`);
  mkdirSync(parent);
  return join(parent, 'out');
}

/** The model's files (weights, index, config): what must not depend on how the bytes were made. */
function modelFiles(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).filter((f) => f.endsWith('.safetensors') || f === 'config.json' || f.endsWith('.index.json')).sort().map((f) => [f, readFileSync(join(dir, f))]));
}

function assertSame(a: Map<string, Buffer>, b: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...b.keys()], [...a.keys()], what);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${what}: ${name} differs`);
}

describe('early encode', () => {
  test('thresholds: the same model files as re-planned from its manifest (every tensor read by the writer), for 1 and 2 jobs, with non-finite values let through', () => {
    installBestBackend({ backend: 'auto', threads: 2 });
    try {
      const poisoned = copyModel(STORIES, join(tmp.dir, 'poisoned'));
      poisonTensor(join(poisoned, 'model.safetensors'), 'model.layers.2.mlp.up_proj.weight', [NaN, Infinity], 7);
      // A signalling BF16 NaN (0x7f81) in the embedding, which thresholds keeps in BF16: its payload
      // does not survive a float32 round trip, so the writer must copy it from the source.
      const signalling = copyModel(STORIES, join(tmp.dir, 'signalling'));
      writeTensorBytes(join(signalling, 'model.safetensors'), 'model.embed_tokens.weight', Uint8Array.of(0x81, 0x7f), 2 * 5);
      const cases: [string, string, QuantizeOptions][] = [
        ['stories260K, thresholds', STORIES, { strategy: 'thresholds' }],
        ['stories260K, thresholds, every metric, cpu rules', STORIES, { strategy: 'thresholds', skipDecided: false, rules: 'cpu' }],
        ['poisoned, thresholds, --allow-non-finite', poisoned, { strategy: 'thresholds', allowNonFinite: true }],
        ['signalling NaN kept in BF16, every metric', signalling, { strategy: 'thresholds', allowNonFinite: true, skipDecided: false, scoreProtected: true }],
      ];
      for (const [what, dir, options] of cases) {
        for (const jobs of [1, 2]) {
          const out = fresh();
          const early = quantizeModel(dir, out, { ...options, jobs });
          const out2 = fresh();
          const late = quantizeModel(dir, out2, { ...options, jobs, manifestFile: join(out, MANIFEST_FILE) });
          assertSame(modelFiles(out), modelFiles(out2), `${what}, ${jobs} jobs`);
          assert.deepEqual([...early.nonfinite], [...late.nonfinite], `${what}, ${jobs} jobs: non-finite counts`);
          if (dir === signalling) {
            const emb = readSafetensorsHeader(join(out, 'model.safetensors')).tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
            assert.deepEqual([...readFileSync(join(out, 'model.safetensors')).subarray(emb.offset + 10, emb.offset + 12)], [0x81, 0x7f], 'the payload as in the source');
          }
        }
      }
    } finally {
      closeBackend();
    }
  });

  test('analysing with an early spec encodes every quantized entry of the thresholds plan (and float ones it read), as the writer would, on 1 and 2 jobs', () => {
    installBestBackend({ backend: 'auto', threads: 2 });
    try {
      const { source, plan } = planModel(STORIES, { strategy: 'thresholds' });
      const exec = { dtype: plan.dtype, rules: 'metal' as const, rounding: 'rtn' as const, allow: false };
      const spec = { exec, thresholds: { groupSize: 64, swan: DEFAULT_SWAN_CONFIG } };
      const quantized = plan.entries.filter((e) => e.format.kind !== 'float' && e.record.mlxName !== null);
      assert.ok(quantized.length > 10, 'stories260K has quantized entries');
      for (const jobs of [1, 2]) {
        const got = new Map<string, EarlyEncoded>();
        analyzeModelJobs(STORIES, {}, jobs, undefined, { spec, onEncoded: (name, e) => got.set(name, e) });
        for (const e of quantized) assert.ok(got.has(e.hfName), `${jobs} jobs: ${e.hfName} encoded early`);
        const early = plan.entries.filter((e) => got.has(e.hfName));
        assert.ok(early.some((e) => e.format.kind === 'float'), 'float entries the analysis read come early too');
        for (const e of early) {
          const info = source.entries.find((x) => x.info.name === e.hfName)!.info;
          const expected = encodeEntry(info, { mlxName: e.record.mlxName!, shape: e.shape, format: e.format }, exec);
          const early = got.get(e.hfName)!;
          assert.ok(sameFormat(early.format, e.format), `${e.hfName}: the plan's format`);
          assert.deepEqual([...early.encoded.bytes.keys()], [...expected.bytes.keys()]);
          for (const [name, bytes] of expected.bytes) assert.ok(Buffer.from(bytes).equals(Buffer.from(early.encoded.bytes.get(name)!)), `${name}: encodeEntry's bytes`);
        }
      }
    } finally {
      closeBackend();
    }
  });

  test('the writer takes early bytes of the plan format made the same way, and ignores others', () => {
    installBestBackend({ backend: 'js' });
    try {
      const { source, plan } = planModel(STORIES, { strategy: 'thresholds' });
      const reference = fresh();
      mkdirSync(reference);
      writeMlxModel(source, plan, reference, {});
      const quantized = plan.entries.find((e) => e.format.kind === 'affine' && e.format.bits === 4)!;
      const junk = (format: EarlyEncoded['format']): EarlyEncoded => ({ format, encoded: { bytes: new Map([[quantized.record.mlxName!, new Uint8Array(4)]]) } });
      const exec = { dtype: plan.dtype, rules: 'metal' as const, rounding: 'rtn' as const, allow: false };
      const attempts = [
        { exec, byName: new Map([[quantized.hfName, junk({ kind: 'affine', bits: 8, groupSize: 64 })]]) },
        { exec: { ...exec, rules: 'cpu' as const }, byName: new Map([[quantized.hfName, junk(quantized.format)]]) },
      ];
      for (const early of attempts) {
        const out = fresh();
        mkdirSync(out);
        writeMlxModel(source, plan, out, { early });
        assertSame(modelFiles(reference), modelFiles(out), `early ${JSON.stringify(early.exec)}`);
      }
      // The right format and exec: the early bytes are what is written (one byte changed shows it).
      const info = source.entries.find((x) => x.info.name === quantized.hfName)!.info;
      const real = encodeEntry(info, { mlxName: quantized.record.mlxName!, shape: quantized.shape, format: quantized.format }, exec);
      const marked = new Uint8Array(real.bytes.get(quantized.record.mlxName!)!);
      marked[0] ^= 0xff;
      const out = fresh();
      mkdirSync(out);
      writeMlxModel(source, plan, out, { early: { exec, byName: new Map([[quantized.hfName, { format: quantized.format, encoded: { bytes: new Map([...real.bytes, [quantized.record.mlxName!, marked]]) } }]]) } });
      const a = readFileSync(join(reference, 'model.safetensors'));
      const b = readFileSync(join(out, 'model.safetensors'));
      const differing = [...a.keys()].filter((i) => a[i] !== b[i]);
      assert.equal(differing.length, 1, 'exactly the marked byte differs');
    } finally {
      closeBackend();
    }
  });
});
