/**
 * Safe inputs and bounded output (docs/reliability.md "Inputs"): the escaping of messages, the
 * refusal of non-regular files before they are opened, the streamed manifest (the same bytes as
 * JSON.stringify), and tables that stay linear in their input.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { textTable, textTableLines } from '../src/cli/table.js';
import { escapeControl, SwanError } from '../src/errors.js';
import { openRegular, readRegularText } from '../src/io/input-file.js';
import { writePrettyJson, writePrettyJsonFd } from '../src/io/json-stream.js';
import { writeFileAtomic } from '../src/io/atomic-file.js';
import { analyzeToManifest, quantizeModel, MANIFEST_FILE } from '../src/pipeline/quantize.js';
import { STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-safe-');
after(() => tmp.cleanup());

function refused(fn: () => unknown, where: string, problem: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SwanError, `expected SwanError, got ${String(e)}`);
    assert.equal(e.message.startsWith(`${where}: `), true, e.message);
    assert.match(e.message, problem);
    return true;
  });
}

describe('escapeControl', () => {
  test('C0, DEL, C1, line separators and bidi controls become \\xNN / \\uNNNN; the rest is kept', () => {
    assert.equal(escapeControl('a\u001b[31mb\n\t\r\u0000'), 'a\\x1b[31mb\\x0a\\x09\\x0d\\x00');
    assert.equal(escapeControl('\u007f\u0080\u009b\u00a0é'), '\\x7f\\x80\\x9b\u00a0é');
    assert.equal(escapeControl('x\u2028y\u2029\u202e\u2066\u200f'), 'x\\u2028y\\u2029\\u202e\\u2066\\u200f');
    assert.equal(escapeControl('model.layers.0.mlp.down_proj.weight → "ok" \\x41 😀'), 'model.layers.0.mlp.down_proj.weight → "ok" \\x41 😀');
  });
  test('every SwanError message is escaped, where and problem alike', () => {
    const e = new SwanError('/tmp/m\u001b]0;x\u0007/config.json', 'bad \u009b2J value\nnext');
    assert.equal(e.message, '/tmp/m\\x1b]0;x\\x07/config.json: bad \\x9b2J value\\x0anext');
    assert.equal(e.where, '/tmp/m\\x1b]0;x\\x07/config.json');
    assert.equal(e.problem, 'bad \\x9b2J value\\x0anext');
  });
});

describe('only regular files are opened', () => {
  test('a FIFO is refused at once, not opened (opening it would block until a writer comes)', { skip: process.platform === 'win32' }, () => {
    const fifo = join(tmp.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    refused(() => openRegular(fifo), fifo, /not a regular file \(a FIFO\)/);
    refused(() => readRegularText(fifo, 'the manifest'), fifo, /not a regular file \(a FIFO\)/);
    assert.ok(Date.now() - t0 < 1000);
  });
  test('a directory and a character device are refused; a missing file says so', () => {
    refused(() => readRegularText(tmp.dir, 'x'), tmp.dir, /not a regular file \(a directory\)/);
    if (process.platform !== 'win32') refused(() => readRegularText('/dev/zero', 'x'), '/dev/zero', /not a regular file \(a character device\)/);
    const missing = join(tmp.dir, 'missing.json');
    refused(() => readRegularText(missing, 'x'), missing, /cannot open: ENOENT: no such file or directory$/);
  });
  test('a file over the size limit is refused before it is read', () => {
    const f = join(tmp.dir, 'big.json');
    writeFileSync(f, '{"a": 1}   ');
    assert.equal(readRegularText(f, 'config.json', 11), '{"a": 1}   ');
    refused(() => readRegularText(f, 'config.json', 10), f, /config\.json is 11 bytes, over the 10-byte limit/);
  });
});

/** What writePrettyJson hands out, joined. */
function streamed(v: unknown): string {
  let s = '';
  writePrettyJson(v, (chunk) => {
    s += chunk;
  });
  return s;
}

describe('streamed JSON: the bytes of JSON.stringify(value, null, 2)', () => {
  test('edge cases of JSON.stringify', () => {
    const cases: unknown[] = [
      1,
      'a\n"b"',
      null,
      true,
      [],
      {},
      [[]],
      { a: {} },
      [1, [2, [3, [4, [5, [6, {}]]]]]],
      { a: undefined, b: () => 1, c: [undefined, () => 1, Symbol('s')], s: '\u2028\u0000' },
      { d: { e: { f: { g: { h: { i: 'x\ny', j: [1, { k: null }] } } } } } },
      { date: new Date(0), n: Object(3), nan: NaN, inf: -Infinity, negZero: -0, big: 1e21, small: 5e-324 },
      { t: { toJSON: (k: string) => `key ${k}` }, u: { toJSON: () => undefined }, z: 1 },
      [{ toJSON: () => undefined }],
      { '': 1, 'é"\n': 2, 2: 'two', 1: 'one' },
    ];
    for (const v of cases) assert.equal(streamed(v), JSON.stringify(v, null, 2));
    assert.equal(streamed(undefined), '');
  });

  test('big documents come in chunks, not one string', () => {
    const v = { shards: { 'model.safetensors': { tensors: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`t${i}`, { shape: [i, 2], name: 'x'.repeat(100) }])) } } };
    const chunks: string[] = [];
    writePrettyJson(v, (c) => chunks.push(c));
    assert.ok(chunks.length > 1, `${chunks.length} chunks`);
    assert.equal(chunks.join(''), JSON.stringify(v, null, 2));
  });

  test("a real manifest: swan analyze's and swan quantize's files are JSON.stringify(m, null, 2) + '\\n' byte for byte", () => {
    const { manifest } = analyzeToManifest(STORIES);
    const want = JSON.stringify(manifest, null, 2) + '\n';
    const file = join(tmp.dir, 'analyze.json');
    writeFileAtomic(file, (fd) => writePrettyJsonFd(fd, manifest));
    assert.equal(readFileSync(file, 'utf8'), want);
    assert.ok(Object.keys(manifest.shards).length > 0 && want.length > 10_000);

    const out = join(tmp.dir, 'quantized');
    const r = quantizeModel(STORIES, out, {});
    assert.equal(readFileSync(join(out, MANIFEST_FILE), 'utf8'), JSON.stringify(r.manifest, null, 2) + '\n');
    assert.deepEqual(r.warnings, []);
  });
});

describe('textTable', () => {
  test('small tables are as before: columns padded to the widest cell', () => {
    assert.equal(
      textTable(['name', 'n'], [['a', 1], ['bbb', 22]], [false, true]),
      ['name   n', '----  --', 'a      1', 'bbb   22'].join('\n'),
    );
  });
  test('a huge cell overflows its column instead of widening every row; no spread over the rows', () => {
    const rows: (string | number)[][] = Array.from({ length: 300_000 }, (_, i) => [`t${i}`, i]);
    rows[7] = ['x'.repeat(100_000), 7];
    const lines = textTableLines(['tensor', 'bytes'], rows, [false, true]);
    assert.equal(lines.length, 300_002);
    const width = lines[1]!.length; // the dashes: every column's width
    assert.ok(width < 20, lines[1]);
    assert.ok(lines.every((l, i) => i === 9 || l.length === width));
    assert.equal(lines[9], `${'x'.repeat(100_000)}       7`);
  });
  test('cells are escaped', () => {
    assert.equal(textTableLines(['t'], [['a\u001b[2Jb']])[2], 'a\\x1b[2Jb');
  });
});
