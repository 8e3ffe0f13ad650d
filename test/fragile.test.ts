/**
 * Where quality falls off: a plan that stores the output head or a tied embedding below 4 bits is
 * flagged (src/plan/fragile.ts), the expected damage has a unit (× uniform 4-bit g64) and -v names
 * the tensors that carry most of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openModel } from '../src/arch/source.js';
import { fragileWarnings } from '../src/plan/fragile.js';
import { planUniform } from '../src/plan/uniform.js';
import { swan } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const WARNING = /^swan: warning: model\.embed_tokens\.weight is the tied embedding \(also the output head\) and the plan stores it at 3-bit g64, below 4 bits/m;

test('fragileWarnings: a tied embedding at 3-bit is flagged, at 4-bit it is not; an untied embedding is not', () => {
  const source = openModel(STORIES, {});
  assert.equal(source.tied, true);
  const items = source.entries.map(({ info, record }) => ({ record, shape: info.shape }));
  const at = (bits: number) => planUniform(items, source.dtype, { bits, groupSize: 64 });
  const three = fragileWarnings(at(3), true);
  assert.equal(three.length, 1);
  assert.match(three[0]!, /model\.embed_tokens\.weight is the tied embedding .* 3-bit g64, below 4 bits/);
  assert.deepEqual(fragileWarnings(at(4), true), []);
  assert.deepEqual(fragileWarnings(at(3), false), []);
});

test('swan quantize warns when the budget puts the tied embedding at 3-bit, and -v names the dominant tensors', () => {
  const tmp = tempDir();
  try {
    const low = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--target-bpw', '6.0', '--dry-run', '-v']);
    assert.equal(low.status, 0, low.stderr);
    assert.match(low.stdout, /model\.embed_tokens\.weight +512×64 +3-bit g64/, 'the plan has the embedding at 3-bit');
    assert.match(low.stderr, WARNING);
    const top = /tensors that dominate the expected damage:\n((?: {2}.*\n){3})/.exec(low.stdout);
    assert.ok(top, low.stdout);
    const shares = [...top[1]!.matchAll(/: ([\d.]+)% of the expected damage/g)].map((m) => Number(m[1]));
    assert.equal(shares.length, 3);
    assert.ok(shares[0]! >= shares[1]! && shares[1]! >= shares[2]! && shares[0]! > 0, shares.join(' '));
    // The damage figure has a unit: a multiple of uniform 4-bit g64's under the same model.
    assert.match(low.stdout, /expected damage [\d.]+× that of uniform 4-bit g64 \(mlx_lm\.convert -q, 226,400 bytes\)/);
    // Written: the card says it too, and the manifest records the yardstick of the damage figure.
    const written = swan(['quantize', STORIES, '-o', join(tmp.dir, 'w'), '--target-bpw', '6.0', '--quiet']);
    assert.match(written.stderr, WARNING);
    assert.match(readFileSync(join(tmp.dir, 'w', 'README.md'), 'utf8'), /## Warnings\n\n- model\.embed_tokens\.weight is the tied embedding/);
    const plan = JSON.parse(readFileSync(join(tmp.dir, 'w', 'swan-manifest.json'), 'utf8')).plan;
    assert.deepEqual([plan.target_from, plan.reference.format, plan.reference.bytes], ['user', '4-bit g64', 226400]);
    const high = swan(['quantize', STORIES, '-o', join(tmp.dir, 'x'), '--target-bpw', '7', '--dry-run']);
    assert.equal(high.status, 0, high.stderr);
    assert.doesNotMatch(high.stderr, /warning/);
  } finally {
    tmp.cleanup();
  }
});
