/*
 * BF16 ↔ float32 (src/io/float.ts decodeToF32, encodeFromF32): a BF16 value is the top half of its
 * float32, so decoding is a 16-bit shift and encoding a rounding to the top half, 16 or 8 values at a
 * time where AVX2 is there (checked at run time). The decode's count of values at or above the
 * caller's magnitude limit comes from the same pass.
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

/* encodeFromF32's BF16 rounding of one float32 bit pattern. */
static inline uint16_t bf16_of(uint32_t x) {
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static void encode_scalar(const float *src, uint8_t *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t x;
    memcpy(&x, src + i, 4);
    const uint16_t h = bf16_of(x);
    memcpy(dst + 2 * i, &h, 2);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* bf16_of for 8 values, as 8 16-bit results in a 128-bit vector. */
__attribute__((target("avx2"))) static inline __m128i bf16_of8(__m256i x) {
  const __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000)); /* both below 2^31: signed compare */
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), odd), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  const __m256i h = _mm256_blendv_epi8(rounded, quiet, nan); /* each 0..0xffff */
  return _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

__attribute__((target("avx2"))) static void encode_avx2(const float *src, uint8_t *dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(dst + 2 * i), bf16_of8(_mm256_loadu_si256((const __m256i *)(src + i))));
  encode_scalar(src + i, dst + 2 * i, n - i);
}

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

void swan_encode_bf16(const float *src, uint8_t *dst, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2")) {
    encode_avx2(src, dst, n);
    return;
  }
#endif
  encode_scalar(src, dst, n);
}
