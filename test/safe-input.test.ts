/**
 * Safe inputs (docs/reliability.md "Inputs"): the escaping of messages, the refusal of non-regular
 * files before they are opened.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { escapeControl, SwanError } from '../src/errors.js';
import { openRegular, readRegularText } from '../src/io/input-file.js';
import { tempDir } from './helpers/paths.js';

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
