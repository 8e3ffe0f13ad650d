/*
 * The output-sensitivity probe's uniform noise (src/metrics/output-sensitivity.ts), in C: the next
 * `len` draws of swan's xoshiro128** stream (src/rng.ts fillU32), each turned into
 * (2u − 1)·half with u = (x >> 8)·2⁻²⁴, computed in double and stored as float32 exactly as the
 * TypeScript does, so the noise is the same bits. The state s[0..3] is advanced in place.
 */
#include "noise.h"

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

void swan_uniform_noise(uint32_t s[4], float *out, int64_t len, double half) {
  uint32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
  for (int64_t i = 0; i < len; i++) {
    const uint32_t x = rotl(s1 * 5u, 7) * 9u;
    const uint32_t t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    const double u = (double)(x >> 8) * (1.0 / 16777216.0);
    out[i] = (float)((2 * u - 1) * half);
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
}
