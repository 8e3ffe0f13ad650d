/*
 * MLX affine quantization (src/mlx/affine.ts quantizeAffine), in C: the same float32 operations in
 * the same order, so codes, scales and biases are the same bits (the build passes
 * -ffp-contract=off). Groups are independent, so rows are shared out between threads in fixed
 * blocks: the result does not depend on the thread count.
 *
 * Per group, as MLX's kernels do it: the scale and bias of affine.h swan_group_params, then
 * q = clamp(ROUND((w − bias)/scale), 0, n), NaN packing as 0 (swan_rtn_code).
 */
#include "affine.h"

#include <math.h>

#include "parallel.h"

typedef struct {
  const float *w;
  int64_t cols;
  int bits, group, metal;
  uint32_t *wq;
  float *scales, *biases;
} job_t;

static void quantize_rows(void *ctx, int64_t row0, int64_t row1) {
  const job_t *p = (const job_t *)ctx;
  const int n = (1 << p->bits) - 1;
  const int64_t groups_per_row = p->cols / p->group;
  const int64_t words_per_group = (int64_t)p->group * p->bits / 32; /* a group starts on a word */
  for (int64_t gi = row0 * groups_per_row; gi < row1 * groups_per_row; gi++) {
    const float *g = p->w + gi * p->group;
    float scale, bias;
    swan_group_params(g, p->group, n, p->metal, &scale, &bias);
    p->scales[gi] = scale;
    p->biases[gi] = bias;
    uint32_t *o = p->wq + gi * words_per_group;
    uint32_t acc = 0;
    int filled = 0;
    for (int j = 0; j < p->group; j++) {
      const uint32_t qi = swan_rtn_code((g[j] - bias) / scale, n, p->metal);
      acc |= qi << filled;
      filled += p->bits;
      if (filled >= 32) {
        *o++ = acc;
        filled -= 32;
        acc = filled > 0 ? qi >> (p->bits - filled) : 0;
      }
    }
  }
}

void swan_quantize_affine(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int threads,
                          uint32_t *wq, float *scales, float *biases) {
  if ((double)rows * (double)cols < 65536.0) threads = 1; /* not worth a thread */
  job_t job = {.w = w, .cols = cols, .bits = bits, .group = group, .metal = metal, .wq = wq, .scales = scales, .biases = biases};
  /* Every group is computed the same way whoever computes it: the result does not depend on the thread count. */
  swan_parallel_rows(quantize_rows, &job, 0, rows, threads, 1);
}
