// SGEMM for WebAssembly SIMD (AssemblyScript). Built twice: with --enable relaxed-simd (FMA) and
// without; ASC_FEATURE_RELAXED_SIMD picks the multiply-add at compile time.
//
// Goto/BLIS structure: pack a KC×NC panel of op(B) into 8-column strips and an MC×KC block of
// op(A) into MR-row strips, then an MR×8 register-tile micro-kernel (6×8 with FMA, 5×8 without)
// runs over the packed data. Transposition is absorbed by the packing routines, so AᵀB streams
// rows of A and never materialises Aᵀ. For threads, packAPanel/packBPanel prepack a whole operand
// once into shared memory and gemm reads it through preA/preB instead of packing per block.
//
// Determinism: every C element is summed over p in KC blocks (fixed by k alone), starting from
// zero in the first block and from C in later ones, with padded strips computed by the same
// kernel. So any split of the C index space (rows or columns, any thread count) gives
// bit-identical results.
//
// All pointers are byte offsets into the (imported, shared) memory; the JS side owns allocation.

// Tile height: 6×8 needs 12 accumulators + 2 B + 1 A = 15 xmm registers, all that V8 allocates on
// x64. Without FMA a product temporary needs a 16th, so the plain build uses 5×8 to avoid spills.
const MR: i32 = ASC_FEATURE_RELAXED_SIMD ? 6 : 5;
const NR: i32 = 8;
// KC×NR B strip (8 KiB) stays in L1; the MC×KC A block (~190 KiB) and the KC×NC B panel in L2.
const KC: i32 = 256;
const MC: i32 = MR * 32;
const NC: i32 = 1024;

/** Bytes of scratch one thread needs: packed A block, packed B panel, an MR×8 edge tile. */
export function scratchBytes(): i32 {
  return (MC * KC + KC * NC + MR * NR) * 4 + 128;
}

/** Rows of the register tile: thread splits of C are aligned to it. */
export function tileRows(): i32 {
  return MR;
}

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(c, f32x4.mul(a, b));
  }
}

/**
 * C[6×8] (row stride ldc bytes) = (first ? 0 : C) + Σ_p pa[p]ᵀ·pb[p] over kc steps.
 * pa: kc×6 packed (p-major), pb: kc×8 packed (p-major).
 * One p per iteration: TurboFan hoists the loads of an unrolled body to its top, and the extra
 * live registers then spill.
 */
function kernel6(kc: i32, pa: usize, pb: usize, c: usize, ldc: usize, first: bool): void {
  let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128;
  let c30: v128, c31: v128, c40: v128, c41: v128, c50: v128, c51: v128;
  if (first) {
    c00 = f32x4.splat(0); c01 = c00; c10 = c00; c11 = c00; c20 = c00; c21 = c00;
    c30 = c00; c31 = c00; c40 = c00; c41 = c00; c50 = c00; c51 = c00;
  } else {
    let r = c;
    c00 = v128.load(r); c01 = v128.load(r, 16); r += ldc;
    c10 = v128.load(r); c11 = v128.load(r, 16); r += ldc;
    c20 = v128.load(r); c21 = v128.load(r, 16); r += ldc;
    c30 = v128.load(r); c31 = v128.load(r, 16); r += ldc;
    c40 = v128.load(r); c41 = v128.load(r, 16); r += ldc;
    c50 = v128.load(r); c51 = v128.load(r, 16);
  }
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa); c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4); c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8); c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12); c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    a = v128.load32_splat(pa, 16); c40 = madd(a, b0, c40); c41 = madd(a, b1, c41);
    a = v128.load32_splat(pa, 20); c50 = madd(a, b0, c50); c51 = madd(a, b1, c51);
    pa += 24; pb += 32;
  }
  let r = c;
  v128.store(r, c00); v128.store(r, c01, 16); r += ldc;
  v128.store(r, c10); v128.store(r, c11, 16); r += ldc;
  v128.store(r, c20); v128.store(r, c21, 16); r += ldc;
  v128.store(r, c30); v128.store(r, c31, 16); r += ldc;
  v128.store(r, c40); v128.store(r, c41, 16); r += ldc;
  v128.store(r, c50); v128.store(r, c51, 16);
}

/** As kernel6, for a 5×8 tile (the plain-SIMD build). */
function kernel5(kc: i32, pa: usize, pb: usize, c: usize, ldc: usize, first: bool): void {
  let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128;
  let c30: v128, c31: v128, c40: v128, c41: v128;
  if (first) {
    c00 = f32x4.splat(0); c01 = c00; c10 = c00; c11 = c00; c20 = c00; c21 = c00;
    c30 = c00; c31 = c00; c40 = c00; c41 = c00;
  } else {
    let r = c;
    c00 = v128.load(r); c01 = v128.load(r, 16); r += ldc;
    c10 = v128.load(r); c11 = v128.load(r, 16); r += ldc;
    c20 = v128.load(r); c21 = v128.load(r, 16); r += ldc;
    c30 = v128.load(r); c31 = v128.load(r, 16); r += ldc;
    c40 = v128.load(r); c41 = v128.load(r, 16);
  }
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa); c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4); c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8); c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12); c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    a = v128.load32_splat(pa, 16); c40 = madd(a, b0, c40); c41 = madd(a, b1, c41);
    pa += 20; pb += 32;
  }
  let r = c;
  v128.store(r, c00); v128.store(r, c01, 16); r += ldc;
  v128.store(r, c10); v128.store(r, c11, 16); r += ldc;
  v128.store(r, c20); v128.store(r, c21, 16); r += ldc;
  v128.store(r, c30); v128.store(r, c31, 16); r += ldc;
  v128.store(r, c40); v128.store(r, c41, 16);
}

/** C[MR×8] (row stride ldc bytes) = (first ? 0 : C) + packed A strip · packed B strip. */
@inline function kernel(kc: i32, pa: usize, pb: usize, c: usize, ldc: usize, first: bool): void {
  if (MR == 6) kernel6(kc, pa, pb, c, ldc, first);
  else kernel5(kc, pa, pb, c, ldc, first);
}

/**
 * Packs op(A)[i0..i0+mc, p0..p0+kc] into ceil(mc/MR) strips of kc×MR, zero-padding the last strip.
 * transA = 0: A[i][p] at a + (i*lda + p)*4; transA = 1: A is stored k×m, op(A)[i][p] at a + (p*lda + i)*4.
 */
function packA(transA: i32, a: usize, lda: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  const ldaB = <usize>lda << 2;
  const strip = <usize>(MR * 4); // bytes per p in a strip
  let i = 0;
  if (transA) {
    // Each p copies MR contiguous floats of one row of the stored A.
    for (; i + MR <= mc; i += MR) {
      let src = a + (<usize>p0 * ldaB) + (<usize>(i0 + i) << 2);
      let d = dst;
      for (let p = 0; p < kc; p++) {
        v128.store(d, v128.load(src));
        if (MR == 6) v128.store64_lane(d, v128.load64_zero(src, 16), 0, 16);
        else store<f32>(d, load<f32>(src, 16), 16);
        src += ldaB; d += strip;
      }
      dst += <usize>kc * strip;
    }
  } else {
    // 4 columns at a time: a 4×4 transpose for rows 0-3, lane stores for rows 4..MR-1.
    for (; i + MR <= mc; i += MR) {
      const r0 = a + <usize>(i0 + i) * ldaB + (<usize>p0 << 2);
      const r1 = r0 + ldaB, r2 = r1 + ldaB, r3 = r2 + ldaB, r4 = r3 + ldaB, r5 = r4 + ldaB;
      let d = dst;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p << 2;
        const v0 = v128.load(r0 + o), v1 = v128.load(r1 + o), v2 = v128.load(r2 + o), v3 = v128.load(r3 + o);
        const t0 = f32x4.shuffle(v0, v1, 0, 4, 1, 5), t1 = f32x4.shuffle(v0, v1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(v2, v3, 0, 4, 1, 5), t3 = f32x4.shuffle(v2, v3, 2, 6, 3, 7);
        v128.store(d, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store(d + strip, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
        v128.store(d + 2 * strip, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
        v128.store(d + 3 * strip, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
        const v4 = v128.load(r4 + o);
        if (MR == 6) {
          const v5 = v128.load(r5 + o);
          const u0 = f32x4.shuffle(v4, v5, 0, 4, 1, 5), u1 = f32x4.shuffle(v4, v5, 2, 6, 3, 7);
          v128.store64_lane(d, u0, 0, 16);
          v128.store64_lane(d, u0, 1, 40);
          v128.store64_lane(d, u1, 0, 64);
          v128.store64_lane(d, u1, 1, 88);
        } else {
          v128.store32_lane(d, v4, 0, 16);
          v128.store32_lane(d, v4, 1, 36);
          v128.store32_lane(d, v4, 2, 56);
          v128.store32_lane(d, v4, 3, 76);
        }
        d += 4 * strip;
      }
      for (; p < kc; p++) {
        const o = <usize>p << 2;
        store<f32>(d, load<f32>(r0 + o));
        store<f32>(d, load<f32>(r1 + o), 4);
        store<f32>(d, load<f32>(r2 + o), 8);
        store<f32>(d, load<f32>(r3 + o), 12);
        store<f32>(d, load<f32>(r4 + o), 16);
        if (MR == 6) store<f32>(d, load<f32>(r5 + o), 20);
        d += strip;
      }
      dst += <usize>kc * strip;
    }
  }
  if (i < mc) {
    const rows = mc - i;
    let d = dst;
    for (let p = 0; p < kc; p++) {
      for (let r = 0; r < MR; r++) {
        let v: f32 = 0;
        if (r < rows) {
          const ii = i0 + i + r, pp = p0 + p;
          v = transA
            ? load<f32>(a + ((<usize>pp * lda + ii) << 2))
            : load<f32>(a + ((<usize>ii * lda + pp) << 2));
        }
        store<f32>(d, v);
        d += 4;
      }
    }
  }
}

/**
 * Packs op(B)[p0..p0+kc, j0..j0+nc] into ceil(nc/8) strips of kc×8, zero-padding the last strip.
 * transB = 0: B[p][j] at b + (p*ldb + j)*4; transB = 1: B is stored n×k, op(B)[p][j] at b + (j*ldb + p)*4.
 */
function packB(transB: i32, b: usize, ldb: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  const ldbB = <usize>ldb << 2;
  let j = 0;
  if (transB) {
    // Two 4×4 transposes per 4 values of p.
    for (; j + NR <= nc; j += NR) {
      const r0 = b + <usize>(j0 + j) * ldbB + (<usize>p0 << 2);
      let d = dst;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        let rr = r0 + (<usize>p << 2);
        for (let h = 0; h < 2; h++) {
          const v0 = v128.load(rr), v1 = v128.load(rr + ldbB);
          const v2 = v128.load(rr + 2 * ldbB), v3 = v128.load(rr + 3 * ldbB);
          const t0 = f32x4.shuffle(v0, v1, 0, 4, 1, 5), t1 = f32x4.shuffle(v0, v1, 2, 6, 3, 7);
          const t2 = f32x4.shuffle(v2, v3, 0, 4, 1, 5), t3 = f32x4.shuffle(v2, v3, 2, 6, 3, 7);
          const dh = d + (<usize>h << 4);
          v128.store(dh, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
          v128.store(dh, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 32);
          v128.store(dh, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 64);
          v128.store(dh, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 96);
          rr += 4 * ldbB;
        }
        d += 128;
      }
      for (; p < kc; p++) {
        let rr = r0 + (<usize>p << 2);
        for (let c = 0; c < NR; c++) {
          store<f32>(d, load<f32>(rr));
          rr += ldbB; d += 4;
        }
      }
      dst += <usize>kc * 32;
    }
  } else {
    for (; j + NR <= nc; j += NR) {
      let src = b + <usize>p0 * ldbB + (<usize>(j0 + j) << 2);
      let d = dst;
      for (let p = 0; p < kc; p++) {
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
        src += ldbB; d += 32;
      }
      dst += <usize>kc * 32;
    }
  }
  if (j < nc) {
    const cols = nc - j;
    let d = dst;
    for (let p = 0; p < kc; p++) {
      for (let c = 0; c < NR; c++) {
        let v: f32 = 0;
        if (c < cols) {
          const jj = j0 + j + c, pp = p0 + p;
          v = transB
            ? load<f32>(b + ((<usize>jj * ldb + pp) << 2))
            : load<f32>(b + ((<usize>pp * ldb + jj) << 2));
        }
        store<f32>(d, v);
        d += 4;
      }
    }
  }
}

/** Rows of op(B) (and columns of op(A)) per packed block: prepacked panels are cut at multiples of it. */
export function blockK(): i32 {
  return KC;
}

/**
 * Prepacks rows p0..p1 of op(B) (k×n; p0 a multiple of KC) for all n columns into dst, in the layout
 * gemm reads through preB: the block starting at row pc lies at dst + pc·nPad·4 (nPad = n rounded
 * up to 8) as ceil(n/8) strips of kc×8. Threads share one packed B instead of each packing it.
 */
export function packBPanel(transB: i32, b: usize, ldb: i32, n: i32, p0: i32, p1: i32, dst: usize): void {
  const nPad = <usize>((n + NR - 1) / NR * NR);
  for (let pc = p0; pc < p1; pc += KC) {
    packB(transB, b, ldb, pc, min(KC, p1 - pc), 0, n, dst + <usize>pc * nPad * 4);
  }
}

/** As packBPanel, for op(A) (m×k): the block at column pc lies at dst + pc·mPad·4 (mPad = m rounded up to MR). */
export function packAPanel(transA: i32, a: usize, lda: i32, m: i32, p0: i32, p1: i32, dst: usize): void {
  const mPad = <usize>((m + MR - 1) / MR * MR);
  for (let pc = p0; pc < p1; pc += KC) {
    packA(transA, a, lda, 0, m, pc, min(KC, p1 - pc), dst + <usize>pc * mPad * 4);
  }
}

/**
 * Computes the block C[i0..i1, j0..j1] of C = op(A)·op(B) (C row stride ldc floats).
 * op(A) is m×k, op(B) is k×n; lda/ldb are the row strides of A and B as stored.
 * scratch: scratchBytes() of this thread's own memory.
 * preA / preB: 0, or op(A) / op(B) prepacked by packAPanel / packBPanel; then i0 (for preA) or j0
 * (for preB) must be a multiple of the tile size. Packing never changes the arithmetic.
 * upperB: op(B) is upper triangular (zeros below the diagonal, which the caller guarantees), so an
 * 8-column strip ending at column j stops at p = j: only the products with B's zeros are skipped,
 * about half the flops when k = n, and the sums of the others keep their order.
 */
export function gemm(
  transA: i32, transB: i32, m: i32, n: i32, k: i32,
  a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize, preA: usize, preB: usize, upperB: i32,
): void {
  const ldcB = <usize>ldc << 2;
  if (k <= 0) {
    for (let i = i0; i < i1; i++) {
      memory.fill(c + <usize>i * ldcB + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
    }
    return;
  }
  const pA = (scratch + 63) & ~(<usize>63);
  const pB = pA + <usize>(MC * KC * 4);
  const tmp = pB + <usize>(KC * NC * 4);
  const mPad = <usize>((m + MR - 1) / MR * MR);
  const nPad = <usize>((n + NR - 1) / NR * NR);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      const first = pc == 0;
      let bBlock = pB;
      if (preB) bBlock = preB + <usize>pc * nPad * 4 + <usize>jc * <usize>kc * 4;
      else packB(transB, b, ldb, pc, kc, jc, nc, pB);
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        let aBlock = pA;
        if (preA) aBlock = preA + <usize>pc * mPad * 4 + <usize>ic * <usize>kc * 4;
        else packA(transA, a, lda, ic, mc, pc, kc, pA);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const sb = bBlock + <usize>jr * <usize>kc * 4;
          // Packed strips are p-major, so a shorter kc reads their first rows. pc = 0 keeps ≥ 1.
          const kr = upperB ? min(kc, jc + jr + nr - pc) : kc;
          if (kr <= 0) continue;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const sa = aBlock + <usize>ir * <usize>kc * 4;
            const cp = c + <usize>(ic + ir) * ldcB + (<usize>(jc + jr) << 2);
            if (mr == MR && nr == NR) {
              kernel(kr, sa, sb, cp, ldcB, first);
            } else {
              edge(kr, sa, sb, cp, ldcB, mr, nr, first, tmp);
            }
          }
        }
      }
    }
  }
}

/** Partial tile: run the full kernel on a zero-padded MR×8 copy, then write back the valid part. */
function edge(kc: i32, sa: usize, sb: usize, cp: usize, ldcB: usize, mr: i32, nr: i32, first: bool, tmp: usize): void {
  if (!first) {
    memory.fill(tmp, 0, MR * NR * 4);
    for (let r = 0; r < mr; r++) {
      memory.copy(tmp + <usize>(r * NR * 4), cp + <usize>r * ldcB, <usize>nr << 2);
    }
  }
  kernel(kc, sa, sb, tmp, NR * 4, first);
  for (let r = 0; r < mr; r++) {
    memory.copy(cp + <usize>r * ldcB, tmp + <usize>(r * NR * 4), <usize>nr << 2);
  }
}
