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
import { decodeToF32 } from './float.js';
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

/** Error messages must stay on one line, whatever the input (tensor names, JSON parser messages). */
export function oneLine(s: string, max = 200): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** A name quoted for an error message: JSON escapes keep control characters off the line. */
export function q(name: string): string {
  return oneLine(JSON.stringify(name));
}

/** Number of elements; throws on a shape that is not a list of non-negative safe integers. */
export function shapeElements(shape: unknown, fail: (problem: string) => never): number {
  if (!Array.isArray(shape)) return fail(`shape is ${describe(shape)}, not an array`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      return fail(`shape ${oneLine(JSON.stringify(shape))} has a dimension that is not a non-negative integer`);
    }
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
    const dataStart = 8 + headerLen;
    return parseHeader(path, headerBytes, dataStart, size - dataStart);
  } finally {
    closeSync(fd);
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

function readElementsF32(info: TensorInfo, first: number, count: number): Float32Array {
  const dtype = floatDType(info);
  const size = DTYPE_BYTES[dtype];
  const out = new Float32Array(count);
  if (count === 0) return out;
  const position = info.offset + first * size;
  if (dtype === 'F32') {
    // Read straight into the result: no intermediate copy (little-endian host assumed, as everywhere).
    readRange(info, position, new Uint8Array(out.buffer));
    return out;
  }
  const raw = new Uint8Array(count * 2);
  readRange(info, position, raw);
  return decodeToF32(raw, dtype, out);
}
