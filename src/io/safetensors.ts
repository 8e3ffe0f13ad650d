/**
 * safetensors reader: strict header validation, then positioned reads of one tensor at a time
 * (never the whole file). Every problem is a one-line SwanError naming the file.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON (may be space-padded), then the
 * data region. Each tensor's data_offsets are relative to the data region, which must be covered
 * exactly: no overlaps, no gaps, no trailing bytes (as the reference Rust implementation requires).
 */
import { closeSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { countNonFinite, decodeToF32, type FloatDType, type NonFiniteCounts } from './float.js';
import { openRegular } from './input-file.js';

export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, x);
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute path of the file holding the tensor. */
  file: string;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  /** In data-offset order. */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  /** Absolute offset of the data region (8 + header length). */
  dataStart: number;
}

/** The reference implementation's limit; anything larger is a corrupt or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000;

/*
 * What any real checkpoint stays far below (docs/reliability.md "Inputs"): a header beyond them is
 * refused before it is parsed, so a hostile header under MAX_HEADER_BYTES cannot make swan build
 * millions of objects, megabyte names or million-entry shapes.
 */
/** Tensors per file, and per model (all shards together). */
export const MAX_TENSORS = 262_144;
/** Bytes of a tensor name (UTF-8, as decoded from the header's JSON). */
export const MAX_NAME_BYTES = 1024;
/** Dimensions of a shape. */
export const MAX_RANK = 8;
/** One dimension: MLX stores shapes as int32. */
export const MAX_DIM = 2 ** 31 - 1;
/** Fields of one tensor entry or of __metadata__. */
export const MAX_FIELDS = 1024;

/** Error messages must stay on one line, whatever the input (tensor names, JSON parser messages). */
export function oneLine(s: string, max = 200): string {
  // Cut first: a hostile 100 MB string costs no more than a short one.
  const t = (s.length > 4 * max ? s.slice(0, 4 * max) : s).replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** A name quoted for an error message: JSON escapes keep control characters off the line. */
export function q(name: string): string {
  return oneLine(JSON.stringify(name.length > 1000 ? name.slice(0, 1000) : name));
}

/** Number of elements; throws on a shape that is not a list of at most MAX_RANK integers in [0, MAX_DIM]. */
export function shapeElements(shape: unknown, fail: (problem: string) => never): number {
  if (!Array.isArray(shape)) return fail(`shape is ${describe(shape)}, not an array`);
  if (shape.length > MAX_RANK) return fail(`shape has ${shape.length} dimensions, over the limit of ${MAX_RANK}`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      return fail(`shape ${oneLine(JSON.stringify(shape))} has a dimension that is not a non-negative integer`);
    }
    if (d > MAX_DIM) return fail(`shape ${JSON.stringify(shape)} has a dimension over the limit of ${MAX_DIM} (2^31-1)`);
    n *= d;
    if (!Number.isSafeInteger(n)) return fail(`shape ${oneLine(JSON.stringify(shape))} is too large`);
  }
  return n;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? 'an object' : `a ${typeof x}`;
}

/** Largest single read/write call (fs limits one call to < 2 GiB). */
export const IO_CHUNK = 1 << 30;

/** Read exactly `length` bytes at `position` into `dst`, looping over short reads. */
function readExactly(fd: number, dst: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < dst.byteLength) {
    // fs.read refuses lengths ≥ 2 GiB, so big tensors are read in chunks.
    const n = readSync(fd, dst, done, Math.min(dst.byteLength - done, IO_CHUNK), position + done);
    if (n === 0) {
      throw new SwanError(file, `truncated: wanted ${dst.byteLength} bytes at offset ${position}, got ${done}`);
    }
    done += n;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parse and strictly validate a safetensors header. Reads only the header bytes. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const path = resolve(file);
  const { fd, size } = openRegular(path);
  try {
    const fail = (problem: string): never => {
      throw new SwanError(path, problem);
    };
    if (size < 8) fail(`file is ${size} bytes, too short for the 8-byte header length (truncated?)`);
    const lenBuf = Buffer.alloc(8);
    readExactly(fd, lenBuf, 0, path);
    const big = lenBuf.readBigUInt64LE(0);
    if (big > BigInt(MAX_HEADER_BYTES)) fail(`header length ${big} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file?)`);
    const headerLen = Number(big);
    if (8 + headerLen > size) fail(`header length ${headerLen} runs past the end of the file (${size} bytes; truncated?)`);
    const headerBytes = Buffer.alloc(headerLen);
    readExactly(fd, headerBytes, 8, path);
    checkHeaderLimits(headerBytes, fail);
    const dataStart = 8 + headerLen;
    return parseHeader(path, headerBytes, dataStart, size - dataStart);
  } finally {
    closeSync(fd);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const lenient = new TextDecoder('utf-8');

/** A JSON key as written in the header bytes [start, end), decoded for a message. */
function keyText(b: Uint8Array, start: number, end: number): string {
  const raw = lenient.decode(b.subarray(start, end));
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

/** UTF-8 bytes of the code unit written as \uXXXX at b[i..i+3] (a surrogate pair counts 2 + 2). */
function escapedBytes(b: Uint8Array, i: number): number {
  const cu = parseInt(String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!), 16);
  return !(cu >= 0) || cu < 0x80 ? 1 : cu < 0x800 || (cu >= 0xd800 && cu < 0xe000) ? 2 : 3;
}

/**
 * The header's size limits (MAX_TENSORS entries, MAX_NAME_BYTES names, MAX_FIELDS fields per entry,
 * MAX_RANK entries per array, three levels of nesting), checked on the raw bytes before JSON.parse
 * builds anything: one pass, no allocation. Anything else is left to the parse and the checks after
 * it, so malformed JSON still gets the parser's message.
 */
function checkHeaderLimits(b: Uint8Array, fail: (problem: string) => never): void {
  // Per depth (1: the header object, 2: a tensor entry or __metadata__, 3: shape, data_offsets):
  // the number of keys (objects) or values (arrays) seen so far.
  const count = [0, 0, 0, 0];
  const isArray = [false, false, false, false];
  let depth = 0;
  let expectKey = false; // inside an object, before the next key
  let slotFilled = false; // inside an array, the current slot already holds a value
  let key1 = [-1, -1]; // the current tensor name's bytes
  let key2 = [-1, -1]; // the current field name's bytes (shape, data_offsets)
  const where = (): string => {
    if (key1[0]! < 0) return 'header';
    const name = keyText(b, key1[0]!, key1[1]!);
    return name === '__metadata__' ? name : `tensor ${q(name)}`;
  };
  const counted = (): void => {
    const n = ++count[depth]!;
    if (depth === 1 && n > MAX_TENSORS + 1) fail(`header has more than ${MAX_TENSORS} tensors, over the limit of ${MAX_TENSORS} per file`);
    if (depth === 2 && n > MAX_FIELDS) fail(`${where()}: more than ${MAX_FIELDS} fields, over the limit of ${MAX_FIELDS}`);
    if (depth === 3 && n > MAX_RANK) {
      fail(`${where()}: ${q(keyText(b, key2[0]!, key2[1]!))} has more than ${MAX_RANK} entries, over the limit of ${MAX_RANK} (shapes have at most ${MAX_RANK} dimensions)`);
    }
  };
  const value = (): void => {
    if (depth > 0 && isArray[depth] && !slotFilled) {
      slotFilled = true;
      counted();
    }
  };
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const isKey = depth > 0 && !isArray[depth] && expectKey;
      if (!isKey) value();
      const start = i + 1;
      let bytes = 0;
      for (i = start; i < b.length && b[i] !== QUOTE; i++) {
        if (b[i] === BACKSLASH) {
          bytes += b[i + 1] === 0x75 ? escapedBytes(b, i + 2) : 1;
          i += b[i + 1] === 0x75 ? 5 : 1;
        } else bytes++;
        if (isKey && depth === 1 && bytes > MAX_NAME_BYTES) {
          fail(`tensor name ${q(lenient.decode(b.subarray(start, start + 64)))}… is longer than ${MAX_NAME_BYTES} bytes, the limit for names`);
        }
      }
      if (isKey) {
        expectKey = false;
        counted();
        if (depth === 1) key1 = [start, i];
        if (depth === 2) key2 = [start, i];
      }
    } else if (c === 0x7b || c === 0x5b) {
      // { or [
      value();
      if (++depth > 3) fail(`${where()}: nested deeper than a safetensors header (3 levels)`);
      isArray[depth] = c === 0x5b;
      count[depth] = 0;
      expectKey = c === 0x7b;
      slotFilled = false;
    } else if (c === 0x7d || c === 0x5d) {
      // } or ]: the closed container fills its parent's slot
      if (--depth < 0) return; // unbalanced: JSON.parse reports it
      if (depth === 1 && !isArray[1]) key2 = [-1, -1];
      if (depth === 0) key1 = [-1, -1];
      expectKey = false;
      slotFilled = true;
    } else if (c === 0x2c) {
      // ,
      expectKey = depth > 0 && !isArray[depth];
      slotFilled = false;
    } else if (c !== 0x3a && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      value(); // a number or literal; only its first byte counts
    }
  }
}

function parseHeader(path: string, headerBytes: Uint8Array, dataStart: number, dataSize: number): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new SwanError(path, problem);
  };
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${oneLine((e as Error).message, 120)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail(`header is ${describe(json)}, not a JSON object`);
  }

  let metadata: Record<string, string> = {};
  const tensors: (TensorInfo & { begin: number; end: number })[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, fail);
      continue;
    }
    const t = q(name);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      fail(`tensor ${t}: entry is ${describe(entry)}, not an object`);
    }
    const e = entry as Record<string, unknown>;
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      if (!(key in e)) fail(`tensor ${t}: missing "${key}"`);
    }
    if (typeof e.dtype !== 'string') fail(`tensor ${t}: dtype is ${describe(e.dtype)}, not a string`);
    if (!isDType(e.dtype)) fail(`tensor ${t}: unsupported dtype ${q(e.dtype as string)}`);
    const dtype = e.dtype as DType;
    const elements = shapeElements(e.shape, (p) => fail(`tensor ${t}: ${p}`));
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`tensor ${t}: data_offsets must be two non-negative integers [begin, end], got ${oneLine(JSON.stringify(offs), 80)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail(`tensor ${t}: data_offsets begin ${begin} > end ${end}`);
    const want = elements * DTYPE_BYTES[dtype];
    if (end - begin !== want) {
      fail(
        `tensor ${t}: data_offsets [${begin},${end}] span ${end - begin} bytes but ${dtype} shape ` +
          `[${(e.shape as number[]).join(',')}] needs ${want}`,
      );
    }
    if (end > dataSize) {
      fail(`tensor ${t}: data_offsets end ${end} is beyond the data region (${dataSize} bytes; truncated?)`);
    }
    if (tensors.length === MAX_TENSORS) fail(`header has more than ${MAX_TENSORS} tensors, over the limit of ${MAX_TENSORS} per file`);
    tensors.push({
      name,
      dtype,
      shape: (e.shape as number[]).slice(),
      file: path,
      offset: dataStart + begin,
      byteLength: end - begin,
      begin,
      end,
    });
  }

  // Coverage: sorted by (begin, end), each tensor must start where the previous one ended.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: string | undefined;
  for (const t of tensors) {
    if (t.begin < cursor) {
      fail(`tensor ${q(t.name)} [${t.begin},${t.end}] overlaps tensor ${q(prev!)} (ends at ${cursor})`);
    }
    if (t.begin > cursor) {
      fail(`gap in the data region: bytes [${cursor},${t.begin}) belong to no tensor (before ${q(t.name)})`);
    }
    cursor = t.end;
    prev = t.name;
  }
  if (cursor !== dataSize) {
    fail(`gap in the data region: ${dataSize - cursor} trailing bytes after the last tensor belong to no tensor`);
  }
  return {
    file: path,
    tensors: tensors.map(({ begin: _b, end: _e, ...info }) => info),
    metadata,
    dataStart,
  };
}

function parseMetadata(entry: unknown, fail: (problem: string) => never): Record<string, string> {
  // MLX writes "__metadata__":null when there is none; the reference reader accepts it.
  if (entry === null) return {};
  if (typeof entry !== 'object' || Array.isArray(entry)) {
    return fail(`__metadata__ is ${describe(entry)}, not an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`__metadata__ value for ${q(k)} is ${describe(v)}, not a string`);
    out[k] = v as string;
  }
  return out;
}

/** Bytes of one tensor, read with a positioned read (the rest of the file is not touched). */
export function readTensorBytes(info: TensorInfo): Buffer {
  const buf = Buffer.allocUnsafeSlow(info.byteLength);
  readRange(info, info.offset, buf);
  return buf;
}

function readRange(info: TensorInfo, position: number, dst: Uint8Array): void {
  const { fd } = openRegular(info.file);
  try {
    readExactly(fd, dst, position, `${info.file}: tensor ${q(info.name)}`);
  } finally {
    closeSync(fd);
  }
}

function floatDType(info: TensorInfo): 'F32' | 'F16' | 'BF16' {
  if (info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16') return info.dtype;
  throw new SwanError(info.file, `tensor ${q(info.name)}: dtype ${info.dtype} cannot be read as float (expected BF16, F16 or F32)`);
}

/** One tensor as float32 (BF16/F16/F32 only). */
export function readTensorF32(info: TensorInfo): Float32Array {
  return readElementsF32(info, 0, info.byteLength / DTYPE_BYTES[info.dtype]);
}

/**
 * One tensor as float32, with its values that are not finite once cast to `target` counted in the
 * decode (decodeToF32's check): no second pass over the weights.
 */
export function readTensorF32Checked(info: TensorInfo, target: FloatDType, into?: ReadBuffers): { data: Float32Array; nonfinite: NonFiniteCounts } {
  const counts: NonFiniteCounts = { nan: 0, inf: 0, overflow: 0 };
  const data = readElementsF32(info, 0, info.byteLength / DTYPE_BYTES[info.dtype], { target, counts }, into);
  return { data, nonfinite: counts };
}

/**
 * Memory one thread reads tensor after tensor into, kept and grown to the largest: a read with it
 * returns a view that is valid until that thread's next read with it. Fresh memory for every
 * tensor costs more than the decode itself (each new page is faulted in and zeroed: about 1 ns per
 * byte on the Linux machine of docs/performance.md, against about 0.5 ns per weight to decode).
 */
export class ReadBuffers {
  private f32 = new ArrayBuffer(0);
  private raw = new ArrayBuffer(0);

  /**
   * `count` float32 values, and room for as many 16-bit ones (contents undefined). A tensor of more
   * than MAX_KEPT_VALUES gets fresh memory, not kept: what stays allocated between tensors is bounded.
   */
  take(count: number): { values: Float32Array; raw16: Uint8Array } {
    if (count > MAX_KEPT_VALUES) return { values: new Float32Array(count), raw16: new Uint8Array(count * 2) };
    if (this.f32.byteLength < count * 4) this.f32 = new ArrayBuffer(count * 4);
    if (this.raw.byteLength < count * 2) this.raw = new ArrayBuffer(count * 2);
    return { values: new Float32Array(this.f32, 0, count), raw16: new Uint8Array(this.raw, 0, count * 2) };
  }
}

/**
 * ReadBuffers keeps at most this many values (96 MiB of float32 and 16-bit memory together): a
 * 4096×4096 linear; not an embedding, which is read once per stage anyway.
 */
export const MAX_KEPT_VALUES = 1 << 24;

let threadBuffers: ReadBuffers | undefined;

/**
 * This thread's ReadBuffers (module state is per thread): every stage of a thread reads into the
 * same memory, one tensor at a time, so it is kept once per thread.
 */
export function threadReadBuffers(): ReadBuffers {
  return (threadBuffers ??= new ReadBuffers());
}

/** Row length (elements) when the tensor is viewed as rows along its first dimension. */
export function rowElements(shape: number[]): number {
  return shape.length <= 1 ? 1 : shape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * Rows [rowStart, rowStart+rowCount) along the first dimension, as float32, for tensors too big to
 * hold whole. A 1-D tensor has one element per row.
 */
export function readTensorRowsF32(info: TensorInfo, rowStart: number, rowCount: number): Float32Array {
  const rows = info.shape.length === 0 ? 1 : info.shape[0]!;
  if (!Number.isSafeInteger(rowStart) || !Number.isSafeInteger(rowCount) || rowStart < 0 || rowCount < 0 || rowStart + rowCount > rows) {
    throw new SwanError(info.file, `tensor ${q(info.name)}: rows [${rowStart},${rowStart + rowCount}) out of range (0..${rows})`);
  }
  const per = rowElements(info.shape);
  return readElementsF32(info, rowStart * per, rowCount * per);
}

function readElementsF32(info: TensorInfo, first: number, count: number, check?: { target: FloatDType; counts: NonFiniteCounts }, into?: ReadBuffers): Float32Array {
  const dtype = floatDType(info);
  const size = DTYPE_BYTES[dtype];
  const reused = into?.take(count);
  const out = reused?.values ?? new Float32Array(count);
  if (count === 0) return out;
  const position = info.offset + first * size;
  if (dtype === 'F32') {
    // Read straight into the result: no intermediate copy (little-endian host assumed, as everywhere).
    const bytes = new Uint8Array(out.buffer, out.byteOffset, count * 4);
    readRange(info, position, bytes);
    if (check) countNonFinite(bytes, dtype, check.target, check.counts);
    return out;
  }
  const raw = reused?.raw16 ?? new Uint8Array(count * 2);
  readRange(info, position, raw);
  return decodeToF32(raw, dtype, out, check);
}
