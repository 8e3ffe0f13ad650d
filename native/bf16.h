#ifndef SWAN_BF16_H
#define SWAN_BF16_H
#include <stdint.h>

/*
 * n little-endian BF16 values at src (any alignment) decoded into float32 dst (src/io/float.ts
 * decodeToF32). Returns how many have magnitude bits (value & 0x7fff) at or above lim (0x8000: none
 * can be): the caller tallies those itself, the rare case.
 */
int64_t swan_decode_bf16(const uint8_t *src, float *dst, int64_t n, uint32_t lim);

/*
 * n float32 values encoded into little-endian BF16 at dst (any alignment), rounding to nearest even;
 * a NaN keeps its top bits with the quiet bit set (src/io/float.ts encodeFromF32, the same bits).
 */
void swan_encode_bf16(const float *src, uint8_t *dst, int64_t n);

#endif
