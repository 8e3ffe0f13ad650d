#ifndef SWAN_NOISE_H
#define SWAN_NOISE_H
#include <stdint.h>

/* out[i] = (2u − 1)·half for the next len draws of xoshiro128** state s (advanced in place). */
void swan_uniform_noise(uint32_t s[4], float *out, int64_t len, double half);

#endif
