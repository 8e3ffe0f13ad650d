/** The seeded generator (src/rng.ts): the bulk fills draw exactly the values of the one-at-a-time calls. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../src/rng.js';

describe('Rng', () => {
  test('fillNormal = normal() in a loop, whatever the length and a pending spare; the stream goes on in step', () => {
    for (const [n, before] of [[0, 1], [1, 0], [2, 1], [7, 0], [16385, 1], [100_000, 3], [20_000, 0]] as const) {
      const a = new Rng(42);
      const b = new Rng(42);
      for (let j = 0; j < before; j++) assert.equal(b.normal(), a.normal());
      const one = new Float32Array(n);
      for (let i = 0; i < n; i++) one[i] = a.normal() * 0.5;
      const bulk = b.fillNormal(new Float32Array(n), 0.5);
      assert.deepEqual(bulk, one, `n = ${n}`);
      assert.equal(b.normal(), a.normal(), `n = ${n}: the spare`);
      assert.equal(b.nextU32(), a.nextU32(), `n = ${n}: the state`);
    }
  });

  test('fillU32 = nextU32() in a loop', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const bulk = b.fillU32(new Uint32Array(1000));
    for (let i = 0; i < 1000; i++) assert.equal(bulk[i], a.nextU32());
    assert.equal(b.uniform(), a.uniform());
  });

  test('same seed, same numbers; forKey streams differ by key', () => {
    assert.equal(new Rng(3).normal(), new Rng(3).normal());
    assert.notEqual(Rng.forKey(1, 'a/svd').nextU32(), Rng.forKey(1, 'b/svd').nextU32());
  });
});
