#ifndef SWAN_AFFINE_H
#define SWAN_AFFINE_H
#include <math.h>
#include <stdint.h>

/* swan_group_params' scale and bias from the group's min and max (as the loop below finds them). */
static inline void swan_params_of_range(float wmin, float wmax, int n, int metal, float *scale, float *bias) {
  float s0 = (wmax - wmin) / (float)n;
  if (s0 < 1e-7f) s0 = 1e-7f;
  const int neg = fabsf(wmin) > fabsf(wmax);
  if (!neg) s0 = -s0;
  const float edge = neg ? wmin : wmax;
  const double t0 = edge / s0; /* a float quotient, as the kernels round it */
  const double q0 = metal ? (t0 < 0 ? -floor(0.5 - t0) : floor(t0 + 0.5)) : nearbyint(t0);
  if (q0 != 0) {
    *scale = edge / (float)q0;
    *bias = edge;
  } else {
    *scale = s0;
    *bias = 0;
  }
}

/*
 * MLX's scale and bias of one group of `group` weights (src/mlx/affine.ts groupParams), in float32
 * as its kernels compute them: s0 = max((wmax − wmin)/n, 1e-7); neg = |wmin| > |wmax|; s0 = neg ? s0 : −s0;
 * edge = neg ? wmin : wmax; q0 = ROUND(edge/s0); q0 ≠ 0 → scale = edge/q0, bias = edge, else
 * scale = s0, bias = 0. Metal rules: ROUND ties away from zero and wmax starts at 0; CPU rules: ties
 * to even, true min/max.
 */
static inline void swan_group_params(const float *g, int group, int n, int metal, float *scale, float *bias) {
  float wmin = INFINITY, wmax = metal ? 0.0f : -INFINITY;
  for (int j = 0; j < group; j++) {
    if (g[j] < wmin) wmin = g[j];
    if (g[j] > wmax) wmax = g[j];
  }
  swan_params_of_range(wmin, wmax, n, metal, scale, bias);
}

/*
 * A weight's code: ROUND(t) clamped to [0, n], NaN as 0 (how MLX packs it), without a libm call:
 * t + 0.5 is exact in double for a float t, and truncation floors it where it is positive.
 */
static inline uint32_t swan_rtn_code(float t, int n, int metal) {
  if (!(t >= 0)) return 0; /* ROUND(t) ≤ 0 (or NaN): code 0 */
  if (t >= n) return (uint32_t)n;
  const double u = (double)t + 0.5;
  uint32_t r = (uint32_t)u;
  if (!metal && (double)r == u && (r & 1u)) r--; /* t was a half: ties to even */
  return r;
}

/* MLX affine quantization of a row-major rows×cols matrix (src/mlx/affine.ts quantizeAffine), on
 * `threads` threads; wq has rows·cols·bits/32 words, scales and biases rows·cols/group floats. */
void swan_quantize_affine(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int threads,
                          uint32_t *wq, float *scales, float *biases);

#endif
