#ifndef SWAN_SEARCH_H
#define SWAN_SEARCH_H
#include <stdint.h>

/* Storage dtypes of the scales, biases and decoded weights (src/mlx/affine.ts dtypeKind). */
enum { SWAN_KIND_F32 = 0, SWAN_KIND_BF16 = 1, SWAN_KIND_F16 = 2 };

/* The sums of src/mlx/rounding-search.ts SearchStats, in its order. */
typedef struct {
  double search_err, rtn_err, energy;             /* column-weighted (plain without weights) */
  double plain_search_err, plain_rtn_err, plain_energy;
  int64_t improved_groups;
} swan_search_stats_t;

/*
 * `--rounding search` of a row-major rows×cols matrix (src/mlx/rounding-search.ts
 * quantizeAffineSearch), on `threads` threads; the same bits and the same stats as the TypeScript.
 * wq has rows·cols·bits/32 words, scales and biases rows·cols/group floats; col_weights (cols
 * doubles), group_search and group_rtn (rows·cols/group doubles each) may be NULL. Returns 0, or -1
 * when out of memory (outputs then undefined).
 */
int swan_quantize_search(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int kind,
                         const double *col_weights, int threads, uint32_t *wq, float *scales, float *biases,
                         double *group_search, double *group_rtn, swan_search_stats_t *stats);

/*
 * src/mlx/affine.ts affineRelativeError's sums of a row-major rows×cols matrix: sums[0] = Σ (w − d)²
 * and sums[1] = Σ w², d being MLX's RTN decoded as a loaded model decodes it (scale and bias in the
 * storage dtype `kind`), added weight by weight in the TypeScript's order, so the same doubles.
 * One thread, no allocation. Returns 0.
 */
int swan_affine_error_sums(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int kind, double sums[2]);

#endif
