/**
 * `JSON.stringify(value, null, 2)` written piece by piece: the same bytes, without ever holding the
 * whole document in one string (V8 caps a string at about 512 MiB; a manifest of a million tensors
 * would need more). For plain data: objects, arrays, strings, numbers, booleans, null, undefined.
 */
import { writeSync } from 'node:fs';

/** Containers this deep or deeper are small (a manifest's tensor entry): one JSON.stringify each. */
const STREAM_DEPTH = 4;
/** Pieces are handed to `write` in chunks of about this many characters. */
const CHUNK = 1 << 20;

/** JSON.stringify leaves these out of objects and writes null for them in arrays. */
function omitted(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/** The value JSON.stringify serializes for `v` under `key` (its toJSON's result, if it has one). */
function resolved(v: unknown, key: string): unknown {
  const f = v !== null && typeof v === 'object' ? (v as { toJSON?: unknown }).toJSON : undefined;
  return typeof f === 'function' ? (f as (k: string) => unknown).call(v, key) : v;
}

/** Serialized whole by JSON.stringify: primitives, boxed primitives. */
function atomic(v: unknown): boolean {
  return v === null || typeof v !== 'object' || v instanceof Number || v instanceof String || v instanceof Boolean;
}

/** Write `JSON.stringify(value, null, 2)` to `write` in chunks; nothing is written for an omitted value. */
export function writePrettyJson(value: unknown, write: (chunk: string) => void): void {
  let buf = '';
  const out = (s: string): void => {
    buf += s;
    if (buf.length >= CHUNK) {
      write(buf);
      buf = '';
    }
  };
  // `v` is already resolved (toJSON applied) and not omitted.
  const emit = (v: unknown, indent: string, depth: number): void => {
    if (atomic(v) || depth >= STREAM_DEPTH) {
      // JSON.stringify's newlines are all structural (strings escape theirs), so re-indenting is exact.
      const s = JSON.stringify(v, null, 2);
      if (s !== undefined) out(indent === '' ? s : s.replace(/\n/g, `\n${indent}`));
      return;
    }
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      if (v.length === 0) return out('[]');
      out('[');
      for (let i = 0; i < v.length; i++) {
        out(i === 0 ? `\n${inner}` : `,\n${inner}`);
        const item = resolved(v[i], String(i));
        if (omitted(item)) out('null');
        else emit(item, inner, depth + 1);
      }
      return out(`\n${indent}]`);
    }
    let first = true;
    for (const key of Object.keys(v as object)) {
      const child = resolved((v as Record<string, unknown>)[key], key);
      if (omitted(child)) continue;
      out(`${first ? '{' : ','}\n${inner}${JSON.stringify(key)}: `);
      first = false;
      emit(child, inner, depth + 1);
    }
    out(first ? '{}' : `\n${indent}}`);
  };
  const root = resolved(value, '');
  if (!omitted(root)) emit(root, '', 0);
  if (buf) write(buf);
}

/** Write `JSON.stringify(value, null, 2) + '\n'` to an open file descriptor. */
export function writePrettyJsonFd(fd: number, value: unknown): void {
  const put = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    for (let w = 0; w < b.byteLength; ) w += writeSync(fd, b, w, b.byteLength - w);
  };
  writePrettyJson(value, put);
  put('\n');
}
