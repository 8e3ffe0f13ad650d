#ifndef SWAN_NORMAL_H
#define SWAN_NORMAL_H
#include <stdint.h>

/*
 * Pairs of Box–Muller normals of src/rng.ts fillNormal from xoshiro128** state s (advanced in place
 * over the pairs done): out[2p], out[2p+1] = r·cos θ·scale, r·sin θ·scale as float32. Stops before a
 * pair whose u is 0 (the TypeScript redraws it) and once `cap` pairs are in redo. A pair whose float32
 * values could differ from the TypeScript's (see normal.c) is listed in redo as (p, u, v) for the
 * caller to compute. Returns the pairs done (-1: out of memory); *nredo = the pairs listed. The
 * transforms run on up to `threads` threads; the bytes do not depend on their number.
 */
int64_t swan_normal_pairs(uint32_t s[4], float *out, int64_t pairs, double scale, double *redo, int64_t cap, int64_t *nredo,
                          int threads);

#endif
