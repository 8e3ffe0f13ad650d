/**
 * Several tensors analysed at once (src/pipeline/parallel-analysis.ts): the same analysis, the same
 * manifest and the same output bytes as one tensor at a time, for any number of jobs and backend
 * threads; progress and the first refusal in model order.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { analyzeModel, type ModelAnalysis } from '../src/measure/analyze.js';
import { closeBackend, installBestBackend } from '../src/kernels/select.js';
import { loadNativeAddon } from '../src/kernels/native-backend.js';
import { analyzeModelJobs, analyzeModelParallel } from '../src/pipeline/parallel-analysis.js';
import { MIN_PARALLEL_WEIGHTS, workerBackend, WorkerPool, workerJobs } from '../src/pipeline/worker-pool.js';
import { MANIFEST_FILE, quantizeModel, type QuantizeOptions } from '../src/pipeline/quantize.js';
import { writeSynthCheckpoint, type SynthShape } from '../src/synth/checkpoint.js';
import { copyModel, poisonTensor } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-parallel-');
after(() => {
  closeBackend();
  tmp.cleanup();
});

/** Six layers of small Llama shapes: enough entries that three workers take turns. */
const SYNTH: SynthShape = { modelType: 'llama', hidden: 64, intermediate: 192, layers: 6, heads: 4, kvHeads: 2, headDim: 16, vocab: 512, tied: false };
const synthDir = join(tmp.dir, 'synth');
writeSynthCheckpoint(synthDir, SYNTH, { seed: 11 });

/** Every file of a directory, by name. */
function files(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))]));
}

let runs = 0;
/** quantizeModel into a directory named `out` (the card names it) of its own. */
function quantized(dir: string, options: QuantizeOptions): Map<string, Buffer> {
  const parent = join(tmp.dir, `run-${runs++}`);
  mkdirSync(parent);
  const out = join(parent, 'out');
  quantizeModel(dir, out, options);
  return files(out);
}

function assertSameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...b.keys()], [...a.keys()], `${what}: the same files`);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${what}: ${name} differs`);
}

/** An analysis without its timings and source: what must not depend on the jobs. */
function evidence(a: ModelAnalysis): unknown {
  return {
    seed: a.seed,
    swan: a.swan,
    measure: a.measure,
    nonfinite: [...a.nonfinite],
    tensors: a.tensors.map(({ seconds: _s, ...t }) => t),
  };
}

const backends: [string, () => void][] = [['js', () => installBestBackend({ backend: 'js' })]];
if ('addon' in loadNativeAddon()) {
  backends.push(['native ×2 threads', () => installBestBackend({ backend: 'native', threads: 2 })]);
}

describe('parallel analysis', () => {
  test('jobs: 2 by default within the backend threads, 1 with one thread or a toy model, never more than the entries', () => {
    const big = { entries: 100, weights: MIN_PARALLEL_WEIGHTS };
    installBestBackend({ backend: 'js' });
    assert.equal(workerJobs(undefined, big) <= 2, true);
    assert.equal(workerJobs(5, { entries: 3, weights: 1 }), 3);
    assert.equal(workerJobs(undefined, { entries: 100, weights: MIN_PARALLEL_WEIGHTS - 1 }), 1);
    assert.equal(workerJobs(2, { entries: 100, weights: 1 }), 2);
    // Each worker's backend gets its share of the threads, at least one.
    assert.deepEqual(workerBackend({ backend: 'native', threads: 2 }, 2), { backend: 'native', threads: 1 });
    assert.deepEqual(workerBackend({ backend: 'wasm', threads: 5 }, 2), { backend: 'wasm', threads: 2 });
    assert.deepEqual(workerBackend({ backend: 'native', threads: 1 }, 3), { backend: 'native', threads: 1 });
    assert.deepEqual(workerBackend({ backend: 'js' }, 2), { backend: 'js' });
    if ('addon' in loadNativeAddon()) {
      installBestBackend({ backend: 'native', threads: 1 });
      assert.equal(workerJobs(undefined, big), 1);
      installBestBackend({ backend: 'native', threads: 4 });
      assert.equal(workerJobs(undefined, big), 2);
    }
    closeBackend();
  });

  for (const [label, install] of backends) {
    test(`${label}: the worker threads' analysis equals this thread's (stories260K, synthetic 6 layers; every metric, candidates, search; one pool for both)`, () => {
      install();
      const pool = new WorkerPool(3);
      try {
        for (const dir of [STORIES, synthDir]) {
          const opts = { scoreProtected: true, measureSearch: true };
          const one = analyzeModel(dir, opts);
          const order: string[] = [];
          const many = analyzeModelParallel(dir, { ...opts, onTensor: (done, total, a) => order.push(`${done}/${total} ${a.name}`) }, pool);
          assert.deepEqual(evidence(many), evidence(one), `${dir}, 3 jobs`);
          assert.deepEqual(order, one.tensors.map((a, i) => `${i + 1}/${one.tensors.length} ${a.name}`), 'progress in model order');
          assert.ok(many.tensors.every((a, i) => a.record === many.source.entries[i]!.record), "records of this thread's source");
        }
        // The analysis hands its entries out largest first (an order); an order goes with no window only.
        assert.throws(() => pool.run('analyze', {}, 3, 2, [2, 1, 0]), /an order needs every task and no window/);
        assert.throws(() => pool.run('analyze', {}, 3, undefined, [1, 0]), /an order needs every task and no window/);
      } finally {
        pool.close();
        closeBackend();
      }
    });
  }

  test('the same output bytes and manifest with 1 and 2 jobs (stories260K default budget, thresholds with every metric; synthetic)', () => {
    installBestBackend({ backend: 'auto', threads: 2 });
    try {
      const cases: [string, string, QuantizeOptions][] = [
        ['stories260K, default', STORIES, {}],
        ['stories260K, thresholds --all-metrics --score-protected', STORIES, { strategy: 'thresholds', skipDecided: false, scoreProtected: true }],
        ['synthetic 6 layers, default', synthDir, {}],
        ['synthetic 6 layers, thresholds (skipping decided)', synthDir, { strategy: 'thresholds' }],
      ];
      for (const [what, dir, options] of cases) {
        const one = quantized(dir, { ...options, jobs: 1 });
        assert.ok(one.has(MANIFEST_FILE), `${what}: a manifest is written`);
        for (const jobs of [2]) assertSameFiles(one, quantized(dir, { ...options, jobs }), `${what}, ${jobs} jobs`);
      }
    } finally {
      closeBackend();
    }
  });

  test('the first refusal in model order, as in one thread, though a later tensor is analysed first', () => {
    installBestBackend({ backend: 'js' });
    try {
      const dir = copyModel(STORIES, join(tmp.dir, 'poisoned'));
      const poison = (name: string) => poisonTensor(join(dir, 'model.safetensors'), name, [NaN]);
      poison('model.layers.1.self_attn.q_proj.weight');
      poison('model.layers.4.mlp.down_proj.weight');
      const message = (f: () => unknown): string => {
        try {
          f();
        } catch (e) {
          return (e as Error).message;
        }
        return 'no error';
      };
      const one = message(() => analyzeModel(dir, {}));
      assert.match(one, /model\.layers\.1\.self_attn\.q_proj\.weight has 1 NaN/);
      assert.equal(message(() => analyzeModelJobs(dir, {}, 3)), one);
    } finally {
      closeBackend();
    }
  });
});
