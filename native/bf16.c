/*
 * BF16 → float32 decode (src/io/float.ts decodeToF32): a BF16 value is the top half of its float32,
 * so decoding is a 16-bit shift, 16 values at a time where AVX2 is there (checked at run time).
 * The count of values at or above the caller's magnitude limit comes from the same pass.
 */
#include "bf16.h"

#include <string.h>

static int64_t decode_scalar(const uint8_t *src, float *dst, int64_t n, uint32_t lim) {
  int64_t over = 0;
  for (int64_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy(&h, src + 2 * i, 2);
    const uint32_t bits = (uint32_t)h << 16;
    memcpy(dst + i, &bits, 4);
    over += (h & 0x7fffu) >= lim;
  }
  return over;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2,popcnt"))) static int64_t decode_avx2(const uint8_t *src, float *dst, int64_t n, uint32_t lim) {
  const __m256i zero = _mm256_setzero_si256(), magnitude = _mm256_set1_epi16(0x7fff);
  /* Signed 16-bit compare: magnitudes are at most 0x7fff and lim − 1 at most 0x7fff. */
  const __m256i below = _mm256_set1_epi16((short)(lim - 1));
  int64_t over = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)(src + 2 * i));
    /* Within each 128-bit half: values 0-3 | 8-11 (lo), 4-7 | 12-15 (hi); put back in order. */
    const __m256i lo = _mm256_unpacklo_epi16(zero, h), hi = _mm256_unpackhi_epi16(zero, h);
    _mm256_storeu_si256((__m256i *)(dst + i), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256((__m256i *)(dst + i + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    if (lim < 0x8000) {
      const __m256i big = _mm256_cmpgt_epi16(_mm256_and_si256(h, magnitude), below);
      over += __builtin_popcount((unsigned)_mm256_movemask_epi8(big)) / 2;
    }
  }
  return over + decode_scalar(src + 2 * i, dst + i, n - i, lim);
}
#endif

int64_t swan_decode_bf16(const uint8_t *src, float *dst, int64_t n, uint32_t lim) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2")) return decode_avx2(src, dst, n, lim);
#endif
  return decode_scalar(src, dst, n, lim);
}
