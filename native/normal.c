/*
 * src/rng.ts fillNormal's Gaussian pairs in C (see normal.h). The draws and every double operation
 * are the TypeScript's, in the same order (compiled with -ffp-contract=off), except log, cos and sin:
 * V8 computes them with fdlibm, this file with its own branch-free polynomials (log_unit,
 * sincos_turn) that vectorise. Each double x here is within 2⁻⁴⁹ relative of the exact value (the
 * bounds are proved at those functions; sqrt and products round once each) and V8's within 2⁻⁵⁰, so
 * within 2⁻⁴⁸ of each other. A pair is used only when each value rounds to the same float32 anywhere
 * within 2⁻⁴⁶ relative of the double computed here, so it is the float32 the TypeScript stores; the
 * others (about one pair in 10⁶) go back to the caller, which computes them exactly as the
 * TypeScript does.
 */
#include "normal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

#include "xoshiro.h"

/* Uniform in [0, 1) from two consecutive draws, as Rng.uniform(): exact in double. */
static inline double uniform53(uint32_t first, uint32_t second) {
  return ((double)(first >> 5) * 67108864.0 + (double)(second >> 6)) / 9007199254740992.0;
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

/* The transform below must vectorise (the build passes -fno-math-errno for its sqrt). */
#pragma GCC push_options
#pragma GCC optimize("O3")

static inline uint64_t bits_of(double x) {
  uint64_t b;
  memcpy(&b, &x, sizeof b);
  return b;
}

static inline double double_of(uint64_t b) {
  double x;
  memcpy(&x, &b, sizeof x);
  return x;
}

/*
 * log u for u in [2⁻⁵³, 1), relative error below 2⁻⁵⁰. u = 2^k·m with m in [√2/2, √2) (bit
 * arithmetic; u is normal), f = m − 1 exact (Sterbenz), s = f/(2+f), |s| ≤ 0.1716, z = s² ≤ 0.02944:
 * log(1+f) = 2·atanh s = f − (f²/2 − s·(f²/2 + R)), R = Σ_{j≥1} 2z^j/(2j+1). R is cut after j = 9: the
 * rest is below 2|s|·z¹⁰/(21(1−z)) ≤ 2⁻⁵⁵·|log(1+f)| (as |log(1+f)| ≥ 2|s|). The rounding errors
 * sit in the correction (≤ 0.25|log(1+f)|) or in the last operations, a few 2⁻⁵³ in all; for k ≠ 0,
 * k·ln2_hi is exact (ln2_hi has 32 bits) and |k·ln2| ≥ 2·|log(1+f)|, so the sum keeps the bound.
 */
static inline double log_unit(double u) {
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  /* e = k + 1023: u's exponent, one more where u's significand is at least about √2 */
  const uint64_t b = bits_of(u);
  const uint64_t e = (b + (0x3ff0000000000000ull - 0x3fe6a09e00000000ull)) >> 52;
  const double m = double_of(b - (e << 52) + (1023ull << 52));
  const double dk = double_of(e | 0x4330000000000000ull) - 0x1p52 - 1023.0;
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double r =
      z * (2.0 / 3 + z * (2.0 / 5 + z * (2.0 / 7 + z * (2.0 / 9 + z * (2.0 / 11 + z * (2.0 / 13 + z * (2.0 / 15 + z * (2.0 / 17 + z * (2.0 / 19)))))))));
  const double hfsq = 0.5 * f * f;
  return dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
}

/*
 * cos θ and sin θ for θ in [0, 2π], relative error below 2⁻⁵⁰, or *bad = 1 where that is not
 * guaranteed. θ = n·π/2 + r with n = rint(θ·2/π) ≤ 4 and π/2 = P1 + P2 + P3 + t (Cody–Waite): P1, P2
 * have 33 bits, so n·P1, n·P2 are exact and θ − n·P1 is exact (Sterbenz); each later step rounds once
 * (≤ 2⁻⁵³|r|) and |n·t| < 2⁻¹¹⁹, so r is within 2⁻⁵¹·|r| unless |r| < 2⁻⁴⁰ with n ≠ 0 (bad; for n = 0,
 * r = θ exactly). |r| ≤ 0.786: the Taylor series of sin to r¹⁵ and cos to r¹⁶ are alternating, the
 * cut below the next term, r¹⁷/17! ≤ 2⁻⁵³·sin r and r¹⁸/18! ≤ 2⁻⁵⁸·cos r; the rounding errors are a
 * few 2⁻⁵³ (the leading r or 1 exact, the rest ≤ 0.31 of the result).
 */
static inline void sincos_turn(double theta, double *c, double *s, unsigned char *bad) {
  const double P1 = 1.57079632673412561417e+00, P2 = 6.07710050630396597660e-11, P3 = 2.02226624879595063154e-21;
  const double shifter = 6755399441055744.0; /* 1.5·2⁵², rounds to an integer in the low bits */
  const double t = theta * 6.36619772367581382433e-01 + shifter;
  const uint64_t n = bits_of(t) & 3;
  const double dn = t - shifter;
  const double r = ((theta - dn * P1) - dn * P2) - dn * P3;
  const double z = r * r;
  const double sr =
      r + r * z * (-1.0 / 6 + z * (1.0 / 120 + z * (-1.0 / 5040 + z * (1.0 / 362880 + z * (-1.0 / 39916800 + z * (1.0 / 6227020800.0 + z * (-1.0 / 1307674368000.0)))))));
  const double cr =
      1.0 - 0.5 * z + z * z * (1.0 / 24 + z * (-1.0 / 720 + z * (1.0 / 40320 + z * (-1.0 / 3628800 + z * (1.0 / 479001600 + z * (-1.0 / 87178291200.0 + z * (1.0 / 20922789888000.0)))))));
  /* quadrant n: cos θ = cr, −sr, −cr, sr; sin θ = sr, cr, −sr, −cr */
  const uint64_t swap = 0 - (n & 1);
  const uint64_t cb = (bits_of(cr) & ~swap) | (bits_of(sr) & swap), sb = (bits_of(sr) & ~swap) | (bits_of(cr) & swap);
  *c = double_of(cb ^ (((n + 1) & 2) << 62));
  *s = double_of(sb ^ ((n & 2) << 62));
  *bad = (unsigned char)((dn != 0) & (fabs(r) < 0x1p-40));
}

/* Whether x rounds to the same float32 anywhere within 2⁻⁴⁶ relative of it. */
static inline int robust_f32(double x) {
  const double e = fabs(x) * 0x1p-46;
  const float f = (float)x;
  return ((float)(x - e) == f) & ((float)(x + e) == f);
}

/*
 * Pairs p in [a, b) from their draws, always written to out; ok[p] = 1 when both values are the
 * TypeScript's float32 (see the top of this file), else 0 and the caller recomputes the pair.
 * Branch-free, so the loop vectorises (SSE2, and an AVX2 clone chosen at load on x86-64).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__) /* clones need ifunc */
__attribute__((target_clones("avx2", "default")))
#endif
static void transform_slice(const double *restrict u, const double *restrict v, float *restrict out, unsigned char *restrict ok,
                            double scale, int64_t a, int64_t b) {
  const double two_pi = 2 * 3.141592653589793; /* 2·Math.PI, exact */
  for (int64_t p = a; p < b; p++) {
    const double r = sqrt(-2 * log_unit(u[p]));
    double c, s;
    unsigned char bad;
    sincos_turn(two_pi * v[p], &c, &s, &bad);
    const double x = r * c * scale;
    const double y = r * s * scale;
    ok[p] = (unsigned char)((bad == 0) & robust_f32(x) & robust_f32(y));
    out[2 * p] = (float)x;
    out[2 * p + 1] = (float)y;
  }
}

static void transform_pairs(void *ctx, int64_t a, int64_t b) {
  const transform_t *t = (const transform_t *)ctx;
  transform_slice(t->u, t->v, t->out, t->ok, t->scale, a, b);
}

#pragma GCC pop_options

/* The state after `pairs` more pairs (none of them drawing u = 0). */
static void skip_pairs(uint32_t st[4], int64_t pairs) {
  for (int64_t i = 0; i < 4 * pairs; i++) swan_xoshiro_next(st);
}

/*
 * The draws of a block are sequential (one stream) and made first, in a tight loop (forming u and v
 * costs nothing there: the loop waits on the state's dependency chain); the transform of each pair
 * depends on its own draws only, so slicing it between threads gives the same bytes for any thread
 * count. A block that drew u = 0 ends before that pair, the state rewound to just before it. Redo entries are listed in pair order after the block; stopping
 * once redo is full rewinds the state to just past the pair that filled it, as a one-pair-at-a-time
 * loop would stop.
 */
int64_t swan_normal_pairs(uint32_t s[4], float *out, int64_t pairs, double scale, double *redo, int64_t cap, int64_t *nredo,
                          int threads) {
  const int64_t block = pairs < BLOCK_PAIRS ? pairs : BLOCK_PAIRS;
  const size_t room = (size_t)(block > 0 ? block : 1);
  double *u = malloc(room * 2 * sizeof(double));
  unsigned char *ok = malloc(room);
  if (!u || !ok) {
    free(u);
    free(ok);
    return -1;
  }
  double *v = u + room;
  uint32_t st[4] = {s[0], s[1], s[2], s[3]};
  int64_t p0 = 0, k = 0;
  int stopped = cap <= 0;
  while (!stopped && p0 < pairs) {
    const int64_t want = pairs - p0 < block ? pairs - p0 : block;
    const uint32_t start[4] = {st[0], st[1], st[2], st[3]};
    int zero_u = 0;
    for (int64_t i = 0; i < want; i++) {
      const uint32_t d0 = swan_xoshiro_next(st), d1 = swan_xoshiro_next(st);
      const uint32_t d2 = swan_xoshiro_next(st), d3 = swan_xoshiro_next(st);
      u[i] = uniform53(d0, d1);
      v[i] = uniform53(d2, d3);
      zero_u |= u[i] == 0;
    }
    int64_t got = want;
    if (zero_u) {
      for (got = 0; u[got] != 0; got++) continue;
      st[0] = start[0], st[1] = start[1], st[2] = start[2], st[3] = start[3];
      skip_pairs(st, got);
      stopped = 1;
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
