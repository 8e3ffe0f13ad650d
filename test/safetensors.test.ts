import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SwanError } from '../src/errors.js';
import { f16ToF32, f32ToBf16, f32ToF16 } from '../src/io/float.js';
import {
  DTYPE_BYTES,
  MAX_DIM,
  MAX_FIELDS,
  MAX_NAME_BYTES,
  MAX_RANK,
  MAX_TENSORS,
  ReadBuffers,
  readSafetensorsHeader,
  readTensorBytes,
  readTensorF32,
  readTensorF32Checked,
  readTensorRowsF32,
  type DType,
  type SafetensorsHeader,
} from '../src/io/safetensors.js';
import { SafetensorsWriter, safetensorsHeaderJson, type TensorToWrite } from '../src/io/safetensors-writer.js';
import { runPython } from '../src/python.js';
import { FIXTURES, STORIES, tempDir } from './helpers/paths.js';

const tmp = tempDir('swan-st-');
after(() => tmp.cleanup());

let counter = 0;
/** Write a safetensors file from raw parts; `headerLen` overrides the 8-byte length field. */
function makeFile(header: string | object, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): string {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.byteLength));
  const file = join(tmp.dir, `case-${counter++}.safetensors`);
  writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The call must throw a one-line SwanError that starts with the file and matches `problem`. */
function assertBad(file: string, problem: RegExp, fn: () => unknown = () => readSafetensorsHeader(file)): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SwanError, `expected SwanError, got ${String(e)}`);
    assert.match(e.message, new RegExp(`^${escapeRe(file)}: `));
    assert.match(e.message, problem);
    assert.ok(!/[\r\n]/.test(e.message), `message is not one line: ${JSON.stringify(e.message)}`);
    return true;
  });
}

const ent = (dtype: string, shape: unknown, offs: unknown) => ({ dtype, shape, data_offsets: offs });

describe('reading the stories260K fixtures', () => {
  const bf = readSafetensorsHeader(join(STORIES, 'model.safetensors'));
  const f16 = readSafetensorsHeader(join(FIXTURES, 'stories260K-f16', 'model.safetensors'));
  const f32 = readSafetensorsHeader(join(FIXTURES, 'stories260K-f32', 'model.safetensors'));
  const byName = (h: SafetensorsHeader) => new Map(h.tensors.map((t) => [t.name, t]));

  test('names, dtypes, shapes, offsets', () => {
    assert.equal(bf.tensors.length, 2 + 5 * 9); // embed + norm + 9 per layer; tied: no lm_head
    assert.deepEqual(bf.metadata, { format: 'pt' });
    assert.equal(bf.dataStart, 8 + readFileSync(bf.file).readUInt32LE(0));
    const m = byName(bf);
    assert.deepEqual(m.get('model.embed_tokens.weight')!.shape, [512, 64]);
    assert.deepEqual(m.get('model.norm.weight')!.shape, [64]);
    for (let l = 0; l < 5; l++) {
      const p = `model.layers.${l}.`;
      assert.deepEqual(m.get(`${p}self_attn.q_proj.weight`)!.shape, [64, 64]);
      assert.deepEqual(m.get(`${p}self_attn.k_proj.weight`)!.shape, [32, 64]);
      assert.deepEqual(m.get(`${p}self_attn.v_proj.weight`)!.shape, [32, 64]);
      assert.deepEqual(m.get(`${p}self_attn.o_proj.weight`)!.shape, [64, 64]);
      assert.deepEqual(m.get(`${p}mlp.gate_proj.weight`)!.shape, [172, 64]);
      assert.deepEqual(m.get(`${p}mlp.up_proj.weight`)!.shape, [172, 64]);
      assert.deepEqual(m.get(`${p}mlp.down_proj.weight`)!.shape, [64, 172]);
      assert.deepEqual(m.get(`${p}input_layernorm.weight`)!.shape, [64]);
      assert.deepEqual(m.get(`${p}post_attention_layernorm.weight`)!.shape, [64]);
    }
    for (const [h, dt] of [[bf, 'BF16'], [f16, 'F16'], [f32, 'F32']] as const) {
      assert.ok(h.tensors.every((t) => t.dtype === dt));
      // data-offset order, contiguous from dataStart to the end of the file
      let pos = h.dataStart;
      for (const t of h.tensors) {
        assert.equal(t.offset, pos);
        assert.equal(t.byteLength, t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]);
        pos += t.byteLength;
      }
      assert.equal(pos, readFileSync(h.file).byteLength);
      assert.deepEqual(h.tensors.map((t) => [t.name, t.shape]), bf.tensors.map((t) => [t.name, t.shape]));
    }
  });

  test('bf16 and f16 values are the f32 values rounded (RNE), bit for bit', () => {
    const m16 = byName(f16);
    const m32 = byName(f32);
    let checked = 0;
    for (const tb of bf.tensors) {
      const x32 = readTensorF32(m32.get(tb.name)!);
      const xb = readTensorF32(tb);
      const bits = new Uint32Array(xb.buffer);
      const raw16 = readTensorBytes(m16.get(tb.name)!);
      const bits16 = new Uint16Array(raw16.buffer, raw16.byteOffset, raw16.byteLength / 2);
      const x16 = readTensorF32(m16.get(tb.name)!);
      assert.equal(xb.length, x32.length);
      let nonzero = 0;
      for (let i = 0; i < x32.length; i++) {
        assert.equal(bits[i]!, f32ToBf16(x32[i]!) << 16 >>> 0, `${tb.name}[${i}] bf16`);
        assert.equal(bits16[i]!, f32ToF16(x32[i]!), `${tb.name}[${i}] f16 bits`);
        assert.equal(x16[i]!, f16ToF32(bits16[i]!), `${tb.name}[${i}] f16 decode`);
        if (x32[i] !== 0) nonzero++;
        checked++;
      }
      assert.ok(nonzero > x32.length / 2, `${tb.name} looks empty`);
    }
    assert.equal(checked, 512 * 64 + 64 + 5 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64 + 2 * 64));
  });

  test('ReadBuffers: reads into kept memory give the fresh reads\' values and counts, big after small after big, in every dtype', () => {
    for (const h of [f32, bf, f16]) {
      const buffers = new ReadBuffers();
      // Largest first, then the rest: every later view sits on memory a larger tensor filled.
      const order = [...h.tensors].sort((a, b) => b.byteLength - a.byteLength);
      for (const t of [...order, order[0]!]) {
        const fresh = readTensorF32Checked(t, 'F16');
        const kept = readTensorF32Checked(t, 'F16', buffers);
        assert.equal(kept.data.length, fresh.data.length, `${t.name}: length`);
        assert.deepEqual(kept.nonfinite, fresh.nonfinite, `${t.name}: counts`);
        assert.ok(Buffer.from(kept.data.buffer, kept.data.byteOffset, kept.data.byteLength).equals(Buffer.from(fresh.data.buffer)), `${t.name} (${t.dtype}): values`);
      }
    }
  });

  test('readTensorBytes is the slice of the file; row blocks match the whole tensor', () => {
    const whole = readFileSync(bf.file);
    for (const t of [...bf.tensors.slice(0, 3), ...f32.tensors.slice(0, 3)]) {
      const file = t.file === bf.file ? whole : readFileSync(t.file);
      assert.deepEqual(readTensorBytes(t), file.subarray(t.offset, t.offset + t.byteLength));
    }
    for (const t of [byName(bf).get('model.layers.2.mlp.down_proj.weight')!, byName(f16).get('model.embed_tokens.weight')!]) {
      const all = readTensorF32(t);
      const cols = t.shape[1]!;
      assert.deepEqual(readTensorRowsF32(t, 5, 7), all.subarray(5 * cols, 12 * cols));
      assert.deepEqual(readTensorRowsF32(t, t.shape[0]! - 1, 1), all.subarray((t.shape[0]! - 1) * cols));
      assert.equal(readTensorRowsF32(t, 3, 0).length, 0);
      assertBad(t.file, /rows \[60,70\) out of range/, () => readTensorRowsF32({ ...t, shape: [64, cols] }, 60, 10));
    }
    const norm = byName(f32).get('model.norm.weight')!;
    assert.deepEqual(readTensorRowsF32(norm, 10, 4), readTensorF32(norm).subarray(10, 14));
  });
});

describe('strict header validation', () => {
  const f32x2 = new Uint8Array(8);
  test('file too short / header length bad', () => {
    assertBad(makeFileRaw(new Uint8Array(0)), /0 bytes, too short/);
    assertBad(makeFileRaw(new Uint8Array(5)), /5 bytes, too short/);
    assertBad(makeFile('{}', undefined, 1_000_000_000n), /header length 1000000000 exceeds the 100000000-byte limit/);
    assertBad(makeFile('{}', undefined, 2n ** 64n - 1n), /exceeds the 100000000-byte limit/);
    assertBad(makeFile('{}', undefined, 300n), /header length 300 runs past the end of the file \(10 bytes/);
  });
  test('header not JSON / not an object / not UTF-8', () => {
    assertBad(makeFile('{"a":'), /header is not valid JSON/);
    assertBad(makeFile('{"a":\n\n{'), /header is not valid JSON/);
    assertBad(makeFile(''), /header is not valid JSON/);
    assertBad(makeFile('[1,2]'), /header is an array, not a JSON object/);
    assertBad(makeFile('null'), /header is null, not a JSON object/);
    assertBad(makeFile('"x"'), /header is a string, not a JSON object/);
    const h = Buffer.from('{"\xff":1}', 'latin1');
    assertBad(makeFileRaw(Buffer.concat([le64(h.byteLength), h])), /header is not valid UTF-8/);
  });
  test('entry fields missing or of the wrong type', () => {
    assertBad(makeFile({ w: 3 }), /tensor "w": entry is a number, not an object/);
    assertBad(makeFile({ w: [] }), /tensor "w": entry is an array/);
    assertBad(makeFile({ w: { shape: [2], data_offsets: [0, 8] } }, f32x2), /tensor "w": missing "dtype"/);
    assertBad(makeFile({ w: { dtype: 'F32', data_offsets: [0, 8] } }, f32x2), /tensor "w": missing "shape"/);
    assertBad(makeFile({ w: { dtype: 'F32', shape: [2] } }, f32x2), /tensor "w": missing "data_offsets"/);
    assertBad(makeFile({ w: ent(4 as never, [2], [0, 8]) }, f32x2), /tensor "w": dtype is a number, not a string/);
    assertBad(makeFile({ w: ent('F32', '2', [0, 8]) }, f32x2), /tensor "w": shape is a string, not an array/);
    assertBad(makeFile({ w: ent('F32', [2], '0-8') }, f32x2), /tensor "w": data_offsets must be two non-negative integers/);
    assertBad(makeFile({ w: ent('F32', [2], [0]) }, f32x2), /data_offsets must be two non-negative integers/);
    assertBad(makeFile({ w: ent('F32', [2], [0, 8, 9]) }, f32x2), /data_offsets must be two non-negative integers/);
    assertBad(makeFile({ w: ent('F32', [2], [-8, 0]) }, f32x2), /data_offsets must be two non-negative integers/);
    assertBad(makeFile({ w: ent('F32', [2], [0, 8.5]) }, f32x2), /data_offsets must be two non-negative integers/);
    // tensor names with control characters stay escaped on one line
    assertBad(makeFile({ 'a\nb': 1 }), /tensor "a\\nb": entry is a number/);
  });
  test('unknown dtypes', () => {
    for (const dt of ['Q4', 'f32', 'F4', 'C64', '']) {
      assertBad(makeFile({ w: ent(dt, [2], [0, 8]) }, f32x2), new RegExp(`tensor "w": unsupported dtype "${dt}"`));
    }
  });
  test('bad shapes', () => {
    assertBad(makeFile({ w: ent('F32', [-2], [0, 8]) }, f32x2), /tensor "w": shape \[-2\] has a dimension that is not a non-negative integer/);
    assertBad(makeFile({ w: ent('F32', [1.5], [0, 8]) }, f32x2), /shape \[1.5\] has a dimension that is not a non-negative integer/);
    assertBad(makeFile({ w: ent('F32', ['2'], [0, 8]) }, f32x2), /shape \["2"\] has a dimension/);
    assertBad(makeFile({ w: ent('F32', [null], [0, 8]) }, f32x2), /shape \[null\] has a dimension/);
    const big = 2 ** 31 - 1;
    assertBad(makeFile({ w: ent('F32', [big, big, big], [0, 8]) }, f32x2), /is too large/);
  });
  test('byte count, begin > end, out of range', () => {
    assertBad(makeFile({ w: ent('F32', [3], [0, 8]) }, f32x2), /tensor "w": data_offsets \[0,8\] span 8 bytes but F32 shape \[3\] needs 12/);
    assertBad(makeFile({ w: ent('BF16', [2, 2], [0, 4]) }, f32x2), /span 4 bytes but BF16 shape \[2,2\] needs 8/);
    assertBad(makeFile({ w: ent('F32', [0], [8, 0]) }, f32x2), /tensor "w": data_offsets begin 8 > end 0/);
    assertBad(makeFile({ w: ent('F32', [2], [0, 8]) }, new Uint8Array(6)), /tensor "w": data_offsets end 8 is beyond the data region \(6 bytes; truncated\?\)/);
    assertBad(
      makeFile({ a: ent('F32', [2], [0, 8]), b: ent('U8', [4], [8, 12]) }, new Uint8Array(10)),
      /tensor "b": data_offsets end 12 is beyond the data region \(10 bytes/,
    );
  });
  test('overlaps and gaps', () => {
    assertBad(
      makeFile({ a: ent('F32', [2], [0, 8]), b: ent('F32', [2], [4, 12]) }, new Uint8Array(12)),
      /tensor "b" \[4,12\] overlaps tensor "a" \(ends at 8\)/,
    );
    assertBad(
      makeFile({ a: ent('F32', [2], [0, 8]), b: ent('F32', [2], [0, 8]) }, new Uint8Array(8)),
      /tensor "b" \[0,8\] overlaps tensor "a"/,
    );
    assertBad(
      makeFile({ a: ent('F32', [1], [0, 4]), b: ent('F32', [1], [8, 12]) }, new Uint8Array(12)),
      /gap in the data region: bytes \[4,8\) belong to no tensor \(before "b"\)/,
    );
    assertBad(makeFile({ a: ent('F32', [1], [4, 8]) }, new Uint8Array(8)), /gap in the data region: bytes \[0,4\)/);
    assertBad(makeFile({ a: ent('F32', [1], [0, 4]) }, new Uint8Array(7)), /gap in the data region: 3 trailing bytes after the last tensor/);
    assertBad(makeFile({}, new Uint8Array(1)), /1 trailing bytes/);
  });
  test('__metadata__ must be string → string', () => {
    assertBad(makeFile({ __metadata__: ['pt'] }), /__metadata__ is an array, not an object of strings/);
    assertBad(makeFile({ __metadata__: 'pt' }), /__metadata__ is a string, not an object of strings/);
    assertBad(makeFile({ __metadata__: { format: 'pt', n: 3 } }), /__metadata__ value for "n" is a number, not a string/);
    assertBad(makeFile({ __metadata__: { nested: {} } }), /__metadata__ value for "nested" is an object, not a string/);
  });
  test('accepted edge cases: space padding, null metadata (MLX), zero-size tensors, empty file', () => {
    const padded = makeFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}      `, f32x2);
    assert.equal(readSafetensorsHeader(padded).tensors[0]!.name, 'w');
    assert.deepEqual(readSafetensorsHeader(makeFile('{"__metadata__":null}')).metadata, {});
    const h = readSafetensorsHeader(
      makeFile({ z: ent('F16', [0, 3], [4, 4]), a: ent('F32', [1], [0, 4]), y: ent('U8', [], [4, 5]), x: ent('I8', [2, 0], [5, 5]) }, new Uint8Array(5)),
    );
    assert.deepEqual(h.tensors.map((t) => t.name), ['a', 'z', 'y', 'x']);
    assert.equal(readTensorF32(h.tensors[1]!).length, 0);
    assert.deepEqual(h.tensors[2]!.shape, []);
    assert.deepEqual(readSafetensorsHeader(makeFile('{}')).tensors, []);
  });
  test('readTensorF32 rejects non-float dtypes; a file truncated after parsing is reported', () => {
    const file = makeFile({ a: ent('U8', [4], [0, 4]) }, new Uint8Array([1, 2, 3, 4]));
    const [t] = readSafetensorsHeader(file).tensors;
    assert.deepEqual([...readTensorBytes(t!)], [1, 2, 3, 4]);
    assertBad(file, /tensor "a": dtype U8 cannot be read as float/, () => readTensorF32(t!));
    writeFileSync(file, readFileSync(file).subarray(0, t!.offset + 2));
    assertBad(file, /tensor "a": truncated: wanted 4 bytes/, () => readTensorBytes(t!));
    assertBad(join(tmp.dir, 'nope.safetensors'), /cannot open/);
  });
});

describe('header limits (refused before the header is parsed)', () => {
  const empty = (dtype = 'U8') => ent(dtype, [0], [0, 0]);
  test('rank: at most MAX_RANK dimensions; a longer shape is refused while scanning', () => {
    assert.equal(MAX_RANK, 8);
    assert.deepEqual(readSafetensorsHeader(makeFile({ w: ent('U8', [1, 1, 1, 1, 1, 1, 1, 0], [0, 0]) })).tensors[0]!.shape.length, 8);
    assertBad(makeFile({ w: ent('U8', [1, 1, 1, 1, 1, 1, 1, 1, 0], [0, 0]) }), /tensor "w": "shape" has more than 8 entries, over the limit of 8/);
    assertBad(makeFile({ w: ent('U8', [0], [0, 0, 0, 0, 0, 0, 0, 0, 0]) }), /tensor "w": "data_offsets" has more than 8 entries/);
    // shapes nested inside shapes: deeper than any safetensors header
    assertBad(makeFile({ w: ent('U8', [[1], 0], [0, 0]) }), /tensor "w": nested deeper than a safetensors header \(3 levels\)/);
  });

  test('dimensions: at most 2^31-1 (MLX shapes are int32), even in an empty tensor', () => {
    assert.equal(MAX_DIM, 2 ** 31 - 1);
    assert.deepEqual(readSafetensorsHeader(makeFile({ w: ent('U8', [MAX_DIM, 0], [0, 0]) })).tensors[0]!.shape, [MAX_DIM, 0]);
    assertBad(makeFile({ w: ent('U8', [MAX_DIM + 1, 0], [0, 0]) }), /tensor "w": shape \[2147483648,0\] has a dimension over the limit of 2147483647/);
  });

  test('names: at most MAX_NAME_BYTES bytes of UTF-8, JSON escapes counted as decoded', () => {
    assert.equal(MAX_NAME_BYTES, 1024);
    const ok = ['a'.repeat(1024), '\u00e9'.repeat(512)];
    for (const name of ok) assert.equal(readSafetensorsHeader(makeFile({ [name]: empty() })).tensors[0]!.name, name);
    // written as \u00e9 escapes: 6 bytes of JSON each, 2 bytes of name
    const escaped = `{"${'\\u00e9'.repeat(512)}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`;
    assert.equal(readSafetensorsHeader(makeFile(escaped)).tensors[0]!.name, '\u00e9'.repeat(512));
    for (const name of ['a'.repeat(1025), '\u20ac'.repeat(342), '\u00e9'.repeat(512) + 'x']) {
      assertBad(makeFile({ [name]: empty() }), /tensor name ".*"… is longer than 1024 bytes, the limit for names/);
    }
  });

  test('fields: at most MAX_FIELDS per tensor entry and in __metadata__', () => {
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    assert.equal(Object.keys(readSafetensorsHeader(makeFile({ __metadata__: fields(MAX_FIELDS) })).metadata).length, MAX_FIELDS);
    assertBad(makeFile({ __metadata__: fields(MAX_FIELDS + 1) }), /__metadata__: more than 1024 fields, over the limit of 1024/);
    assertBad(makeFile({ w: { ...empty(), ...fields(MAX_FIELDS) } }), /tensor "w": more than 1024 fields/);
  });

  test('tensors: at most MAX_TENSORS per file, whether the scan or the parse sees the excess', () => {
    const header = (n: number, metadata: boolean) => {
      const parts = metadata ? ['"__metadata__":{"format":"pt"}'] : [];
      for (let i = 0; i < n; i++) parts.push(`"${i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`);
      return `{${parts.join(',')}}`;
    };
    const limit = new RegExp(`header has more than ${MAX_TENSORS} tensors, over the limit of ${MAX_TENSORS} per file`);
    assertBad(makeFile(header(MAX_TENSORS + 1, true)), limit); // the scan: MAX_TENSORS + 2 entries
    assertBad(makeFile(header(MAX_TENSORS + 1, false)), limit); // the parse: exactly one too many
  });
});

describe('messages', () => {
  test('messages escape control characters from the file: one printable line', () => {
    const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    for (const file of [
      makeFile({ 'a\u009b31mb': 1 }),
      makeFile({ w: ent('\u001b[2J\u202e', [0], [0, 0]) }),
      makeFile('{"a":\u001b[2J}'),
      makeFile({ ['x'.repeat(2000) + '\u0007']: 1 }),
    ]) {
      assert.throws(
        () => readSafetensorsHeader(file),
        (e: unknown) => e instanceof SwanError && !unsafe.test(e.message) && e.message.startsWith(`${file}: `),
      );
    }
    assertBad(makeFile({ 'a\u009b31mb': 1 }), /tensor "a\\x9b31mb": entry is a number/);
    assertBad(makeFile('{"a":\u001b[2J}'), /header is not valid JSON \(.*\\x1b/);
  });
});

function le64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
function makeFileRaw(bytes: Uint8Array): string {
  const file = join(tmp.dir, `case-${counter++}.safetensors`);
  writeFileSync(file, bytes);
  return file;
}

describe('MLX-style writer', () => {
  test('exact header JSON: compact, bytewise-sorted keys, __metadata__ among the names', () => {
    const json = safetensorsHeaderJson([
      { name: 'b.weight', dtype: 'BF16', shape: [2, 3], begin: 0, end: 12 },
      { name: 'A', dtype: 'U32', shape: [2], begin: 12, end: 20 },
      { name: '\u{1F600}', dtype: 'F32', shape: [], begin: 20, end: 24 },
      { name: '\uFF5E', dtype: 'U8', shape: [0], begin: 24, end: 24 },
      { name: 'a\n"q"', dtype: 'BOOL', shape: [1], begin: 24, end: 25 },
    ]);
    // '_' (0x5F) sorts after 'A' and before 'a'; U+FF5E (EF BD 9E) before U+1F600 (F0 ...) in UTF-8
    // although JS's UTF-16 order is the reverse.
    const want =
      '{"A":{"data_offsets":[12,20],"dtype":"U32","shape":[2]},"__metadata__":{"format":"mlx"},' +
      '"a\\n\\"q\\"":{"data_offsets":[24,25],"dtype":"BOOL","shape":[1]},' +
      '"b.weight":{"data_offsets":[0,12],"dtype":"BF16","shape":[2,3]},' +
      '"\uFF5E":{"data_offsets":[24,24],"dtype":"U8","shape":[0]},' +
      '"\u{1F600}":{"data_offsets":[20,24],"dtype":"F32","shape":[]}}';
    assert.equal(json, want);
    assert.equal(
      safetensorsHeaderJson([{ name: 'w', dtype: 'F16', shape: [1], begin: 0, end: 2 }], { z: '1', a: 'x"y' }),
      '{"__metadata__":{"a":"x\\"y","z":"1"},"w":{"data_offsets":[0,2],"dtype":"F16","shape":[1]}}',
    );
    assert.equal(safetensorsHeaderJson([], {}), '{"__metadata__":null}');

    // The file: 8-byte LE length, that exact header, no padding, data in declared order.
    const file = join(tmp.dir, 'exact.safetensors');
    const w = new SafetensorsWriter(file, [
      { name: 'b', dtype: 'U8', shape: [3], byteLength: 3 },
      { name: 'a', dtype: 'U8', shape: [1], byteLength: 1 },
    ]);
    w.write('b', new Uint8Array([7, 8, 9]));
    w.write('a', new Uint8Array([5]));
    w.close();
    const header = '{"__metadata__":{"format":"mlx"},"a":{"data_offsets":[3,4],"dtype":"U8","shape":[1]},"b":{"data_offsets":[0,3],"dtype":"U8","shape":[3]}}';
    assert.deepEqual(readFileSync(file), Buffer.concat([le64(header.length), Buffer.from(header), Buffer.from([7, 8, 9, 5])]));
  });

  /** Tensors of many dtypes, declared in unsorted order, with deterministic pseudo-random bytes. */
  function sample(forMlx: boolean): { decl: TensorToWrite[]; bytes: Map<string, Uint8Array> } {
    // MLX's safetensors loader has no F64 or F8; our reader and writer do.
    const extra: [string, DType, number[]][] = forMlx ? [] : [['f64', 'F64', [2]], ['e4m3', 'F8_E4M3', [2, 2]], ['e5m2', 'F8_E5M2', [3]]];
    const specs: [string, DType, number[]][] = [
      ...extra,
      ['model.layers.1.w', 'BF16', [4, 6]],
      ['model.layers.0.w', 'F32', [3, 5]],
      ['z.f16', 'F16', [7]],
      ['scales', 'U32', [2, 2]],
      ['b.u8', 'U8', [5]],
      ['i8', 'I8', [3]],
      ['flags', 'BOOL', [4]],
      ['i64', 'I64', [2]],
      ['i32', 'I32', [1, 1, 3]],
      ['u16', 'U16', [3]],
      ['scalar', 'F32', []],
      ['empty', 'F16', [0, 3]],
      ['__x', 'U8', [1]],
    ];
    let seed = 12345;
    const decl: TensorToWrite[] = [];
    const bytes = new Map<string, Uint8Array>();
    for (const [name, dtype, shape] of specs) {
      const n = shape.reduce((a, b) => a * b, 1);
      const b = new Uint8Array(n * DTYPE_BYTES[dtype]);
      for (let i = 0; i < b.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b[i] = seed >>> 24;
      }
      if (dtype === 'BOOL') for (let i = 0; i < b.length; i++) b[i] = b[i]! & 1;
      // keep float patterns finite so MLX round-trips compare cleanly
      if (dtype === 'F32' || dtype === 'F64' || dtype === 'F16' || dtype === 'BF16') {
        const step = DTYPE_BYTES[dtype];
        for (let i = step - 1; i < b.length; i += step) b[i] = b[i]! & 0x3f;
      }
      decl.push({ name, dtype, shape, byteLength: b.length });
      bytes.set(name, b);
    }
    return { decl, bytes };
  }

  function writeSample(file: string, forMlx: boolean, metadata?: Record<string, string>) {
    const s = sample(forMlx);
    const w = new SafetensorsWriter(file, s.decl, metadata);
    for (const t of s.decl) w.write(t.name, s.bytes.get(t.name)!);
    w.close();
    return s;
  }

  test('round trip through the reader: names, dtypes, shapes, bytes; data in declared order', () => {
    const file = join(tmp.dir, 'rt.safetensors');
    const s = writeSample(file, false, { format: 'mlx', extra: 'é' });
    const h = readSafetensorsHeader(file);
    assert.deepEqual(h.metadata, { format: 'mlx', extra: 'é' });
    assert.deepEqual(
      h.tensors.map((t) => [t.name, t.dtype, t.shape]),
      s.decl.map((t) => [t.name, t.dtype, t.shape]),
    );
    for (const t of h.tensors) assert.deepEqual(new Uint8Array(readTensorBytes(t)), s.bytes.get(t.name));
    const raw = readFileSync(file);
    const hlen = Number(raw.readBigUInt64LE(0));
    assert.equal(h.dataStart, 8 + hlen);
    assert.equal(raw[8 + hlen - 1], '}'.charCodeAt(0)); // no padding
  });

  test('misuse is refused', () => {
    const file = join(tmp.dir, 'bad.safetensors');
    const decl: TensorToWrite[] = [
      { name: 'a', dtype: 'F32', shape: [2], byteLength: 8 },
      { name: 'b', dtype: 'U8', shape: [1], byteLength: 1 },
    ];
    let w = new SafetensorsWriter(file, decl);
    assertBad(file, /tensor "b" written out of order: expected "a" next/, () => w.write('b', new Uint8Array(1)));
    assertBad(file, /after close or failure/, () => w.write('a', new Uint8Array(8)));
    w = new SafetensorsWriter(file, decl);
    assertBad(file, /tensor "a": got 4 bytes, declared 8/, () => w.write('a', new Uint8Array(4)));
    w = new SafetensorsWriter(file, decl);
    w.write('a', new Uint8Array(8));
    assertBad(file, /closed after 1 of 2 tensors; next missing is "b"/, () => w.close());
    w = new SafetensorsWriter(file, decl);
    w.write('a', new Uint8Array(8));
    w.write('b', new Uint8Array(1));
    assertBad(file, /all 2 declared tensors are already written/, () => w.write('c', new Uint8Array(1)));
    assertBad(file, /tensor "a" declared twice/, () => new SafetensorsWriter(file, [decl[0]!, decl[0]!]));
    assertBad(file, /tensor "a": byteLength 7 but F32 shape \[2\] needs 8/, () => new SafetensorsWriter(file, [{ ...decl[0]!, byteLength: 7 }]));
    assertBad(file, /"__metadata__" is reserved/, () => new SafetensorsWriter(file, [{ ...decl[1]!, name: '__metadata__' }]));
    assertBad(file, /unsupported dtype "Q4"/, () => new SafetensorsWriter(file, [{ ...decl[1]!, dtype: 'Q4' as DType }]));
    assertBad(file, /shape \[-1\]/, () => new SafetensorsWriter(file, [{ ...decl[1]!, shape: [-1] }]));
  });

  test('a tensor written in slices (a stack of experts) is the same file as written whole', () => {
    const decl: TensorToWrite[] = [
      { name: 'stack', dtype: 'U8', shape: [3, 2], byteLength: 6 },
      { name: 'after', dtype: 'U8', shape: [1], byteLength: 1 },
    ];
    const whole = join(tmp.dir, 'whole.safetensors');
    let w = new SafetensorsWriter(whole, decl);
    w.write('stack', new Uint8Array([1, 2, 3, 4, 5, 6]));
    w.write('after', new Uint8Array([9]));
    w.close();
    const sliced = join(tmp.dir, 'sliced.safetensors');
    w = new SafetensorsWriter(sliced, decl);
    for (const slice of [[1, 2], [3, 4], [5, 6]]) w.writePart('stack', new Uint8Array(slice));
    w.write('after', new Uint8Array([9]));
    w.close();
    assert.deepEqual(readFileSync(sliced), readFileSync(whole));
    w = new SafetensorsWriter(sliced, decl);
    w.writePart('stack', new Uint8Array(4));
    assertBad(sliced, /tensor "stack": got 8 bytes, declared 6/, () => w.writePart('stack', new Uint8Array(4)));
    w = new SafetensorsWriter(sliced, decl);
    w.writePart('stack', new Uint8Array(2));
    assertBad(sliced, /closed after 0 of 2 tensors; next missing is "stack"/, () => w.close());
  });

  test('real MLX loads our file; our header JSON reproduces MLX\'s own header byte for byte', { skip: process.env.SWAN_SKIP_PYTHON ? 'SWAN_SKIP_PYTHON set' : false }, () => {
    const ours = join(tmp.dir, 'ours.safetensors');
    const theirs = join(tmp.dir, 'theirs.safetensors');
    const s = writeSample(ours, true);
    const script = join(tmp.dir, 'check.py');
    writeFileSync(
      script,
      [
        'import json, sys, numpy as np, mlx.core as mx',
        'arrays, meta = mx.load(sys.argv[1], return_metadata=True)',
        'def raw(a):',
        '    if a.dtype == mx.bfloat16: a = a.view(mx.uint16)',
        '    return np.array(a).tobytes().hex()',
        'out = {"metadata": meta, "tensors": {k: [str(v.dtype), list(v.shape), raw(v)] for k, v in arrays.items()}}',
        'mx.save_safetensors(sys.argv[2], arrays, metadata={"format": "mlx"})',
        'print(json.dumps(out))',
      ].join('\n'),
    );
    const got = JSON.parse(runPython(script, [ours, theirs], { timeoutMs: 120_000 })) as {
      metadata: Record<string, string>;
      tensors: Record<string, [string, number[], string]>;
    };
    assert.deepEqual(got.metadata, { format: 'mlx' });
    const mlxDtype: Record<string, string> = {
      BF16: 'mlx.core.bfloat16', F32: 'mlx.core.float32', F16: 'mlx.core.float16', U32: 'mlx.core.uint32', U8: 'mlx.core.uint8',
      I8: 'mlx.core.int8', BOOL: 'mlx.core.bool', I64: 'mlx.core.int64', I32: 'mlx.core.int32', U16: 'mlx.core.uint16',
    };
    assert.deepEqual(Object.keys(got.tensors).sort(), s.decl.map((t) => t.name).sort());
    for (const t of s.decl) {
      const [dt, shape, hex] = got.tensors[t.name]!;
      assert.equal(dt, mlxDtype[t.dtype], t.name);
      assert.deepEqual(shape, t.shape, t.name);
      assert.equal(hex, Buffer.from(s.bytes.get(t.name)!).toString('hex'), t.name);
    }
    // MLX's own file: our reader accepts it, and our serialiser, given MLX's offsets, gives its header.
    const h = readSafetensorsHeader(theirs);
    const raw = readFileSync(theirs);
    const mlxHeader = raw.subarray(8, h.dataStart).toString('utf8');
    const entries = h.tensors.map((t) => ({ ...t, begin: t.offset - h.dataStart, end: t.offset - h.dataStart + t.byteLength }));
    assert.equal(safetensorsHeaderJson(entries), mlxHeader);
    for (const t of h.tensors) assert.deepEqual(new Uint8Array(readTensorBytes(t)), s.bytes.get(t.name), t.name);
  });
});
