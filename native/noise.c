/*
 * The output-sensitivity probe's uniform noise (src/metrics/output-sensitivity.ts), in C: the next
 * `len` draws of swan's xoshiro128** stream (src/rng.ts fillU32), each turned into
 * (2u − 1)·half with u = (x >> 8)·2⁻²⁴, computed in double and stored as float32 exactly as the
 * TypeScript does, so the noise is the same bits. The state s[0..3] is advanced in place.
 */
#include "noise.h"

#include "xoshiro.h"

void swan_uniform_noise(uint32_t s[4], float *out, int64_t len, double half) {
  uint32_t st[4] = {s[0], s[1], s[2], s[3]};
  for (int64_t i = 0; i < len; i++) {
    const uint32_t x = swan_xoshiro_next(st);
    const double u = (double)(x >> 8) * (1.0 / 16777216.0);
    out[i] = (float)((2 * u - 1) * half);
  }
  s[0] = st[0];
  s[1] = st[1];
  s[2] = st[2];
  s[3] = st[3];
}
