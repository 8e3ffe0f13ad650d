/**
 * `npm run bench -- --quick` runs and writes the report's tables, its machine facts among them. The
 * numbers are not asserted: it is a benchmark, not a timed test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, tempDir } from './helpers/paths.js';

test('bench --quick writes the per-shape, baseline, end-to-end, RSS and projection tables', { timeout: 600_000 }, () => {
  const tmp = tempDir('swan-bench-test-');
  try {
    const out = join(tmp.dir, 'perf.md');
    const r = spawnSync(process.execPath, [join(REPO, 'dist', 'bench', 'bench.js'), '--quick', '--out', out], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(r.status, 0, r.stderr);
    const doc = readFileSync(out, 'utf8');
    for (const heading of [
      '## Machine and load',
      '## swan, per tensor shape',
      '## Python baseline',
      '## End to end',
      '### Peak RSS against layer count',
      '## Projected Qwen3-8B',
    ]) {
      assert.ok(doc.includes(heading), `missing section ${heading}`);
    }
    // One row per shape, with a number in the total column.
    const shapeRows = doc.split('\n').filter((l) => /^\| \d+×\d+ .*\| \*\*[\d.]+\*\* \|/.test(l));
    assert.ok(shapeRows.length >= 5, `per-shape rows: ${shapeRows.length}\n${doc}`);
    // The machine and its load come from the run's records, not from fixed text.
    assert.match(doc, /^\| logical cores \| \d+ \|$/m);
    assert.match(doc, /^\| load average \(1\/5\/15 min\) at start \| ([\d.]+ [\d.]+ [\d.]+|n\/a) \|$/m);
    assert.match(doc, /\| \*\*total, `swan quantize` \(defaults\), f = 0\.25\*\* \| [\d.]+ \| \*\*\d+ /);
    assert.match(doc, /\| \*\*total, `swan quantize --all-metrics`\*\* \| [\d.]+ \| \*\*\d+ /);
    const rssRows = doc.split('\n').filter((l) => /^\| \d+ \| \d+ \| [\d.]+ \| \d+ \|$/.test(l));
    assert.equal(rssRows.length, 2, doc);
    // The baseline table is there unless Python is switched off.
    if (!process.env.SWAN_SKIP_PYTHON) assert.match(doc, /\*\*ratio baseline\/swan\*\*/);
  } finally {
    tmp.cleanup();
  }
});
