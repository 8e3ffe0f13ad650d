/** The package entry point exposes the stages as a library; each runs without the CLI. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
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
