/*
 * MLX affine quantization (src/mlx/affine.ts quantizeAffine), in C: the same float32 operations in
 * the same order, so codes, scales and biases are the same bits (the build passes
 * -ffp-contract=off). Groups are independent, so rows are shared out between threads in fixed
 * blocks: the result does not depend on the thread count.
 *
 * Per group, as MLX's kernels do it: the scale and bias of affine.h swan_group_params, then
 * q = clamp(ROUND((w − bias)/scale), 0, n), NaN packing as 0 (swan_rtn_code); 8 weights at a time
 * where AVX2 is there (group_codes, checked at run time), the same bits.
 */
#include "affine.h"

#include <math.h>

#include "parallel.h"

typedef struct {
  const float *w;
  int64_t cols;
  int bits, group, metal;
  uint32_t *wq;
  float *scales, *biases;
} job_t;

/* The largest group: the addon accepts 32, 64 and 128 (native/swan_blas.c quantize_affine). */
#define MAX_GROUP 128

/* Codes of one group into `o` (group·bits/32 words): LSB first, a code may straddle two words. */
static inline void pack_codes(const uint32_t *codes, int group, int bits, uint32_t *o) {
  uint64_t acc = 0;
  int filled = 0;
  for (int j = 0; j < group; j++) {
    acc |= (uint64_t)codes[j] << filled;
    filled += bits;
    if (filled >= 32) {
      *o++ = (uint32_t)acc;
      acc >>= 32;
      filled -= 32;
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define SWAN_AFFINE_AVX2 1
#include <immintrin.h>

/* The OR of the four 32-bit lanes of x. */
__attribute__((target("avx2"))) static inline uint32_t or4(__m128i x) {
  x = _mm_or_si128(x, _mm_shuffle_epi32(x, 0x4e));
  x = _mm_or_si128(x, _mm_shuffle_epi32(x, 0xb1));
  return (uint32_t)_mm_cvtsi128_si32(x);
}

/*
 * swan_group_params and swan_rtn_code for a group of a multiple of 8 weights, 8 at a time. The min
 * and max are taken lane by lane and then across lanes with the same comparisons, so they are the
 * same values up to the sign of a zero, which cannot change the scale or bias (a zero is only the
 * edge when every weight is zero: then q0 = 0 and the scale is ±s0 from the difference, the bias
 * 0). A code: t clamped to [0, n] (NaN and t < 0 to 0, as swan_rtn_code), then rounded, which is
 * exact in float there: ties to even by adding and subtracting 1.5·2^23, ties away as trunc(t)
 * plus (t − trunc(t) ≥ 0.5). Codes of 2, 4 or 8 bits are shifted into place and ORed into their
 * word 8 at a time; other widths go through pack_codes. `o` gets the group's words.
 */
__attribute__((target("avx2"))) static void group_codes(const float *g, int group, int bits, int metal, float *scale,
                                                        float *bias, uint32_t *o) {
  const int n = (1 << bits) - 1;
  __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(metal ? 0.0f : -INFINITY);
  for (int j = 0; j < group; j += 8) {
    const __m256 w = _mm256_loadu_ps(g + j);
    lo = _mm256_min_ps(w, lo); /* w < lo ? w : lo */
    hi = _mm256_max_ps(w, hi);
  }
  float l8[8], h8[8];
  _mm256_storeu_ps(l8, lo);
  _mm256_storeu_ps(h8, hi);
  float wmin = l8[0], wmax = h8[0];
  for (int k = 1; k < 8; k++) {
    if (l8[k] < wmin) wmin = l8[k];
    if (h8[k] > wmax) wmax = h8[k];
  }
  swan_params_of_range(wmin, wmax, n, metal, scale, bias);
  const __m256 s = _mm256_set1_ps(*scale), b = _mm256_set1_ps(*bias);
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps((float)n), half = _mm256_set1_ps(0.5f);
  const __m256 round_magic = _mm256_set1_ps(12582912.0f);
  /* Codes 8 at a time, shifted to their place in their word (LSB first) when bits is 2, 4 or 8. */
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i shift = _mm256_mullo_epi32(_mm256_and_si256(lane, _mm256_set1_epi32(32 / bits - 1)), _mm256_set1_epi32(bits));
  const int whole_words = 32 % bits == 0;
  uint32_t codes[MAX_GROUP];
  for (int j = 0; j < group; j += 8) {
    __m256 t = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(g + j), b), s);
    t = _mm256_min_ps(_mm256_max_ps(t, zero), top); /* max(NaN, 0) is 0 */
    __m256i q;
    if (metal) {
      const __m256i whole = _mm256_cvttps_epi32(t);
      const __m256 up = _mm256_cmp_ps(_mm256_sub_ps(t, _mm256_cvtepi32_ps(whole)), half, _CMP_GE_OQ);
      q = _mm256_sub_epi32(whole, _mm256_castps_si256(up)); /* the mask is −1 where rounding up */
    } else {
      q = _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(t, round_magic), round_magic));
    }
    if (!whole_words) {
      _mm256_storeu_si256((__m256i *)(codes + j), q);
      continue;
    }
    const __m256i placed = _mm256_sllv_epi32(q, bits == 2 && (j & 8) ? _mm256_add_epi32(shift, _mm256_set1_epi32(16)) : shift);
    const __m128i l4 = _mm256_castsi256_si128(placed), h4 = _mm256_extracti128_si256(placed, 1);
    if (bits == 8) {
      o[j / 4] = or4(l4);
      o[j / 4 + 1] = or4(h4);
    } else if (bits == 4) {
      o[j / 8] = or4(_mm_or_si128(l4, h4));
    } else { /* 2 bits: 16 codes a word, the second 8 added to the first */
      const uint32_t part = or4(_mm_or_si128(l4, h4));
      if (j & 8) o[j / 16] |= part;
      else o[j / 16] = part;
    }
  }
  if (!whole_words) pack_codes(codes, group, bits, o);
}
#endif

static void quantize_rows(void *ctx, int64_t row0, int64_t row1) {
  const job_t *p = (const job_t *)ctx;
  const int n = (1 << p->bits) - 1;
  const int64_t groups_per_row = p->cols / p->group;
  const int64_t words_per_group = (int64_t)p->group * p->bits / 32; /* a group starts on a word */
  uint32_t codes[MAX_GROUP];
#ifdef SWAN_AFFINE_AVX2
  const int avx2 = p->group % 8 == 0 && __builtin_cpu_supports("avx2");
#endif
  for (int64_t gi = row0 * groups_per_row; gi < row1 * groups_per_row; gi++) {
    const float *g = p->w + gi * p->group;
    uint32_t *o = p->wq + gi * words_per_group;
#ifdef SWAN_AFFINE_AVX2
    if (avx2) {
      group_codes(g, p->group, p->bits, p->metal, &p->scales[gi], &p->biases[gi], o);
      continue;
    }
#endif
    float scale, bias;
    swan_group_params(g, p->group, n, p->metal, &scale, &bias);
    p->scales[gi] = scale;
    p->biases[gi] = bias;
    for (int j = 0; j < p->group; j++) codes[j] = swan_rtn_code((g[j] - bias) / scale, n, p->metal);
    pack_codes(codes, p->group, p->bits, o);
  }
}

void swan_quantize_affine(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int threads,
                          uint32_t *wq, float *scales, float *biases) {
  if ((double)rows * (double)cols < 65536.0) threads = 1; /* not worth a thread */
  job_t job = {.w = w, .cols = cols, .bits = bits, .group = group, .metal = metal, .wq = wq, .scales = scales, .biases = biases};
  /* Every group is computed the same way whoever computes it: the result does not depend on the thread count. */
  swan_parallel_rows(quantize_rows, &job, 0, rows, threads, 1);
}
