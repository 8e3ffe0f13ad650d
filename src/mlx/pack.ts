/**
 * MLX bit packing of quantization codes into uint32 words, as MLX's quantize kernels write them.
 *
 * One rule covers every width: each row is an LSB-first bit stream; element i occupies stream bits
 * [i·bits, (i+1)·bits), stream bit k is bit (k mod 32) of word (k div 32). Codes of 3, 5 and 6 bits
 * straddle word boundaries; nothing is padded. Rows are a multiple of 32 elements, so every row
 * (and every quantization group) starts on a word boundary and the rows are simply concatenated.
 */

import { AFFINE_BITS } from '../format.js';

function checkPackArgs(fn: string, bits: number, rowLength: number): void {
  if (!AFFINE_BITS.includes(bits)) throw new Error(`${fn}: bits must be one of ${AFFINE_BITS.join(', ')} (got ${bits})`);
  if (!Number.isInteger(rowLength) || rowLength <= 0 || rowLength % 32 !== 0) {
    throw new Error(`${fn}: rowLength must be a positive multiple of 32 (got ${rowLength})`);
  }
}

/** uint32 words per packed row of `rowLength` codes. */
export function packedWordsPerRow(rowLength: number, bits: number): number {
  return (rowLength * bits) / 32;
}

/**
 * Pack codes (row-major, rows of `rowLength`) into MLX's uint32 layout.
 * Throws if a code does not fit in `bits`.
 */
export function packBits(codes: Uint8Array, bits: number, rowLength: number): Uint32Array {
  checkPackArgs('packBits', bits, rowLength);
  if (codes.length % rowLength !== 0) {
    throw new Error(`packBits: ${codes.length} codes is not a whole number of rows of ${rowLength}`);
  }
  const out = new Uint32Array((codes.length * bits) / 32);
  const limit = 1 << bits;
  // The whole tensor is one continuous stream because every row ends on a word boundary.
  let acc = 0;
  let filled = 0;
  let o = 0;
  for (let i = 0; i < codes.length; i++) {
    const q = codes[i]!;
    if (q >= limit) throw new Error(`packBits: code ${q} at index ${i} does not fit in ${bits} bits`);
    acc |= q << filled;
    filled += bits;
    if (filled >= 32) {
      out[o++] = acc;
      filled -= 32;
      // The high `filled` bits of q did not fit in the word just written.
      acc = filled > 0 ? q >>> (bits - filled) : 0;
    }
  }
  return out;
}

/** Inverse of packBits: one code per byte, row-major. */
export function unpackBits(packed: Uint32Array, bits: number, rowLength: number): Uint8Array {
  checkPackArgs('unpackBits', bits, rowLength);
  const wordsPerRow = packedWordsPerRow(rowLength, bits);
  if (packed.length % wordsPerRow !== 0) {
    throw new Error(`unpackBits: ${packed.length} words is not a whole number of rows of ${wordsPerRow} words`);
  }
  const n = (packed.length * 32) / bits;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = readCode(packed, i, bits);
  return out;
}

/** Code i of a packed stream (stream bits [i·bits, (i+1)·bits)). */
export function readCode(packed: Uint32Array, i: number, bits: number): number {
  const k = i * bits;
  const word = k >>> 5;
  const off = k & 31;
  let v = packed[word]! >>> off;
  if (off + bits > 32) v |= packed[word + 1]! << (32 - off);
  return v & ((1 << bits) - 1);
}
