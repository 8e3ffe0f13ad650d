/** Safe inputs (docs/reliability.md "Inputs"): the escaping of messages. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapeControl, SwanError } from '../src/errors.js';

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
