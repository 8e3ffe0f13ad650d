/** The package entry point exposes the stages as a library; each runs without the CLI. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as swan from '../src/index.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir();
after(() => tmp.cleanup());

test('analyze, plan and quantize as separate library calls', () => {
  const analysis = swan.analyzeModel(STORIES, { measureCandidates: false });
  assert.equal(analysis.tensors.length, 47);
  const { plan } = swan.planModel(STORIES, { strategy: 'uniform', bits: 4, groupSize: 64 });
  assert.equal(swan.planTotals(plan).bytes, 226400); // mlx_lm.convert's total_size for the same choices
  const r = swan.quantizeModel(STORIES, join(tmp.dir, 'out'), { strategy: 'thresholds' });
  assert.ok(existsSync(join(r.outDir, 'config.json')));
  assert.equal(r.bytes, swan.planTotals(r.plan).bytes);
});

test('writeMlxModel with a plan gives the same bytes as quantizeModel with the same options (one default for each option)', () => {
  for (const rounding of ['rtn', 'search'] as const) {
    const viaQuantize = swan.quantizeModel(STORIES, join(tmp.dir, `q-${rounding}`), { strategy: 'thresholds', rounding });
    // A library user who plans by hand and writes: the writer's defaults must be quantizeModel's.
    const source = swan.openModel(STORIES);
    const analysis = swan.analyzeModel(STORIES, { measureCandidates: false });
    const items = analysis.tensors.map((a) => ({ record: a.record, shape: a.shape, decision: swan.swanDecision(a, analysis.swan) }));
    const plan = swan.planThresholds(items, source.dtype, { groupSize: swan.DEFAULTS.groupSize, swan: analysis.swan });
    const dir = join(tmp.dir, `w-${rounding}`);
    mkdirSync(dir);
    swan.writeMlxModel(source, plan, dir, { rounding });
    for (const f of ['model.safetensors', 'config.json']) {
      assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(viaQuantize.outDir, f))), `${rounding}: ${f}`);
    }
  }
});

test('the writer defaults to norm-weighted search, as quantizeModel does; unweighted search gives other bytes', () => {
  const source = swan.openModel(STORIES);
  const { plan } = swan.planModel(STORIES, { strategy: 'uniform' });
  const write = (name: string, weighting?: swan.InputWeighting) => {
    const dir = join(tmp.dir, name);
    mkdirSync(dir);
    swan.writeMlxModel(source, plan, dir, { rounding: 'search', weighting });
    return readFileSync(join(dir, 'model.safetensors'));
  };
  assert.ok(write('w-default').equals(write('w-norm', 'norm')));
  assert.ok(!write('w-default2').equals(write('w-none', 'none')), 'the weighting must reach the writer');
});
