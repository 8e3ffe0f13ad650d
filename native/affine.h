#ifndef SWAN_AFFINE_H
#define SWAN_AFFINE_H
#include <stdint.h>

/* MLX affine quantization of a row-major rows×cols matrix (src/mlx/affine.ts quantizeAffine), on
 * `threads` threads; wq has rows·cols·bits/32 words, scales and biases rows·cols/group floats. */
void swan_quantize_affine(const float *w, int64_t rows, int64_t cols, int bits, int group, int metal, int threads,
                          uint32_t *wq, float *scales, float *biases);

#endif
