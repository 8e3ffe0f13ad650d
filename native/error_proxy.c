/*
 * The reconstruction-error proxy's two sums (src/metrics/error-proxy.ts rtnNrmse), in C: asymmetric
 * min-max round-to-nearest at `bits` bits in groups of `group` along each row, float32 arithmetic
 * element by element, Σerr² and Σw² accumulated in double in the same order as the TypeScript, so
 * the result is the same double bit for bit (IEEE float32/double ops, no contraction: the build
 * passes -ffp-contract=off). Rows are zero-padded to a multiple of the group (the pad zeros take
 * part in the last group's min/max and in Σerr²).
 *
 * Vectors: each group's two running sums are chains of dependent additions, so one group at a time
 * waits on them. Where AVX2 is there (x86-64, checked at run time), LANES rows are taken side by side
 * instead (lane l = row r + l, the same group of each): every lane does the same operations on its
 * own group in its own order, and the groups' sums are then added in the TypeScript's order (row by
 * row, group by group). Left-over rows, and other machines, go one row at a time.
 */
#include "error_proxy.h"

#include <math.h>
#include <stdlib.h>

#define LANES 8
/* Adding and subtracting 2^52 rounds a double |v| < 2^51 to an integer, ties to even. */
static const double MAGIC = 4503599627370496.0;
static const float MIN_SCALE = 1e-12f;

/* One row's groups, one at a time, each group's sums added to the totals (the TypeScript's loop body). */
static void row_sums(const float *row, int64_t cols, int qmax, int64_t group, int64_t pad, double *err_sum, double *w_sum) {
  float lut[256];
  for (int64_t g0 = 0; g0 < cols; g0 += group) {
    const int64_t g1 = g0 + group < cols ? g0 + group : cols;
    const int last_padded = g1 == cols && pad > 0;
    float mn = last_padded ? 0.0f : INFINITY;
    float mx = last_padded ? 0.0f : -INFINITY;
    for (int64_t i = g0; i < g1; i++) {
      const float w = row[i];
      if (w < mn) mn = w;
      if (w > mx) mx = w;
    }
    float scale = (mx - mn) / (float)qmax;
    if (scale < MIN_SCALE) scale = MIN_SCALE;
    for (int q = 0; q <= qmax; q++) lut[q] = (float)q * scale + mn;
    double e2 = 0, w2 = 0;
    for (int64_t i = g0; i < g1; i++) {
      const float w = row[i];
      double q = (double)((w - mn) / scale);
      q = q + MAGIC - MAGIC;
      q = q < 0 ? 0 : q > qmax ? qmax : q;
      const int qi = q == q ? (int)q : 0; /* NaN: index 0, the error stays NaN through w */
      const float err = lut[qi] - w;
      e2 += (double)err * (double)err;
      w2 += (double)w * (double)w;
    }
    if (last_padded) {
      double q = (double)((0.0f - mn) / scale);
      q = q + MAGIC - MAGIC;
      q = q < 0 ? 0 : q > qmax ? qmax : q;
      const float err = lut[q == q ? (int)q : 0];
      e2 += (double)pad * (double)err * (double)err;
    }
    *err_sum += e2;
    *w_sum += w2;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define SWAN_EP_AVX2 1
#include <immintrin.h>

/* Rows r..r+7 as eight vectors (lane l = row l) of columns c..c+7: in, then out, in registers. */
__attribute__((target("avx2"))) static inline void transpose8(__m256 *v) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  v[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  v[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  v[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  v[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* acc (4 doubles) += x·x for the low (hi = 0) or high four floats of x, as (double)x * (double)x. */
__attribute__((target("avx2"))) static inline __m256d add_squares(__m256d acc, __m256 x, int hi) {
  const __m256d d = _mm256_cvtps_pd(hi ? _mm256_extractf128_ps(x, 1) : _mm256_castps256_ps128(x));
  return _mm256_add_pd(acc, _mm256_mul_pd(d, d));
}

/*
 * row_sums of LANES (8) rows at once (rows0 and the 7 rows after it, stride cols), lane by lane the
 * same operations in the same order; each group's sums go to e2s/w2s[l·ngroups + group index].
 * Each group is first transposed into `tile` (element i of lane l at i·8 + l). The code is the
 * double rounding of row_sums done in float: t is within [0, qmax] (or NaN), where adding and
 * subtracting 1.5·2^23 rounds ties to even exactly, and the clamps send NaN to code 0 at once
 * (row_sums sends it there through its index); the level code·scale + min is row_sums' lut entry.
 */
__attribute__((target("avx2"))) static void block_sums(const float *rows0, int64_t cols, int qmax, int64_t group, int64_t pad,
                                                       float *tile, double *e2s, double *w2s, int64_t ngroups) {
  const __m256 zero = _mm256_setzero_ps(), qmaxf = _mm256_set1_ps((float)qmax), min_scale = _mm256_set1_ps(MIN_SCALE);
  const __m256 round_magic = _mm256_set1_ps(12582912.0f); /* 1.5·2^23 */
  for (int64_t g0 = 0, gi = 0; g0 < cols; g0 += group, gi++) {
    const int64_t g1 = g0 + group < cols ? g0 + group : cols;
    const int64_t len = g1 - g0;
    const int last_padded = g1 == cols && pad > 0;
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
      __m256 v[8];
      for (int l = 0; l < 8; l++) v[l] = _mm256_loadu_ps(rows0 + l * cols + g0 + i);
      transpose8(v);
      for (int k = 0; k < 8; k++) _mm256_storeu_ps(tile + (i + k) * 8, v[k]);
    }
    for (; i < len; i++)
      for (int l = 0; l < 8; l++) tile[i * 8 + l] = rows0[l * cols + g0 + i];
    /* min(w, m) is w < m ? w : m, as row_sums compares (NaN never taken). */
    __m256 mn = last_padded ? zero : _mm256_set1_ps(INFINITY);
    __m256 mx = last_padded ? zero : _mm256_set1_ps(-INFINITY);
    for (i = 0; i < len; i++) {
      const __m256 w = _mm256_loadu_ps(tile + i * 8);
      mn = _mm256_min_ps(w, mn);
      mx = _mm256_max_ps(w, mx);
    }
    __m256 scale = _mm256_div_ps(_mm256_sub_ps(mx, mn), qmaxf);
    scale = _mm256_blendv_ps(scale, min_scale, _mm256_cmp_ps(scale, min_scale, _CMP_LT_OQ));
    __m256d e2lo = _mm256_setzero_pd(), e2hi = e2lo, w2lo = e2lo, w2hi = e2lo;
    for (i = 0; i < len; i++) {
      const __m256 w = _mm256_loadu_ps(tile + i * 8);
      const __m256 t = _mm256_div_ps(_mm256_sub_ps(w, mn), scale);
      __m256 code = _mm256_sub_ps(_mm256_add_ps(t, round_magic), round_magic);
      code = _mm256_min_ps(_mm256_max_ps(code, zero), qmaxf); /* max(NaN, 0) is 0 */
      const __m256 err = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(code, scale), mn), w);
      e2lo = add_squares(e2lo, err, 0);
      e2hi = add_squares(e2hi, err, 1);
      w2lo = add_squares(w2lo, w, 0);
      w2hi = add_squares(w2hi, w, 1);
    }
    double e2[8], w2[8];
    _mm256_storeu_pd(e2, e2lo);
    _mm256_storeu_pd(e2 + 4, e2hi);
    _mm256_storeu_pd(w2, w2lo);
    _mm256_storeu_pd(w2 + 4, w2hi);
    if (last_padded) {
      float level[8];
      __m256 code = _mm256_div_ps(_mm256_sub_ps(zero, mn), scale);
      code = _mm256_sub_ps(_mm256_add_ps(code, round_magic), round_magic);
      code = _mm256_min_ps(_mm256_max_ps(code, zero), qmaxf);
      _mm256_storeu_ps(level, _mm256_add_ps(_mm256_mul_ps(code, scale), mn));
      for (int l = 0; l < 8; l++) e2[l] += (double)pad * (double)level[l] * (double)level[l];
    }
    for (int l = 0; l < 8; l++) {
      e2s[l * ngroups + gi] = e2[l];
      w2s[l * ngroups + gi] = w2[l];
    }
  }
}
#endif

void swan_rtn_error_sums(const float *data, int64_t rows, int64_t cols, int bits, int64_t group, double out[2]) {
  const int qmax = (1 << bits) - 1;
  const int64_t ngroups = (cols + group - 1) / group;
  const int64_t pad = ngroups * group - cols;
  double err_sum = 0, w_sum = 0;
  int64_t r = 0;
#ifdef SWAN_EP_AVX2
  if (rows >= LANES && __builtin_cpu_supports("avx2")) {
    double *e2s = malloc(sizeof(double) * 2 * LANES * (size_t)ngroups);
    float *tile = malloc(sizeof(float) * LANES * (size_t)(group < cols ? group : cols));
    if (e2s && tile) {
      const double *w2s = e2s + LANES * ngroups;
      for (; r + LANES <= rows; r += LANES) {
        block_sums(data + r * cols, cols, qmax, group, pad, tile, e2s, e2s + LANES * ngroups, ngroups);
        /* In the TypeScript's order: row by row, group by group. */
        for (int64_t k = 0; k < LANES * ngroups; k++) {
          err_sum += e2s[k];
          w_sum += w2s[k];
        }
      }
    }
    free(e2s);
    free(tile);
  }
#endif
  for (; r < rows; r++) row_sums(data + r * cols, cols, qmax, group, pad, &err_sum, &w_sum);
  out[0] = err_sum;
  out[1] = w_sum;
}
