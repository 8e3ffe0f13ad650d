/**
 * Entries encoded on worker threads while the writer writes (src/pipeline/parallel-encode.ts): the
 * same bytes as in one thread for every rounding, the first refusal in write order, nothing left
 * behind; moving encoded bytes between threads never takes a buffer from its owner.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { closeBackend, installBestBackend } from '../src/kernels/select.js';
import { forTransfer, type EncodeTask, type EncodeTaskItem } from '../src/pipeline/parallel-encode.js';
import { WorkerPool } from '../src/pipeline/worker-pool.js';
import { analyzeToManifest, quantizeModel, type QuantizeOptions } from '../src/pipeline/quantize.js';
import { copyModel, poisonTensor } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-encode-');
after(() => {
  closeBackend();
  tmp.cleanup();
});

let runs = 0;
/** quantizeModel into `<fresh parent>/out`: its files by name, or the error's message. */
function quantized(dir: string, options: QuantizeOptions): { files?: Map<string, Buffer>; error?: string; out: string } {
  const parent = join(tmp.dir, `run-${runs++}`);
  mkdirSync(parent);
  const out = join(parent, 'out');
  try {
    quantizeModel(dir, out, options);
  } catch (e) {
    return { error: (e as Error).message, out };
  }
  return { files: new Map(readdirSync(out).sort().map((f) => [f, readFileSync(join(out, f))])), out };
}

/** stories260K's manifest (every measurement), written to a file to re-plan from without analysing. */
function storiesManifest(): string {
  const file = join(tmp.dir, 'stories-manifest.json');
  if (!existsSync(file)) writeFileSync(file, JSON.stringify(analyzeToManifest(STORIES).manifest));
  return file;
}

describe('parallel encode', () => {
  test('the same files with 1, 2 and 3 jobs: RTN, rounding search, an fp mode, re-planned from a manifest', () => {
    installBestBackend({ backend: 'auto', threads: 2 });
    try {
      const manifestFile = storiesManifest();
      const cases: [string, QuantizeOptions][] = [
        ['budget, search', { manifestFile, strategy: 'budget', target: { bpw: 6 } }],
        ['budget, rtn', { manifestFile, strategy: 'budget', target: { bpw: 6 }, rounding: 'rtn' }],
        ['uniform mxfp4', { strategy: 'uniform', mode: 'mxfp4' }],
      ];
      for (const [what, options] of cases) {
        const one = quantized(STORIES, { ...options, jobs: 1 });
        assert.equal(one.error, undefined, `${what}: ${one.error}`);
        for (const jobs of [2, 3]) {
          const many = quantized(STORIES, { ...options, jobs });
          assert.deepEqual([...many.files!.keys()], [...one.files!.keys()], `${what}, ${jobs} jobs: the same files`);
          for (const [name, bytes] of one.files!) {
            // The card names the output directory, the same here; every other file must match too.
            assert.ok(bytes.equals(many.files!.get(name)!), `${what}, ${jobs} jobs: ${name} differs`);
          }
        }
      }
    } finally {
      closeBackend();
    }
  });

  test('the first refusal in write order, as in one thread, and no output directory left', () => {
    installBestBackend({ backend: 'js' });
    try {
      const dir = copyModel(STORIES, join(tmp.dir, 'poisoned'));
      const poison = (name: string) => poisonTensor(join(dir, 'model.safetensors'), name, [Infinity]);
      // Written late and early: with 3 workers the later one is encoded before the earlier one is taken.
      poison('model.layers.4.mlp.down_proj.weight');
      poison('model.layers.1.self_attn.q_proj.weight');
      // From the clean model's manifest: nothing analyses the poisoned weights, the writer meets them.
      const options: QuantizeOptions = { manifestFile: storiesManifest(), strategy: 'budget', target: { bpw: 6 } };
      const one = quantized(dir, { ...options, jobs: 1 });
      assert.match(one.error ?? '', /model\.layers\.1\.self_attn\.q_proj\.weight has 1 ±Inf/);
      for (const jobs of [2, 3]) {
        const many = quantized(dir, { ...options, jobs });
        assert.equal(many.error, one.error, `${jobs} jobs`);
        assert.equal(existsSync(many.out), false, `${jobs} jobs: no output directory`);
      }
      const allowed = [1, 3].map((jobs) => quantized(dir, { ...options, jobs, allowNonFinite: true }));
      assert.ok(allowed[0]!.files && allowed[1]!.files, 'allowNonFinite writes');
      for (const [name, bytes] of allowed[0]!.files!) assert.ok(bytes.equals(allowed[1]!.files!.get(name)!), `allowNonFinite: ${name} differs`);
    } finally {
      closeBackend();
    }
  });

  test("a stage the workers cannot set up fails with the worker's error; a pool takes no new run before the last is taken", () => {
    installBestBackend({ backend: 'js' });
    const pool = new WorkerPool(2);
    try {
      const missing = join(tmp.dir, 'no-such-model');
      const items: EncodeTaskItem[] = [{ hfName: 'w', mlxName: 'w', shape: [1], format: { kind: 'float' } }];
      const run = pool.run('encode', { dir: missing, exec: { dtype: 'BF16', rules: 'metal', rounding: 'rtn', allow: false }, items } satisfies EncodeTask, 1);
      assert.throws(() => run.take(0), (e: Error) => e.message.includes('no-such-model'));
      assert.throws(() => pool.run('encode', {}, 1), /previous run did not take all its tasks/);
    } finally {
      pool.close();
      closeBackend();
    }
  });

  test('forTransfer moves whole buffers and copies views out of larger ones', () => {
    const whole = new Uint8Array([1, 2, 3]);
    const big = new ArrayBuffer(64);
    const view = new Uint8Array(big, 8, 4);
    view.set([9, 8, 7, 6]);
    const pooled = Buffer.from('pooled'); // a slice of Node's shared pool
    const { result, transfer } = forTransfer({ bytes: new Map([['a', whole], ['b', view], ['c', pooled]]) });
    assert.equal(result.bytes.get('a'), whole, 'a whole buffer is moved as it is');
    assert.deepEqual([...result.bytes.get('b')!], [9, 8, 7, 6]);
    assert.notEqual(result.bytes.get('b')!.buffer, big, 'a view is copied out');
    assert.equal(result.bytes.get('c')!.buffer.byteLength, 6, "a pooled Buffer is copied out, not the pool");
    assert.deepEqual(new Set(transfer), new Set([...result.bytes.values()].map((a) => a.buffer)));
  });
});
