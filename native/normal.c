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

int64_t swan_normal_pairs(uint32_t s[4], float *out, int64_t pairs, double scale, double *redo, int64_t cap, int64_t *nredo) {
  const double two_pi = 2 * 3.141592653589793; /* 2·Math.PI, exact */
  uint32_t st[4] = {s[0], s[1], s[2], s[3]};
  int64_t p = 0, k = 0;
  for (; p < pairs && k < cap; p++) {
    uint32_t before[4] = {st[0], st[1], st[2], st[3]};
    const double u = uniform53(st);
    if (u == 0) {
      st[0] = before[0], st[1] = before[1], st[2] = before[2], st[3] = before[3];
      break;
    }
    const double v = uniform53(st);
    const double r = sqrt(-2 * log(u));
    const double theta = two_pi * v;
    const double a = r * cos(theta) * scale;
    const double b = r * sin(theta) * scale;
    if (robust_f32(a) && robust_f32(b)) {
      out[2 * p] = (float)a;
      out[2 * p + 1] = (float)b;
    } else {
      redo[3 * k] = (double)p;
      redo[3 * k + 1] = u;
      redo[3 * k + 2] = v;
      k++;
    }
  }
  s[0] = st[0], s[1] = st[1], s[2] = st[2], s[3] = st[3];
  *nredo = k;
  return p;
}
