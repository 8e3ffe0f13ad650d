/*
 * src/rng.ts fillNormal's Gaussian pairs in C (see normal.h). The draws and every double operation
 * are the TypeScript's, in the same order (compiled with -ffp-contract=off), except log, cos and sin:
 * V8 computes them with its own libm (fdlibm), C with the system's, and the two may differ in the
 * last bit or two. Both are accurate to about one ulp, so each double result here is within a few
 * ulps of the TypeScript's. A pair is used only when each value rounds to the same float32 anywhere
 * within 2⁻⁴⁶ relative of the double computed here (far more than that error), so it is the float32
 * the TypeScript stores; the others (about one pair in 10⁶) go back to the caller, which computes them
 * exactly as the TypeScript does.
 */
#include "normal.h"

#include <math.h>
#include <stdlib.h>

#include "parallel.h"

#include "xoshiro.h"

/* Uniform in [0, 1) from two draws, as Rng.uniform(): exact in double. */
static inline double uniform53(uint32_t s[4]) {
  const uint32_t hi = swan_xoshiro_next(s) >> 5;
  const uint32_t lo = swan_xoshiro_next(s) >> 6;
  return ((double)hi * 67108864.0 + (double)lo) / 9007199254740992.0;
}

/* Whether x rounds to the same float32 anywhere within 2⁻⁴⁶ relative of it. */
static inline int robust_f32(double x) {
  const double e = fabs(x) * 0x1p-46;
  const float f = (float)x;
  return (float)(x - e) == f && (float)(x + e) == f;
}

/* Pairs whose draws are made before their transform, in blocks (the transform on threads). */
#define BLOCK_PAIRS 32768
#define MIN_PAIRS_PER_THREAD 4096

typedef struct {
  const double *u, *v;
  float *out;
  unsigned char *ok;
  double scale;
} transform_t;

/* Pair p from its draws: written to out when robust (ok[p] = 1), else left for the caller. */
static void transform_pairs(void *ctx, int64_t a, int64_t b) {
  const transform_t *t = (const transform_t *)ctx;
  const double two_pi = 2 * 3.141592653589793; /* 2·Math.PI, exact */
  for (int64_t p = a; p < b; p++) {
    const double r = sqrt(-2 * log(t->u[p]));
    const double theta = two_pi * t->v[p];
    const double x = r * cos(theta) * t->scale;
    const double y = r * sin(theta) * t->scale;
    t->ok[p] = robust_f32(x) && robust_f32(y);
    if (t->ok[p]) {
      t->out[2 * p] = (float)x;
      t->out[2 * p + 1] = (float)y;
    }
  }
}

/* The state after `pairs` more pairs (none of them drawing u = 0). */
static void skip_pairs(uint32_t st[4], int64_t pairs) {
  for (int64_t i = 0; i < 4 * pairs; i++) swan_xoshiro_next(st);
}

/*
 * The draws of a block are sequential (one stream); the transform of each pair depends on its own
 * draws only, so slicing it between threads gives the same bytes for any thread count. Redo entries
 * are listed in pair order after the block; stopping once redo is full rewinds the state to just
 * past the pair that filled it, as a one-pair-at-a-time loop would stop.
 */
int64_t swan_normal_pairs(uint32_t s[4], float *out, int64_t pairs, double scale, double *redo, int64_t cap, int64_t *nredo,
                          int threads) {
  const int64_t block = pairs < BLOCK_PAIRS ? pairs : BLOCK_PAIRS;
  double *u = malloc((size_t)(block > 0 ? block : 1) * 2 * sizeof(double));
  unsigned char *ok = malloc((size_t)(block > 0 ? block : 1));
  if (!u || !ok) {
    free(u);
    free(ok);
    return -1;
  }
  double *v = u + block;
  uint32_t st[4] = {s[0], s[1], s[2], s[3]};
  int64_t p0 = 0, k = 0;
  int stopped = cap <= 0;
  while (!stopped && p0 < pairs) {
    const int64_t want = pairs - p0 < block ? pairs - p0 : block;
    const uint32_t start[4] = {st[0], st[1], st[2], st[3]};
    int64_t got = 0;
    for (; got < want; got++) {
      uint32_t before[4] = {st[0], st[1], st[2], st[3]};
      u[got] = uniform53(st);
      if (u[got] == 0) {
        st[0] = before[0], st[1] = before[1], st[2] = before[2], st[3] = before[3];
        stopped = 1;
        break;
      }
      v[got] = uniform53(st);
    }
    transform_t t = {.u = u, .v = v, .out = out + 2 * p0, .ok = ok, .scale = scale};
    swan_parallel_rows(transform_pairs, &t, 0, got, threads, MIN_PAIRS_PER_THREAD);
    for (int64_t i = 0; i < got; i++) {
      if (ok[i]) continue;
      redo[3 * k] = (double)(p0 + i);
      redo[3 * k + 1] = u[i];
      redo[3 * k + 2] = v[i];
      if (++k == cap) {
        st[0] = start[0], st[1] = start[1], st[2] = start[2], st[3] = start[3];
        skip_pairs(st, i + 1);
        got = i + 1;
        stopped = 1;
        break;
      }
    }
    p0 += got;
  }
  free(u);
  free(ok);
  s[0] = st[0], s[1] = st[1], s[2] = st[2], s[3] = st[3];
  *nredo = k;
  return p0;
}
