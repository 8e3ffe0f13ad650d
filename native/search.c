/*
 * `--rounding search` (src/mlx/rounding-search.ts quantizeWithSearch and searchGroup), in C: the
 * same double operations in the same order, so codes, scales, biases and every reported sum are the
 * same bits as the TypeScript's (the build passes -ffp-contract=off: no fused multiply-adds).
 *
 * MLX's RTN first (native/affine.c, the TypeScript's bits), then per group: RTN's exact error as
 * decoded in the storage dtype, the scale search with the bias at the largest-magnitude weight
 * (grid, then refinement), the winner rounded to the dtype with the nearest decodable code per
 * weight, kept only when strictly better. The file comment of rounding-search.ts says why.
 *
 * Vectors: where SSE2 is there (every x86-64), the codes and the grid's independent fits run two
 * doubles at a time with the same IEEE operations; sums stay one running sum each, in order.
 *
 * Threads: groups are independent, so rows are shared out between threads; each group's values are
 * held and summed afterwards in group order, one block of rows at a time, as the TypeScript's loop
 * adds them. The result does not depend on the thread count.
 */
#include "search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "affine.h"
#include "parallel.h"

#define GRID_STEPS 10
#define REFINE_STEPS 4
/* Groups whose results are held before they are summed (a few MB). */
#define BLOCK_GROUPS 65536
/* Weights per thread below which another thread is not worth starting. */
#define MIN_THREAD_WEIGHTS 16384

/*
 * The TypeScript's code `q = Math.round(x); q = q < 0 ? 0 : q > n ? n : q` (Math.round: halves
 * toward +∞), without a floor() call (a libm call per weight and step was most of the cost). NaN
 * stays NaN (a fit on it is dropped, as in the TypeScript). Where the TypeScript gives −0 (x in
 * [−0.5, 0)) this gives +0: every use (products summed from +0, a product added to a non-zero
 * edge, an array index) makes no difference between them.
 */
static inline double round_code(double x, int n) {
  if (x != x) return x;
  if (x < 0.5) return 0;
  if (x >= n - 0.5) return n;
  const double t = (double)(int)x; /* floor: 0.5 ≤ x < n − 0.5; x − t is exact */
  return x - t >= 0.5 ? t + 1 : t;
}

/* The inverse codes_of multiplies by: NaN where 1/b is not a normal double (then it divides). */
static inline double inverse(double b) {
  const double inv = 1 / b;
  return isnormal(inv) ? inv : NAN;
}

/*
 * q[j] = round_code((v[j] − base) / b, n) for j < g, multiplying by 1/b instead of dividing where
 * that cannot change the code, without branches on the data (divisions and mispredicted branches
 * were most of the search's cost). y = a·(1/b) is within 3.001·2⁻⁵³·|y| of fl(a/b) (two roundings
 * against one, 1/b normal); clamped to [−1, n+1] (which keeps the code), the code is
 * floor(y + 0.5) clamped to [0, n], and only a half-integer y (an integer f below, the codes'
 * boundaries) within 1e-12 could round y and a/b apart: those weights, and NaN, are redone by
 * division.
 */
static inline int near_boundary(double y, int n, int *code) {
  const double f = (y > -1 ? (y < n + 1 ? y : n + 1) : -1) + 1.5; /* > 0: the int conversion floors */
  const int k = (int)f;
  const double d = f - k;
  int c = k - 1;
  c = c < 0 ? 0 : c;
  *code = c > n ? n : c;
  return (d < 1e-12) | (d > 1 - 1e-12) | (y != y);
}

#ifdef __SSE2__
/*
 * near_boundary for two values at once, with the same IEEE operations: max/min return the clamp's
 * bound for NaN as the ternaries do, the truncating conversion floors the positive f. Codes into
 * q[0..1]; returns the two "redo" flags as a bit mask.
 */
static inline int near_boundary2(__m128d y, int n, double *q) {
  const __m128d f = _mm_add_pd(_mm_min_pd(_mm_max_pd(y, _mm_set1_pd(-1)), _mm_set1_pd(n + 1)), _mm_set1_pd(1.5));
  const __m128d fl = _mm_cvtepi32_pd(_mm_cvttpd_epi32(f));
  const __m128d d = _mm_sub_pd(f, fl);
  _mm_storeu_pd(q, _mm_min_pd(_mm_max_pd(_mm_sub_pd(fl, _mm_set1_pd(1)), _mm_setzero_pd()), _mm_set1_pd(n)));
  const __m128d near = _mm_or_pd(_mm_cmplt_pd(d, _mm_set1_pd(1e-12)), _mm_cmpgt_pd(d, _mm_set1_pd(1 - 1e-12)));
  return _mm_movemask_pd(_mm_or_pd(near, _mm_cmpunord_pd(y, y)));
}
#endif

/* q[j] for j < g (g even): the product route, two weights at a time with SSE2; the division route for those near a boundary. */
static void codes_of(const float *v, double base, double b, int g, int n, double *q) {
  const double inv = inverse(b);
  int redo = 0, c;
#ifdef __SSE2__
  const __m128d vb = _mm_set1_pd(base), vi = _mm_set1_pd(inv);
  for (int j = 0; j < g; j += 2) {
    const __m128d x = _mm_sub_pd(_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(v + j)))), vb);
    redo |= near_boundary2(_mm_mul_pd(x, vi), n, q + j);
  }
#else
  for (int j = 0; j < g; j++) {
    redo |= near_boundary((v[j] - base) * inv, n, &c);
    q[j] = c;
  }
#endif
  if (!redo) return;
  for (int j = 0; j < g; j++)
    if (near_boundary((v[j] - base) * inv, n, &c)) q[j] = round_code((v[j] - base) / b, n);
}

static inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* affine.ts roundBf16: nearest even by bit manipulation, NaN unchanged. */
static inline double round_bf16(float x) {
  const uint32_t u = f32_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  return bits_f32((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}

/* affine.ts roundF16: nearest even, ±65520 and beyond to ±inf, subnormals by an exact double sum. */
static inline double round_f16(float x) {
  const uint32_t u = f32_bits(x);
  const uint32_t a = u & 0x7fffffffu;
  if (a < 0x38800000u) {
    const double m = (fabs((double)x) + 402653184.0) - 402653184.0;
    return u >> 31 ? -m : m;
  }
  if (a > 0x7f800000u) return x;
  const uint32_t r = (u + 0xfffu + ((u >> 13) & 1u)) & 0xffffe000u;
  if ((r & 0x7fffffffu) >= 0x47800000u) return u >> 31 ? -INFINITY : INFINITY;
  return bits_f32(r);
}

/* affine.ts roundTo: to float32, then to the dtype. */
static inline double round_to(double x, int kind) {
  const float f = (float)x;
  if (kind == SWAN_KIND_F32) return f;
  if (kind == SWAN_KIND_BF16) return round_bf16(f);
  return round_f16(f);
}

/* affine.ts cachedDecode: decodeCode of each code computed once per group (stamp). */
typedef struct {
  double value[256];
  uint32_t stamp_of[256];
  uint32_t stamp;
  double scale, bias;
  int kind;
} decoder_t;

static void decoder_start(decoder_t *d, double scale, double bias) {
  if (++d->stamp == 0) {
    memset(d->stamp_of, 0, sizeof d->stamp_of);
    d->stamp = 1;
  }
  d->scale = scale;
  d->bias = bias;
}

/* affine.ts decodeCode: code q of a group whose stored scale and bias are s and b, in dtype `kind`. */
static inline double decode_code(double s, double b, double q, int kind) {
  return round_to(round_to(s * q, kind) + b, kind);
}

static inline double decode(decoder_t *d, int q) {
  if (d->stamp_of[q] == d->stamp) return d->value[q];
  const double v = decode_code(d->scale, d->bias, q, d->kind);
  d->value[q] = v;
  d->stamp_of[q] = d->stamp;
  return v;
}

/* One group's scale search (searchGroup's fit and its best so far). cw: the group's column weights or NULL. */
typedef struct {
  const float *v;
  const double *cw;
  int g, n;
  double edge, best_err, best_s;
} fit_t;

/* Codes for step s0, then the least-squares step for those codes (bias fixed at the edge). */
static void fit(fit_t *f, double s0) {
  const float *v = f->v;
  const double edge = f->edge;
  double q[128];
  codes_of(v, edge, s0, f->g, f->n, q);
  double sq = 0, sqv = 0;
  for (int j = 0; j < f->g; j++) {
    const double c = f->cw ? f->cw[j] : 1;
    sq += c * q[j] * q[j];
    sqv += c * q[j] * (v[j] - edge);
  }
  if (!(sq > 0)) return;
  const double s = sqv / sq;
  if (!(s != 0) || !isfinite(s)) return;
  /* Error with nearest codes under s: never above the fit's own residual. */
  codes_of(v, edge, s, f->g, f->n, q);
  double e = 0;
  for (int j = 0; j < f->g; j++) {
    const double d = v[j] - (s * q[j] + edge);
    e += (f->cw ? f->cw[j] : 1) * d * d;
  }
  if (e < f->best_err) {
    f->best_err = e;
    f->best_s = s;
  }
}

/*
 * The grid's fits (searchGroup's first loop: fit() for each step), all steps in one pass over the
 * group. Each step still adds its sums weight by weight in the TypeScript's order, one running sum
 * per step, and gets its codes as codes_of does (product, division where near a boundary), so every
 * value is the sequential fit's; only the independent steps are interleaved, which lets the CPU
 * overlap their additions (the sequential sums were latency-bound). The steps are then compared in
 * order, as the sequential fits would have updated the best.
 */
/*
 * One lane per grid step, padded to an even count so SSE2 takes them two at a time; the padding lane
 * repeats the last step and is never compared.
 */
#define LANES (GRID_STEPS + 2)

/* Each lane's code for x (codes_of's product route), and whether any lane must be redone by division. */
static inline int lane_codes(double x, const double *inv, int n, double *q) {
  int redo = 0;
#ifdef __SSE2__
  const __m128d vx = _mm_set1_pd(x);
  for (int k = 0; k < LANES; k += 2) redo |= near_boundary2(_mm_mul_pd(vx, _mm_loadu_pd(inv + k)), n, q + k);
#else
  for (int k = 0; k < LANES; k++) {
    int code;
    redo |= near_boundary(x * inv[k], n, &code);
    q[k] = code;
  }
#endif
  return redo;
}

/* codes_of's division route for the lanes near a boundary (rare). */
static void redo_lanes(double x, const double *inv, const double *step, int n, double *q) {
  int code;
  for (int k = 0; k < LANES; k++)
    if (near_boundary(x * inv[k], n, &code)) q[k] = round_code(x / step[k], n);
}

static void grid_fits(fit_t *f, double other) {
  const float *v = f->v;
  const double *cw = f->cw;
  const double edge = f->edge;
  const int g = f->g, n = f->n;
  double step[LANES], inv[LANES], sq[LANES], sqv[LANES], e[LANES], q[LANES];
  int ok[LANES];
  for (int k = 0; k < LANES; k++) {
    const int kk = k <= GRID_STEPS ? k : GRID_STEPS;
    step[k] = (other - edge) / ((double)(n - 1) + (2.0 * kk) / GRID_STEPS);
    inv[k] = inverse(step[k]);
    sq[k] = sqv[k] = e[k] = 0;
  }
  for (int j = 0; j < g; j++) {
    const double x = v[j] - edge, c = cw ? cw[j] : 1;
    if (lane_codes(x, inv, n, q)) redo_lanes(x, inv, step, n, q);
    for (int k = 0; k < LANES; k++) {
      sq[k] += c * q[k] * q[k];
      sqv[k] += c * q[k] * x;
    }
  }
  /* The least-squares step of each; a step fit() would have dropped keeps a harmless stand-in. */
  for (int k = 0; k < LANES; k++) {
    const double s = sqv[k] / sq[k];
    ok[k] = k <= GRID_STEPS && sq[k] > 0 && s != 0 && isfinite(s);
    step[k] = ok[k] ? s : 1;
    inv[k] = inverse(step[k]);
  }
  for (int j = 0; j < g; j++) {
    const double x = v[j] - edge, vj = v[j], c = cw ? cw[j] : 1;
    if (lane_codes(x, inv, n, q)) redo_lanes(x, inv, step, n, q);
    for (int k = 0; k < LANES; k++) {
      const double d = vj - (step[k] * q[k] + edge);
      e[k] += c * d * d;
    }
  }
  for (int k = 0; k <= GRID_STEPS; k++)
    if (ok[k] && e[k] < f->best_err) {
      f->best_err = e[k];
      f->best_s = step[k];
    }
}

/* searchGroup: 0 for a constant group (nothing to search) or when no fit was finite. */
static int search_group(const float *v, int g, int n, const double *cw, double *scale, double *edge_out) {
  double mn = INFINITY, mx = -INFINITY;
  for (int j = 0; j < g; j++) {
    const double x = v[j];
    if (x < mn) mn = x;
    if (x > mx) mx = x;
  }
  if (!(mx - mn > 0)) return 0;
  const double edge = fabs(mn) > fabs(mx) ? mn : mx;
  const double other = edge == mn ? mx : mn;
  fit_t f = {.v = v, .cw = cw, .g = g, .n = n, .edge = edge, .best_err = INFINITY, .best_s = (other - edge) / n};
  grid_fits(&f, other);
  for (int r = 0; r < REFINE_STEPS; r++) {
    const double before = f.best_err;
    fit(&f, f.best_s);
    /* A step that did not improve left best_s as it was: the next one would repeat it exactly. */
    if (!(f.best_err < before)) break;
  }
  *scale = f.best_s;
  *edge_out = edge;
  return f.best_err < INFINITY;
}

/* A group's codes from its packed words (pack.ts readCode; a group starts on a word). */
static void unpack_group(const uint32_t *words, int g, int bits, uint8_t *codes) {
  const uint32_t mask = (1u << bits) - 1;
  for (int i = 0; i < g; i++) {
    const int k = i * bits, word = k >> 5, off = k & 31;
    uint32_t v = words[word] >> off;
    if (off + bits > 32) v |= words[word + 1] << (32 - off);
    codes[i] = (uint8_t)(v & mask);
  }
}

/* pack.ts packBits of one group into its words. */
static void pack_group(const uint8_t *codes, int g, int bits, uint32_t *words) {
  uint32_t acc = 0;
  int filled = 0;
  for (int i = 0; i < g; i++) {
    const uint32_t q = codes[i];
    acc |= q << filled;
    filled += bits;
    if (filled >= 32) {
      *words++ = acc;
      filled -= 32;
      acc = filled > 0 ? q >> (bits - filled) : 0;
    }
  }
}

typedef struct {
  const float *w;
  const double *cw;
  int64_t cols;
  int bits, group, kind;
  uint32_t *wq;
  float *scales, *biases;
  double *group_search, *group_rtn;
  /* The current block: its first group and each of its groups' values. */
  int64_t block_group0;
  swan_search_stats_t *results;
} job_t;

/* quantizeWithSearch's loop body for group gi: its values into *r, a better result into the outputs. */
static void search_one(const job_t *j, int64_t gi, decoder_t *dec, swan_search_stats_t *r) {
  const int g = j->group, bits = j->bits, n = (1 << bits) - 1;
  const int64_t off = gi * g;
  const float *x = j->w + off;
  const double *cw = j->cw ? j->cw + off % j->cols : NULL;
  uint32_t *words = j->wq + gi * ((int64_t)g * bits / 32);
  uint8_t codes[256], new_codes[256];
  unpack_group(words, g, bits, codes);

  /* Exact error of MLX's RTN as a loaded model sees it. */
  decoder_start(dec, round_to(j->scales[gi], j->kind), round_to(j->biases[gi], j->kind));
  double e_r = 0, energy = 0, p_r = 0, p_energy = 0;
  for (int i = 0; i < g; i++) {
    const double xi = x[i];
    const double d = xi - decode(dec, codes[i]);
    const double c = cw ? cw[i] : 1;
    e_r += c * d * d;
    energy += c * xi * xi;
    p_r += d * d;
    p_energy += xi * xi;
  }
  double e_s = e_r, p_s = p_r;
  int improved = 0;
  double s, edge;
  if (e_r > 0 && search_group(x, g, n, cw, &s, &edge)) {
    const double s_t = round_to(s, j->kind), b_t = round_to(edge, j->kind);
    if (s_t != 0 && isfinite(s_t) && isfinite(b_t)) {
      decoder_start(dec, s_t, b_t);
      double q[128];
      codes_of(x, b_t, s_t, g, n, q);
      double e = 0, pe = 0;
      for (int i = 0; i < g; i++) {
        const double xi = x[i];
        /* q is NaN only for a non-finite weight, whose group has no finite RTN error and so no search */
        const int q0 = q[i] == q[i] ? (int)q[i] : 0;
        int best = q0;
        double bd = fabs(xi - decode(dec, q0));
        if (q0 > 0) {
          const double d = fabs(xi - decode(dec, q0 - 1));
          if (d < bd) bd = d, best = q0 - 1;
        }
        if (q0 < n) {
          const double d = fabs(xi - decode(dec, q0 + 1));
          if (d < bd) bd = d, best = q0 + 1;
        }
        new_codes[i] = (uint8_t)best;
        e += (cw ? cw[i] : 1) * bd * bd;
        pe += bd * bd;
      }
      if (e < e_r) {
        e_s = e;
        p_s = pe;
        pack_group(new_codes, g, bits, words);
        j->scales[gi] = (float)s_t;
        j->biases[gi] = (float)b_t;
        improved = 1;
      }
    }
  }
  *r = (swan_search_stats_t){e_s, e_r, energy, p_s, p_r, p_energy, improved};
  if (j->group_search) j->group_search[gi] = e_s;
  if (j->group_rtn) j->group_rtn[gi] = e_r;
}

static void search_rows(void *ctx, int64_t row0, int64_t row1) {
  const job_t *j = (const job_t *)ctx;
  decoder_t dec = {.stamp = 0, .kind = j->kind}; /* every stamp_of 0: nothing cached */
  const int64_t per_row = j->cols / j->group;
  for (int64_t gi = row0 * per_row; gi < row1 * per_row; gi++) search_one(j, gi, &dec, &j->results[gi - j->block_group0]);
}

int swan_quantize_search(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int kind,
                         const double *col_weights, int threads, uint32_t *wq, float *scales, float *biases,
                         double *group_search, double *group_rtn, swan_search_stats_t *stats) {
  *stats = (swan_search_stats_t){0};
  swan_quantize_affine(w, rows, cols, bits, group, metal, threads, wq, scales, biases);
  const int64_t per_row = cols / group;
  int64_t block_rows = BLOCK_GROUPS / per_row;
  if (block_rows < 1) block_rows = 1;
  if (block_rows > rows) block_rows = rows;
  swan_search_stats_t *results = malloc((size_t)(block_rows > 0 ? block_rows : 1) * (size_t)per_row * sizeof *results);
  if (!results) return -1;
  job_t j = {.w = w, .cw = col_weights, .cols = cols, .bits = bits, .group = group, .kind = kind, .wq = wq,
             .scales = scales, .biases = biases, .group_search = group_search, .group_rtn = group_rtn, .results = results};
  for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
    const int64_t r1 = r0 + block_rows < rows ? r0 + block_rows : rows;
    j.block_group0 = r0 * per_row;
    /* Rows [r0, r1) shared out from row r0: search_rows takes absolute rows. */
    swan_parallel_rows(search_rows, &j, r0, r1, threads, MIN_THREAD_WEIGHTS / cols + 1);
    /* The sums in group order, as the TypeScript adds them. */
    for (int64_t i = 0; i < (r1 - r0) * per_row; i++) {
      const swan_search_stats_t *r = &results[i];
      stats->search_err += r->search_err;
      stats->rtn_err += r->rtn_err;
      stats->energy += r->energy;
      stats->plain_search_err += r->plain_search_err;
      stats->plain_rtn_err += r->plain_rtn_err;
      stats->plain_energy += r->plain_energy;
      stats->improved_groups += r->improved_groups;
    }
  }
  free(results);
  return 0;
}

int swan_affine_error_sums(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int kind, double sums[2]) {
  const int n = (1 << bits) - 1;
  const int64_t groups = rows * cols / group;
  double num = 0, den = 0;
  /* Weight by weight in the TypeScript's order: one running sum each, as affineRelativeError adds them. */
  for (int64_t gi = 0; gi < groups; gi++) {
    const float *x = w + gi * group;
    float scale, bias;
    swan_group_params(x, group, n, metal, &scale, &bias);
    const double s_t = round_to(scale, kind), b_t = round_to(bias, kind);
    for (int i = 0; i < group; i++) {
      const double xi = x[i];
      /* decode_code without decode()'s cache: a group sees most of its codes once, so the cache only mispredicted. */
      const double q = swan_rtn_code((x[i] - bias) / scale, n, metal);
      const double d = xi - decode_code(s_t, b_t, q, kind);
      num += d * d;
      den += xi * xi;
    }
  }
  sums[0] = num;
  sums[1] = den;
  return 0;
}
