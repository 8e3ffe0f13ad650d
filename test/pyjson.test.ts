import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { dumpPyJson, parsePyJson, pyFloatRepr, PyFloat } from '../src/io/pyjson.js';
import { venvPython } from '../src/python.js';

test('pyFloatRepr matches Python repr() on hand-checked values', () => {
  const cases: [number, string][] = [
    [1e-5, '1e-05'],
    [1e-6, '1e-06'],
    [0.0001, '0.0001'],
    [10000, '10000.0'],
    [0.02, '0.02'],
    [1.5e-7, '1.5e-07'],
    [1e16, '1e+16'],
    [123456789012345680, '1.2345678901234568e+17'],
    [1234567890123456.7, '1234567890123456.8'],
    [0, '0.0'],
    [-0.5, '-0.5'],
    [500000, '500000.0'],
  ];
  for (const [x, s] of cases) assert.equal(pyFloatRepr(x), s, String(x));
});

test('parse keeps the int/float distinction and dump re-creates Python json.dump(indent=4)', () => {
  const src = '{"b": 1.0, "a": [1, 2.5e-06, "é\\u2028x", null, true], "c": {"z": 10000.0, "y": {}}, "d": [], "e": 12345678901234567890}';
  const v = parsePyJson(src) as Record<string, unknown>;
  assert.ok(v.b instanceof PyFloat);
  assert.equal(typeof (v.a as unknown[])[0], 'number');
  const ours = dumpPyJson(v as never, { sortTopLevel: true });
  const py = venvPython();
  const theirs = execFileSync(py, ['-c', 'import json,sys; d=json.loads(sys.stdin.read()); sys.stdout.write(json.dumps(dict(sorted(d.items())), indent=4))'], {
    input: src,
    encoding: 'utf8',
  });
  assert.equal(ours, theirs);
});

test('parse rejects malformed JSON with a position', () => {
  assert.throws(() => parsePyJson('{"a": 1,}'), /offset/);
  assert.throws(() => parsePyJson('[1 2]'), /offset/);
  assert.throws(() => parsePyJson('{"a": 1} x'), /trailing/);
});
