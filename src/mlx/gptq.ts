/**
 * `--rounding gptq`: MLX affine codes chosen by GPTQ (Frantar et al. 2022) under a layer's input
 * second moment H = E[x xᵀ] from `swan imatrix --covariance` (the model's own samples or a user
 * text). Stored as ordinary MLX affine weights, scales and biases: only which codes, scales and
 * biases are written changes, never the format.
 *
 * Each row of W is rounded column by column; the error of a column, divided by U[j, j], is fed
 * forward to the row's later columns through U[j, j+1:], where U is the upper Cholesky factor of
 * (H + damp·mean(diag H)·I)⁻¹. That is the least-squares correction of ‖(W − Ŵ) X‖² for the
 * columns not yet rounded. Lazy batches of GPTQ_BLOCK columns: within a block the feed-forward is a
 * row update, past it one GEMM per block. A group's scale and bias are fixed when its first column
 * is reached, from the error-updated weights, by `--rounding search` (rounding-search.ts: swan's step
 * search under the column weights where it beats MLX's RTN); every weight then takes the code whose
 * exact decode is nearest.
 *
 * Per tensor, GPTQ replaces `--rounding search` only where its output error tr(E H Eᵀ), E = W − Ŵ
 * under the undamped H, is strictly lower: on a calibration covariance GPTQ can lose to the search,
 * e.g. where the search recovers a checkpoint's own quantization grid (docs/allocation.md §8).
 */
import type { FloatDType } from '../io/float.js';
import { cachedDecode, checkAffineArgs, dequantizeAffine, dtypeKind, nextDecodeStamp, roundTo, type AffineQuantized, type QuantRules } from './affine.js';
import { packBits } from './pack.js';
import { nearestCode, quantizeAffineSearch, type SearchBackend } from './rounding-search.js';

/**
 * Damping of H, as a fraction of its mean diagonal. On SmolLM2 (H from 2,318 self tokens) 0.1 and
 * 1 gave the lowest own-sample KL, 0.01 clearly more (docs/allocation.md §8, GPTQ rows).
 */
export const GPTQ_DAMP = 0.1;
/** Columns per lazy batch: a multiple of every affine group size, so no group straddles two. */
export const GPTQ_BLOCK = 128;
/** Rows per GEMM of the lazy update and of the output error: their work arrays stay this many rows, not the tensor's. */
const ROW_CHUNK = 4096;

export interface GptqOptions {
  bits: number;
  groupSize: number;
  /** Storage dtype of `w` and of the scales and biases. */
  dtype: FloatDType;
  rules?: QuantRules;
  /** Column weights of each group's step search (the imatrix's capped diagonal, input-weights.ts). */
  colWeights?: ArrayLike<number>;
}

/** The one kernel GPTQ needs here (src/kernels/backend.ts KernelBackend.gemm: C = op(A)·op(B)). */
export interface GemmBackend {
  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void;
}

/** quantizeAffineGptq's result; besides `quantized`, what the manifest records of it (src/manifest/build.ts GptqChoice). */
export interface GptqOutput {
  quantized: AffineQuantized;
  /** Whether GPTQ's codes were kept (else the search's). */
  kept: boolean;
  /** tr(E H Eᵀ) of `quantized`. */
  outputError: number;
  /** tr(E H Eᵀ) of `--rounding search` on the same tensor (what GPTQ had to beat). */
  searchOutputError: number;
}

/**
 * GPTQ of a row-major [rows, cols] `w` (values of the storage dtype) given U, the upper Cholesky
 * factor of the damped H⁻¹ (src/kernels/linalg.ts inverseCholeskyUpperOn, with GPTQ_DAMP):
 * codes, scales and biases (exact in the dtype) and the decoded weights. Besides `w`, memory holds
 * one float copy of the tensor (the error-updated weights, each replaced by its decoded value once
 * rounded), its codes, and work arrays of at most ROW_CHUNK rows.
 */
export function gptqRound(w: Float32Array, rows: number, cols: number, u: Float32Array, opts: GptqOptions, backend: GemmBackend & SearchBackend): AffineQuantized & { decoded: Float32Array } {
  const { bits, groupSize: g, colWeights: cw } = opts;
  const kind = dtypeKind(opts.dtype);
  const n = (1 << bits) - 1;
  // The error-updated weights; column i of a row holds its decoded value once rounded.
  const work = Float32Array.from(w);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array((rows * cols) / g);
  const biases = new Float32Array((rows * cols) / g);
  const errs = new Float32Array(rows * GPTQ_BLOCK);
  const group = new Float32Array(rows * g);
  for (let b0 = 0; b0 < cols; b0 += GPTQ_BLOCK) {
    const b1 = Math.min(b0 + GPTQ_BLOCK, cols);
    const width = b1 - b0;
    for (let c0 = b0; c0 < b1; c0 += g) {
      // Every row's scale and bias of this group at once, from the error-updated weights: the
      // search's choice (never worse than MLX's RTN on the group), on the backend's native search.
      for (let r = 0; r < rows; r++) group.set(work.subarray(r * cols + c0, r * cols + c0 + g), r * g);
      const colWeights = cw && Float64Array.from({ length: g }, (_, j) => cw[c0 + j]!);
      const p = quantizeAffineSearch(group, rows, g, { bits, groupSize: g, dtype: opts.dtype, rules: opts.rules, colWeights }, backend);
      for (let r = 0; r < rows; r++) {
        const ro = r * cols;
        const s = roundTo(p.scales[r]!, kind);
        const b = roundTo(p.biases[r]!, kind);
        scales[(ro + c0) / g] = s;
        biases[(ro + c0) / g] = b;
        const stamp = nextDecodeStamp();
        for (let i = c0; i < c0 + g; i++) {
          const x = work[ro + i]!;
          const q = nearestCode(x, s, b, n, kind, stamp);
          const d = cachedDecode(stamp, s, q, b, kind);
          codes[ro + i] = q;
          work[ro + i] = d;
          // The error, fed forward to the row's later columns of this block (the rest after it).
          const e = (x - d) / u[i * cols + i]!;
          errs[r * width + (i - b0)] = e;
          if (e === 0) continue;
          const ui = i * cols;
          for (let k = i + 1; k < b1; k++) work[ro + k] = work[ro + k]! - e * u[ui + k]!;
        }
      }
    }
    if (b1 === cols) break;
    // The block's errors into every later column at once: work[:, b1:] −= errs · U[b0:b1, b1:].
    const rest = cols - b1;
    const ub = new Float32Array(width * rest);
    for (let i = 0; i < width; i++) ub.set(u.subarray((b0 + i) * cols + b1, (b0 + i + 1) * cols), i * rest);
    const upd = new Float32Array(Math.min(rows, ROW_CHUNK) * rest);
    for (let r0 = 0; r0 < rows; r0 += ROW_CHUNK) {
      const n = Math.min(ROW_CHUNK, rows - r0);
      backend.gemm(false, false, n, rest, width, errs.subarray(r0 * width, (r0 + n) * width), ub, upd.subarray(0, n * rest));
      for (let r = 0; r < n; r++) {
        const ro = (r0 + r) * cols + b1;
        const uo = r * rest;
        for (let k = 0; k < rest; k++) work[ro + k] = work[ro + k]! - upd[uo + k]!;
      }
    }
  }
  return { wq: packBits(codes, bits, cols), scales, biases, decoded: work };
}

/** tr(E H Eᵀ) = Σ_r e_r H e_rᵀ for E = w − decoded ([rows, cols]) and H [cols, cols], ROW_CHUNK rows at a time. */
export function outputError(w: Float32Array, decoded: Float32Array, rows: number, cols: number, h: Float32Array, backend: GemmBackend): number {
  const chunk = Math.min(rows, ROW_CHUNK);
  const e = new Float32Array(chunk * cols);
  const eh = new Float32Array(chunk * cols);
  let sum = 0;
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    const off = r0 * cols;
    for (let i = 0; i < n * cols; i++) e[i] = w[off + i]! - decoded[off + i]!;
    backend.gemm(false, false, n, cols, cols, e.subarray(0, n * cols), h, eh.subarray(0, n * cols));
    for (let i = 0; i < n * cols; i++) sum += e[i]! * eh[i]!;
  }
  return sum;
}

/**
 * `--rounding gptq` of one tensor: GPTQ under `h` (E[x xᵀ], [cols, cols] float32; `u` its damped
 * inverse factor, null when it has none) where its tr(E H Eᵀ) is strictly below `--rounding
 * search`'s, else the search's result. Tensors with non-finite values keep the search's too.
 */
export function quantizeAffineGptq(w: Float32Array, rows: number, cols: number, h: Float32Array, u: Float32Array | null, opts: GptqOptions, backend: GemmBackend & SearchBackend): GptqOutput {
  checkAffineArgs('quantizeAffineGptq', rows, cols, opts.bits, opts.groupSize);
  if (w.length !== rows * cols) throw new Error(`quantizeAffineGptq: w has ${w.length} elements, expected ${rows}×${cols}`);
  if (h.length !== cols * cols) throw new Error(`quantizeAffineGptq: H has ${h.length} elements, expected ${cols}×${cols}`);
  const search = quantizeAffineSearch(w, rows, cols, { bits: opts.bits, groupSize: opts.groupSize, dtype: opts.dtype, rules: opts.rules, colWeights: opts.colWeights }, backend);
  const searchDecoded = dequantizeAffine(search.wq, search.scales, search.biases, rows, cols, opts.bits, opts.groupSize, opts.dtype);
  const searchOutputError = outputError(w, searchDecoded, rows, cols, h, backend);
  const searchKept = { quantized: { wq: search.wq, scales: search.scales, biases: search.biases }, kept: false, outputError: searchOutputError, searchOutputError };
  if (!u || !w.every(Number.isFinite)) return searchKept;
  const { decoded, ...quantized } = gptqRound(w, rows, cols, u, opts, backend);
  const gptqOutputError = outputError(w, decoded, rows, cols, h, backend);
  if (!(gptqOutputError < searchOutputError)) return searchKept;
  return { quantized, kept: true, outputError: gptqOutputError, searchOutputError };
}
