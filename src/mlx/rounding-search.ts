/**
 * `--rounding search`: per-group scale and bias chosen to minimise the group's squared error, stored
 * as ordinary MLX affine scales/biases (mlx-lm dequantizes them as scale·q + bias, unchanged).
 *
 * Per group, in float64, with the bias fixed at the group's largest-magnitude value (code 0 decodes
 * to it exactly, as in MLX's own RTN: outlier weights are never clipped; a free bias lowers the
 * squared error further but clips outliers, and made the model worse off-distribution in a
 * data-free check, docs/allocation.md):
 *  1. a grid of 11 steps (other end − edge)/(n + δ), δ ∈ [−1, 1] (llama.cpp's make_qkx2_quants
 *     idea): codes from that grid, then the least-squares step for those codes;
 *  2. the best of those, refined by up to four alternating steps (nearest codes ↔ least-squares step, as
 *     HQQ/Lloyd do);
 *  3. the winner's scale and bias are rounded to the storage dtype, each value gets the code whose
 *     exact MLX decode rT(rT(sT·q) + bT) is nearest (neighbours checked: bf16 decode grids are uneven),
 *     and the group's exact error is compared with MLX's own round-to-nearest (its codes, its
 *     dtype-rounded scale/bias, decoded the same way). The search result is kept only when strictly
 *     better, so no group is ever worse than RTN.
 * With column weights (`colWeights`, one per input channel: src/measure/input-weights.ts) every
 * squared error above is weighted by its column's weight — the error seen by inputs of that channel
 * energy — and "never worse" holds for that weighted error.
 */
import type { FloatDType } from '../io/float.js';
import { cachedDecode, checkAffineArgs, checkRules, dtypeKind, nextDecodeStamp, quantizeAffine, roundTo, type AffineQuantized, type QuantRules } from './affine.js';
import { packBits, unpackBits } from './pack.js';

const GRID_STEPS = 10;
const REFINE_STEPS = 4;

export interface SearchStats {
  /** Σ squared error of the search result (never above rtnErr, group by group); column-weighted with colWeights. */
  searchErr: number;
  /** Σ squared error of MLX round-to-nearest on the same groups (weighted likewise). */
  rtnErr: number;
  /** Σ w² (weighted likewise). */
  energy: number;
  /** The same three sums unweighted (equal to the above without colWeights). */
  plain: { searchErr: number; rtnErr: number; energy: number };
  /** Groups where the search beat RTN. */
  improvedGroups: number;
  groups: number;
}

export interface SearchOptions {
  bits: number;
  groupSize: number;
  /** Storage dtype of `w` and of the scales and biases. */
  dtype: FloatDType;
  /** Rules of the RTN the search starts from and never does worse than (default 'metal'). */
  rules?: QuantRules;
  /** One weight per input column: the search minimises the column-weighted error. */
  colWeights?: ArrayLike<number>;
}

export interface SearchQuantizeOptions extends SearchOptions {
  /** Also return each group's exact error (groupErr). */
  groupErrors?: boolean;
}

export interface SearchErrorOptions extends SearchOptions {
  /** affineRelativeError of the whole tensor: with it, large tensors are measured on sampled rows. */
  rtnRelError?: number;
}

export interface SearchOutput extends AffineQuantized {
  stats: SearchStats;
  /** Per group: exact squared error of the stored result and of RTN (for tests). */
  groupErr?: { search: Float64Array; rtn: Float64Array };
}

/**
 * A kernel backend that may run the search natively (src/kernels/backend.ts quantizeAffineSearch:
 * the same bits and sums as quantizeWithSearch, arguments already checked).
 */
export interface SearchBackend {
  quantizeAffineSearch?(w: Float32Array, rows: number, cols: number, opts: SearchQuantizeOptions): SearchOutput;
}

/**
 * Scale search for one group with the bias fixed at the group's largest-magnitude value (as MLX's
 * RTN does: that weight stays exact, so outliers are never clipped). Returns false when there is
 * nothing to search (constant group).
 */
function searchGroup(v: Float32Array, off: number, g: number, n: number, out: Float64Array, cw: ArrayLike<number> | undefined, col0: number): boolean {
  let mn = Infinity;
  let mx = -Infinity;
  for (let j = off; j < off + g; j++) {
    const x = v[j]!;
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  if (!(mx - mn > 0)) return false; // constant group: MLX's RTN is already exact
  const edge = Math.abs(mn) > Math.abs(mx) ? mn : mx;
  const other = edge === mn ? mx : mn;
  let bestErr = Infinity;
  let bestS = (other - edge) / n;
  // Codes for step s0, then the least-squares step for those codes (bias fixed at the edge).
  const fit = (s0: number): void => {
    let sq = 0;
    let sqv = 0;
    for (let j = off; j < off + g; j++) {
      let q = Math.round((v[j]! - edge) / s0);
      q = q < 0 ? 0 : q > n ? n : q;
      const c = cw ? cw[j + col0]! : 1;
      sq += c * q * q;
      sqv += c * q * (v[j]! - edge);
    }
    if (!(sq > 0)) return;
    const s = sqv / sq;
    if (!(s !== 0) || !Number.isFinite(s)) return;
    // Error with nearest codes under s: never above the fit's own residual.
    let e = 0;
    for (let j = off; j < off + g; j++) {
      let q = Math.round((v[j]! - edge) / s);
      q = q < 0 ? 0 : q > n ? n : q;
      const d = v[j]! - (s * q + edge);
      e += (cw ? cw[j + col0]! : 1) * d * d;
    }
    if (e < bestErr) {
      bestErr = e;
      bestS = s;
    }
  };
  for (let k = 0; k <= GRID_STEPS; k++) fit((other - edge) / (n - 1 + (2 * k) / GRID_STEPS));
  for (let r = 0; r < REFINE_STEPS; r++) {
    const before = bestErr;
    fit(bestS);
    // A step that did not improve left bestS as it was: the next one would repeat it exactly.
    if (!(bestErr < before)) break;
  }
  out[0] = bestS;
  out[1] = edge;
  return bestErr < Infinity;
}

/** The code in [0, n] whose exact decode under (s, b) (cachedDecode with `stamp`) is nearest to x; neighbours checked (bf16 grids are uneven). */
export function nearestCode(x: number, s: number, b: number, n: number, kind: number, stamp: number): number {
  let q0 = Math.round((x - b) / s);
  q0 = q0 < 0 ? 0 : q0 > n ? n : q0;
  let best = q0;
  let bd = Math.abs(x - cachedDecode(stamp, s, q0, b, kind));
  if (q0 > 0) {
    const d = Math.abs(x - cachedDecode(stamp, s, q0 - 1, b, kind));
    if (d < bd) (bd = d), (best = q0 - 1);
  }
  if (q0 < n) {
    const d = Math.abs(x - cachedDecode(stamp, s, q0 + 1, b, kind));
    if (d < bd) best = q0 + 1;
  }
  return best;
}

/** The search on `backend` when it has it (the same bits, tested), else the TypeScript. */
function searchOn(backend: SearchBackend | undefined, w: Float32Array, rows: number, cols: number, opts: SearchQuantizeOptions): SearchOutput {
  const cw = opts.colWeights;
  if (cw && cw.length !== cols) throw new Error(`rounding search: ${cw.length} column weights for ${cols} columns`);
  checkRules('rounding search', opts.rules ?? 'metal');
  if (backend?.quantizeAffineSearch) return backend.quantizeAffineSearch(w, rows, cols, opts);
  return quantizeWithSearch(w, rows, cols, opts);
}

/** Core: RTN via MLX's exact quantizer, then a per-group search that replaces RTN only where strictly better. */
function quantizeWithSearch(w: Float32Array, rows: number, cols: number, opts: SearchQuantizeOptions): SearchOutput {
  const { bits, groupSize, colWeights: cw } = opts;
  const rtn = quantizeAffine(w, rows, cols, bits, groupSize, opts.rules);
  const codes = unpackBits(rtn.wq, bits, cols);
  const scales = rtn.scales;
  const biases = rtn.biases;
  const kind = dtypeKind(opts.dtype);
  const n = (1 << bits) - 1;
  const nGroups = (rows * cols) / groupSize;
  const params = new Float64Array(2);
  const newCodes = new Uint8Array(groupSize);
  const stats: SearchStats = { searchErr: 0, rtnErr: 0, energy: 0, plain: { searchErr: 0, rtnErr: 0, energy: 0 }, improvedGroups: 0, groups: nGroups };
  const groupErr = opts.groupErrors ? { search: new Float64Array(nGroups), rtn: new Float64Array(nGroups) } : undefined;

  for (let gi = 0; gi < nGroups; gi++) {
    const off = gi * groupSize;
    const col0 = (off % cols) - off; // groups never cross rows: column of element j is j + col0
    // Exact error of MLX's RTN as a loaded model sees it.
    const sR = roundTo(scales[gi]!, kind);
    const bR = roundTo(biases[gi]!, kind);
    const stampR = nextDecodeStamp();
    let eR = 0;
    let energy = 0;
    let pR = 0; // unweighted RTN error and energy
    let pEnergy = 0;
    for (let j = off; j < off + groupSize; j++) {
      const d = w[j]! - cachedDecode(stampR, sR, codes[j]!, bR, kind);
      const c = cw ? cw[j + col0]! : 1;
      eR += c * d * d;
      energy += c * w[j]! * w[j]!;
      pR += d * d;
      pEnergy += w[j]! * w[j]!;
    }
    let eS = eR;
    let pS = pR;
    if (eR > 0 && searchGroup(w, off, groupSize, n, params, cw, col0)) {
      const sT = roundTo(params[0]!, kind);
      const bT = roundTo(params[1]!, kind);
      if (sT !== 0 && Number.isFinite(sT) && Number.isFinite(bT)) {
        const stamp = nextDecodeStamp();
        const dec = (q: number): number => cachedDecode(stamp, sT, q, bT, kind);
        let e = 0;
        let pe = 0;
        for (let j = off; j < off + groupSize; j++) {
          const x = w[j]!;
          let q0 = Math.round((x - bT) / sT);
          q0 = q0 < 0 ? 0 : q0 > n ? n : q0;
          let best = q0;
          let bd = Math.abs(x - dec(q0));
          if (q0 > 0) {
            const d = Math.abs(x - dec(q0 - 1));
            if (d < bd) (bd = d), (best = q0 - 1);
          }
          if (q0 < n) {
            const d = Math.abs(x - dec(q0 + 1));
            if (d < bd) (bd = d), (best = q0 + 1);
          }
          newCodes[j - off] = best;
          e += (cw ? cw[j + col0]! : 1) * bd * bd;
          pe += bd * bd;
        }
        if (e < eR) {
          eS = e;
          pS = pe;
          codes.set(newCodes, off);
          scales[gi] = sT;
          biases[gi] = bT;
          stats.improvedGroups++;
        }
      }
    }
    stats.searchErr += eS;
    stats.rtnErr += eR;
    stats.energy += energy;
    stats.plain.searchErr += pS;
    stats.plain.rtnErr += pR;
    stats.plain.energy += pEnergy;
    if (groupErr) {
      groupErr.search[gi] = eS;
      groupErr.rtn[gi] = eR;
    }
  }
  return { wq: packBits(codes, bits, cols), scales, biases, stats, groupErr };
}

/**
 * Quantize with per-group search. `w` holds values of the storage dtype. Scales/biases the search
 * chose are already exact in the dtype; the others are MLX's float32 RTN values (rounded on write).
 * On `backend` when it has a native search (the same result), else in TypeScript.
 */
export function quantizeAffineSearch(
  w: Float32Array,
  rows: number,
  cols: number,
  opts: SearchQuantizeOptions,
  backend?: SearchBackend,
): SearchOutput {
  checkAffineArgs('quantizeAffineSearch', rows, cols, opts.bits, opts.groupSize);
  if (w.length !== rows * cols) throw new Error(`quantizeAffineSearch: w has ${w.length} elements, expected ${rows}×${cols}`);
  return searchOn(backend, w, rows, cols, opts);
}

/** Elements of a tensor the analysis measures the search on (evenly spaced whole rows): keeps analyze fast. */
export const SEARCH_SAMPLE_ELEMENTS = 1 << 15;

/**
 * Relative squared error ‖W − deq‖² / ‖W‖² of `--rounding search`. Large tensors are measured on
 * evenly spaced rows (≥ SEARCH_SAMPLE_ELEMENTS elements) and reported as the exact RTN error of the
 * whole tensor times the search/RTN error ratio on those rows; small tensors are measured exactly.
 * With colWeights the search minimises the column-weighted error (what `--weighting norm` writes),
 * and the error reported is still the plain one, comparable with the RTN candidates' rel_error.
 * On `backend` when it has a native search (the same result), else in TypeScript.
 */
export function searchRelativeError(
  w: Float32Array,
  rows: number,
  cols: number,
  opts: SearchErrorOptions,
  backend?: SearchBackend,
): number {
  checkAffineArgs('searchRelativeError', rows, cols, opts.bits, opts.groupSize);
  const { rtnRelError } = opts;
  const step = Math.max(1, Math.floor((rows * cols) / SEARCH_SAMPLE_ELEMENTS));
  if (step === 1 || rtnRelError === undefined) {
    const s = searchOn(backend, w, rows, cols, opts).stats.plain;
    return s.energy === 0 ? 0 : s.searchErr / s.energy;
  }
  const sample = everyNthRow(w, rows, cols, step);
  const s = searchOn(backend, sample.w, sample.rows, cols, opts).stats.plain;
  return s.rtnErr === 0 ? rtnRelError : rtnRelError * (s.searchErr / s.rtnErr);
}

/** Rows 0, step, 2·step, … of a row-major [rows, cols] matrix (the matrix itself when step is 1). */
export function everyNthRow(w: Float32Array, rows: number, cols: number, step: number): { w: Float32Array; rows: number } {
  if (step === 1) return { w, rows };
  const n = Math.ceil(rows / step);
  const out = new Float32Array(n * cols);
  for (let r = 0, k = 0; r < rows; r += step, k++) out.set(w.subarray(r * cols, (r + 1) * cols), k * cols);
  return { w: out, rows: n };
}
