/**
 * The library as the README shows it: the README's example runs as written (paths swapped for the
 * fixture), the stages connect without analysing twice, the async stages leave the event loop free,
 * and errors arrive as the exported classes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as swan from '../src/index.js';
import { REPO, STORIES, tempDir } from './helpers/paths.js';

test('the README library example runs', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## As a library'));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, 'the README has a js block under "As a library"');
  const tmp = tempDir();
  try {
    const out = join(tmp.dir, 'mlx');
    const script = code
      .replace(`from 'swan-quant'`, `from ${JSON.stringify(pathToFileURL(join(REPO, 'dist', 'src', 'index.js')).href)}`)
      .replaceAll(`'hf-dir'`, JSON.stringify(STORIES))
      .replaceAll(`'mlx-dir'`, JSON.stringify(out));
    const file = join(tmp.dir, 'example.mjs');
    writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8'));
    assert.equal(m.plan.strategy, 'budget');
    assert.equal(r.stdout.trim().split(' ')[0], String(m.summary.output_bytes));
    assert.ok(existsSync(join(out, 'model.safetensors')));
  } finally {
    tmp.cleanup();
  }
});

test('stages connect: planModel takes an analysis, quantizeModelAsync a plan, and nothing is analysed again', async () => {
  const tmp = tempDir();
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    let analysed = 0;
    const analysis = await swan.analyzeModelAsync(STORIES, { onTensor: () => analysed++ });
    clearInterval(timer);
    assert.equal(analysed, analysis.tensors.length);
    assert.ok(ticks >= 3, `the event loop ran while analysing (${ticks} ticks)`);
    const planned = swan.planModel(STORIES, { analysis });
    // The same plan as the CLI's default, which analyses by itself.
    const direct = swan.planModel(STORIES, {});
    assert.deepEqual(planned.plan.entries.map((e) => [e.hfName, e.format, e.bytes]), direct.plan.entries.map((e) => [e.hfName, e.format, e.bytes]));
    let again = 0;
    const r = await swan.quantizeModelAsync(STORIES, join(tmp.dir, 'out'), { planned, onAnalyze: () => again++ });
    assert.equal(again, 0, 'quantizing a plan does not analyse');
    assert.equal(r.bytes, swan.planTotals(planned.plan).bytes);
    assert.equal(r.source.hf.dir, planned.source.hf.dir);
    // The synchronous form takes the plan too.
    const s = swan.quantizeModel(STORIES, join(tmp.dir, 'sync'), { planned, onAnalyze: () => again++ });
    assert.equal(again, 0);
    assert.ok(readFileSync(join(tmp.dir, 'sync', 'model.safetensors')).equals(readFileSync(join(tmp.dir, 'out', 'model.safetensors'))));
    assert.equal(s.bytes, r.bytes);
  } finally {
    tmp.cleanup();
  }
});

test('errors arrive as the exported classes, from the worker too', async () => {
  const tmp = tempDir();
  try {
    await assert.rejects(swan.quantizeModelAsync(join(tmp.dir, 'no-model'), join(tmp.dir, 'out')), (e) => e instanceof swan.SwanError && /no-model/.test(e.message));
    const analysis = swan.analyzeModel(STORIES, { measureSearch: false });
    // Without the search's measurements the budget must be told to round to nearest.
    assert.throws(() => swan.planModel(STORIES, { analysis, target: { bpw: 1 }, rounding: 'rtn' }), (e) => e instanceof swan.BudgetError && e.name === 'BudgetError' && e.minBytes > 0);
    await assert.rejects(
      swan.quantizeModelAsync(STORIES, join(tmp.dir, 'o2'), { analysis, target: { bpw: 1 }, rounding: 'rtn' }),
      (e) => e instanceof swan.BudgetError && e.minBytes > 0,
    );
    assert.throws(() => swan.planModel(STORIES, { analysis }), (e) => e instanceof swan.SwanError && /rounding-search/.test(e.message));
    assert.equal(typeof swan.ConfigError, 'function');
  } finally {
    tmp.cleanup();
  }
});
