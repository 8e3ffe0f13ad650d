#ifndef SWAN_XOSHIRO_H
#define SWAN_XOSHIRO_H
#include <stdint.h>

/* swan's xoshiro128** stream (src/rng.ts nextU32/fillU32): the next draw, state s advanced in place. */
static inline uint32_t swan_rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static inline uint32_t swan_xoshiro_next(uint32_t s[4]) {
  const uint32_t x = swan_rotl(s[1] * 5u, 7) * 9u;
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = swan_rotl(s[3], 11);
  return x;
}

#endif
