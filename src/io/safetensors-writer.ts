/**
 * Streaming safetensors writer in MLX's layout (MLX's mlx/io/safetensors.cpp, what mx.save_safetensors writes):
 * compact JSON header, keys sorted bytewise (so "__metadata__" falls among tensor names), entry keys
 * in the order data_offsets, dtype, shape, no alignment padding. The header is written first from
 * the declared tensor list; then each tensor's bytes in declared order, so only one tensor is ever
 * in memory. Data order need not be sorted order: offsets point wherever each tensor lands.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { SwanError } from '../errors.js';
import { DTYPE_BYTES, IO_CHUNK, isDType, q, shapeElements, type DType } from './safetensors.js';

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
}

export interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Offsets relative to the data region. */
  begin: number;
  end: number;
}

const DEFAULT_METADATA: Record<string, string> = { format: 'mlx' };

/**
 * `items` sorted by key in bytewise (UTF-8) order, as std::map<std::string> sorts (differs from JS
 * UTF-16 order above U+FFFF): each key encoded once, not once per comparison.
 */
function sortBytewise<T>(items: T[], key: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, bytes: Buffer.from(key(item), 'utf8') }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map((e) => e.item);
}

/**
 * The MLX header JSON. `metadata` defaults to {"format":"mlx"}; an empty object gives
 * "__metadata__":null, which is what MLX writes when there is no metadata.
 * JSON.stringify escapes strings the way nlohmann::json dump() does for valid UTF-8.
 */
export function safetensorsHeaderJson(tensors: HeaderEntry[], metadata: Record<string, string> = DEFAULT_METADATA): string {
  const parts: [string, string][] = [];
  const metaKeys = sortBytewise(Object.keys(metadata), (k) => k);
  const meta =
    metaKeys.length === 0 ? 'null' : `{${metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`;
  parts.push(['__metadata__', meta]);
  for (const t of tensors) {
    parts.push([
      t.name,
      `{"data_offsets":[${t.begin},${t.end}],"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}]}`,
    ]);
  }
  return `{${sortBytewise(parts, (p) => p[0]).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

export class SafetensorsWriter {
  readonly file: string;
  private fd: number | undefined;
  private next = 0;
  /** Bytes of the next declared tensor already written by writePart. */
  private partial = 0;
  private position: number;
  private readonly tensors: TensorToWrite[];

  constructor(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>) {
    this.file = resolve(file);
    const fail = (problem: string): never => {
      throw new SwanError(this.file, problem);
    };
    const seen = new Set<string>();
    const entries: HeaderEntry[] = [];
    let offset = 0;
    for (const t of tensors) {
      // Quoted only for a message: hundreds of names per shard.
      const n = (): string => q(t.name);
      if (t.name === '__metadata__') fail(`tensor name ${n()} is reserved`);
      if (seen.has(t.name)) fail(`tensor ${n()} declared twice`);
      seen.add(t.name);
      if (!isDType(t.dtype)) fail(`tensor ${n()}: unsupported dtype ${q(String(t.dtype))}`);
      const want = shapeElements(t.shape, (p) => fail(`tensor ${n()}: ${p}`)) * DTYPE_BYTES[t.dtype];
      if (t.byteLength !== want) {
        fail(`tensor ${n()}: byteLength ${t.byteLength} but ${t.dtype} shape [${t.shape.join(',')}] needs ${want}`);
      }
      entries.push({ name: t.name, dtype: t.dtype, shape: t.shape, begin: offset, end: offset + want });
      offset += want;
    }
    if (metadata) {
      for (const [k, v] of Object.entries(metadata)) {
        if (typeof v !== 'string') fail(`metadata value for ${q(k)} is not a string`);
      }
    }
    this.tensors = tensors.map((t) => ({ ...t, shape: t.shape.slice() }));
    const header = Buffer.from(safetensorsHeaderJson(entries, metadata), 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.byteLength));
    this.fd = openSync(this.file, 'w');
    this.position = 0;
    try {
      this.writeAll(len);
      this.writeAll(header);
    } catch (e) {
      closeSync(this.fd);
      this.fd = undefined;
      throw e;
    }
  }

  /** Write the next declared tensor's bytes; name and length must match the declaration. */
  write(name: string, bytes: Uint8Array): void {
    if (this.fd === undefined) throw new SwanError(this.file, `write of tensor ${q(name)} after close or failure`);
    const want = this.tensors[this.next];
    if (!want) this.abandon(`tensor ${q(name)} written but all ${this.tensors.length} declared tensors are already written`);
    else if (want.name !== name || this.partial > 0) this.abandon(`tensor ${q(name)} written out of order: expected ${q(want.name)} next`);
    else if (bytes.byteLength !== want.byteLength) {
      this.abandon(`tensor ${q(name)}: got ${bytes.byteLength} bytes, declared ${want.byteLength}`);
    }
    this.writeAll(bytes);
    this.next++;
  }

  /**
   * Write the next slice of the next declared tensor (a stacked tensor streamed expert by expert):
   * the tensor is complete once its declared length is written.
   */
  writePart(name: string, bytes: Uint8Array): void {
    if (this.fd === undefined) throw new SwanError(this.file, `write of tensor ${q(name)} after close or failure`);
    const want = this.tensors[this.next];
    if (!want) this.abandon(`tensor ${q(name)} written but all ${this.tensors.length} declared tensors are already written`);
    else if (want.name !== name) this.abandon(`tensor ${q(name)} written out of order: expected ${q(want.name)} next`);
    else if (this.partial + bytes.byteLength > want.byteLength) {
      this.abandon(`tensor ${q(name)}: got ${this.partial + bytes.byteLength} bytes, declared ${want.byteLength}`);
    }
    this.writeAll(bytes);
    this.partial += bytes.byteLength;
    if (this.partial === want!.byteLength) {
      this.next++;
      this.partial = 0;
    }
  }

  /** Close the file; throws if any declared tensor was not written. */
  close(): void {
    if (this.fd === undefined) return;
    if (this.next !== this.tensors.length) {
      this.abandon(`closed after ${this.next} of ${this.tensors.length} tensors; next missing is ${q(this.tensors[this.next]!.name)}`);
    }
    closeSync(this.fd);
    this.fd = undefined;
  }

  /** Close the descriptor and throw: a half-written file is useless, the caller discards it. */
  private abandon(problem: string): never {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    throw new SwanError(this.file, problem);
  }

  private writeAll(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.byteLength) {
      done += writeSync(this.fd!, bytes, done, Math.min(bytes.byteLength - done, IO_CHUNK), this.position + done);
    }
    this.position += bytes.byteLength;
  }
}
