import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFromF32, type FloatDType } from '../../src/io/float.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { CLI } from './paths.js';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built `swan` CLI. */
export function swan(args: string[], opts: { cwd?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Copy a model directory (flat) so a test can damage the copy. */
export function copyModel(src: string, dst: string): string {
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dst, f));
  return dst;
}

/** Rewrite the JSON header of a safetensors file, keeping its data bytes. */
export function rewriteHeader(file: string, edit: (h: Record<string, any>) => void): void {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  const text = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  writeFileSync(file, Buffer.concat([len, text, buf.subarray(8 + n)]));
}

/** Overwrite elements `index`… of tensor `name` in safetensors `file` with `values` (in the tensor's dtype). */
export function poisonTensor(file: string, name: string, values: number[], index = 0): void {
  const t = readSafetensorsHeader(file).tensors.find((x) => x.name === name);
  if (!t) throw new Error(`poisonTensor: no tensor ${name} in ${file}`);
  const bytes = encodeFromF32(new Float32Array(values), t.dtype as FloatDType);
  writeTensorBytes(file, name, bytes, (index * bytes.byteLength) / values.length);
}

/** Overwrite raw bytes of tensor `name` in a safetensors file, `at` bytes into its data. */
export function writeTensorBytes(file: string, name: string, bytes: Uint8Array, at: number): void {
  const t = readSafetensorsHeader(file).tensors.find((x) => x.name === name);
  if (!t) throw new Error(`writeTensorBytes: no tensor ${name} in ${file}`);
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.byteLength, t.offset + at);
  } finally {
    closeSync(fd);
  }
}
