/*
 * The reconstruction-error proxy's two sums (src/metrics/error-proxy.ts rtnNrmse), in C: asymmetric
 * min-max round-to-nearest at `bits` bits in groups of `group` along each row, float32 arithmetic
 * element by element, Σerr² and Σw² accumulated in double in the same order as the TypeScript, so
 * the result is the same double bit for bit (IEEE float32/double ops, no contraction: the build
 * passes -ffp-contract=off). Rows are zero-padded to a multiple of the group (the pad zeros take
 * part in the last group's min/max and in Σerr²).
 */
#include "error_proxy.h"

#include <math.h>

void swan_rtn_error_sums(const float *data, int64_t rows, int64_t cols, int bits, int64_t group, double out[2]) {
  const int qmax = (1 << bits) - 1;
  const float min_scale = 1e-12f;
  const int64_t padded = (cols + group - 1) / group * group;
  const int64_t pad = padded - cols;
  const double MAGIC = 4503599627370496.0; /* adding and subtracting 2^52 rounds ties to even */
  float lut[256];
  double err_sum = 0, w_sum = 0;
  for (int64_t r = 0; r < rows; r++) {
    const float *row = data + r * cols;
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      const int64_t g1 = g0 + group < cols ? g0 + group : cols;
      const int last_padded = g1 == cols && pad > 0;
      float mn = last_padded ? 0.0f : INFINITY;
      float mx = last_padded ? 0.0f : -INFINITY;
      for (int64_t i = g0; i < g1; i++) {
        const float w = row[i];
        if (w < mn) mn = w;
        if (w > mx) mx = w;
      }
      float scale = (mx - mn) / (float)qmax;
      if (scale < min_scale) scale = min_scale;
      for (int q = 0; q <= qmax; q++) lut[q] = (float)q * scale + mn;
      double e2 = 0, w2 = 0;
      for (int64_t i = g0; i < g1; i++) {
        const float w = row[i];
        double q = (double)((w - mn) / scale);
        q = q + MAGIC - MAGIC;
        q = q < 0 ? 0 : q > qmax ? qmax : q;
        const int qi = q == q ? (int)q : 0; /* NaN: index 0, the error stays NaN through w */
        const float err = lut[qi] - w;
        e2 += (double)err * (double)err;
        w2 += (double)w * (double)w;
      }
      if (last_padded) {
        double q = (double)((0.0f - mn) / scale);
        q = q + MAGIC - MAGIC;
        q = q < 0 ? 0 : q > qmax ? qmax : q;
        const float err = lut[q == q ? (int)q : 0];
        e2 += (double)pad * (double)err * (double)err;
      }
      err_sum += e2;
      w_sum += w2;
    }
  }
  out[0] = err_sum;
  out[1] = w_sum;
}
