/**
 * Checks of a backend's normalPairs (rng.ts NormalPairsKernel: fillNormal's Gaussian pairs), shared
 * by the native and wasm backend tests. The expectations are the TypeScript's own fillNormal values
 * and xoshiro128** draws.
 */
import { strict as assert } from 'node:assert';

import { Rng, type NormalPairsKernel } from '../../src/rng.js';

const same = (x: Float32Array, y: Float32Array) =>
  Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));

/** Uniform in [0, 1) from draws w[0], w[1], as Rng.uniform(). */
const uniform53 = (w: Uint32Array) => ((w[0]! >>> 5) * 67108864 + (w[1]! >>> 6)) / 9007199254740992;

/**
 * Rng.fillNormal with the kernel gives the TypeScript's float32 values bit for bit and leaves the
 * stream in step; the kernel on its own stops before a u = 0 pair and once redo is full, writes only
 * the TypeScript's values, only its own pairs, and lists pairs with their index, u and v. `makeOut`
 * gives the output arrays (a backend may treat its own memory differently).
 */
export function checkNormalPairs(kernel: NormalPairsKernel, makeOut: (n: number) => Float32Array = (n) => new Float32Array(n)): void {
  // Odd and even lengths, a spare pending before (an odd offset) and left after, scales.
  for (const [seed, n, scale, spare] of [[1, 1_000_000, 1, false], [2, 99_999, 0.37, true], [3, 1, 1, true], [4, 2, 1, false], [5, 7, 3e-3, false], [6, 70_001, -2.5, true]] as const) {
    const js = new Rng(seed), kn = new Rng(seed);
    if (spare) assert.equal(js.normal(), kn.normal());
    const want = js.fillNormal(new Float32Array(n), scale);
    const got = kn.fillNormal(makeOut(n), scale, kernel);
    assert.ok(same(got, want), `seed ${seed}, n ${n}`);
    assert.equal(kn.normal(), js.normal(), `seed ${seed}: the spare and the stream continue in step`);
    assert.equal(kn.nextU32(), js.nextU32());
  }
  // State (a, 0, a, b) draws two zero words first: u = 0, which the TypeScript redraws.
  const js = new Rng(0), kn = new Rng(0);
  js.setState(Uint32Array.of(123, 0, 123, 77));
  kn.setState(Uint32Array.of(123, 0, 123, 77));
  assert.ok(same(kn.fillNormal(makeOut(10), 1, kernel), js.fillNormal(new Float32Array(10))), 'u = 0');
  assert.equal(kn.nextU32(), js.nextU32());

  const state = Uint32Array.of(123, 0, 123, 77);
  assert.deepEqual(kernel(state, makeOut(8), 0, 4, 1, new Float64Array(3)), [0, 0]);
  assert.deepEqual(state, Uint32Array.of(123, 0, 123, 77), 'state untouched before the u = 0 pair');

  const pairs = 300_000;
  const refDraws = new Rng(8).fillU32(new Uint32Array(4 * pairs));
  const want = new Rng(8).fillNormal(new Float32Array(2 * pairs), 0.5);
  for (const [offset, cap] of [[0, 1], [3, 256]] as const) {
    const out = makeOut(offset + 2 * pairs + 1).fill(Number.NaN);
    const redo = new Float64Array(3 * cap);
    const st = new Rng(8).getState();
    const [done, listed] = kernel(st, out, offset, pairs, 0.5, redo);
    assert.ok(done >= 1 && done <= pairs && listed <= cap, `offset ${offset}: ${done} done, ${listed} listed`);
    if (listed === cap) assert.equal(done, redo[3 * (cap - 1)]! + 1, 'stops once redo is full');
    else assert.equal(done, pairs);
    const after = new Rng(8);
    after.fillU32(new Uint32Array(4 * done));
    assert.deepEqual(st, after.getState(), `offset ${offset}: the state advanced over the pairs done`);
    const skip = new Set<number>();
    for (let j = 0; j < listed; j++) {
      const p = redo[3 * j]!;
      skip.add(p);
      assert.equal(redo[3 * j + 1], uniform53(refDraws.subarray(4 * p)), `pair ${p}: u`);
      assert.equal(redo[3 * j + 2], uniform53(refDraws.subarray(4 * p + 2)), `pair ${p}: v`);
    }
    for (let p = 0; p < done; p++) {
      const [a, b] = [out[offset + 2 * p]!, out[offset + 2 * p + 1]!];
      if (skip.has(p)) assert.ok(Number.isNaN(a) && Number.isNaN(b), `listed pair ${p} left alone`);
      else assert.ok(Object.is(a, want[2 * p]) && Object.is(b, want[2 * p + 1]), `offset ${offset}: pair ${p}`);
    }
    for (const i of [...Array(offset).keys(), offset + 2 * done, out.length - 1]) assert.ok(Number.isNaN(out[i]), `out[${i}] not written`);
  }
  assert.throws(() => kernel(new Uint32Array(4), makeOut(3), 0, 2, 1, new Float64Array(3)), /out shorter than offset \+ 2·pairs/);
  // Seeds (found by search) whose first pair has a TypeScript value within 2⁻⁴⁸ relative of a float32
  // rounding boundary: a kernel whose double is within a few ulps of the TypeScript's must list it.
  for (const seed of [2768662, 6330511, 17288049]) {
    const redo = new Float64Array(3 * 4);
    assert.deepEqual(kernel(new Rng(seed).getState(), makeOut(2), 0, 1, 1, redo), [1, 1], `seed ${seed}: listed`);
    assert.equal(redo[0], 0);
    const js = new Rng(seed), kn = new Rng(seed);
    assert.ok(same(kn.fillNormal(makeOut(5), 1, kernel), js.fillNormal(new Float32Array(5))), `seed ${seed}: values`);
  }
}
