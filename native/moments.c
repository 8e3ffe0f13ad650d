/*
 * The kurtosis metric's passes over a tensor (src/kernels/linalg.ts sumMinMax, src/metrics/kurtosis.ts):
 * the same double operations in the same order (the build passes -ffp-contract=off), so the same
 * bits. The sums are chains of dependent additions either way; in C they run at the adder's latency.
 */
#include "moments.h"

#include <math.h>

void swan_sum_min_max(const float *x, int64_t n, double out[3]) {
  double sum = 0;
  float mn = INFINITY, mx = -INFINITY;
  int nan = 0;
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    sum += (double)v;
    nan |= v != v;
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  if (nan) {
    out[0] = sum;
    out[1] = out[2] = NAN;
    return;
  }
  /* Math.min(+0, −0) is −0 and Math.max(−0, +0) is +0, whichever comes first. */
  if (mn == 0 || mx == 0) {
    int neg_zero = 0, pos_zero = 0;
    for (int64_t i = 0; i < n; i++) {
      if (x[i] == 0) {
        if (signbit(x[i])) neg_zero = 1;
        else pos_zero = 1;
      }
    }
    if (mn == 0) mn = neg_zero ? -0.0f : 0.0f;
    if (mx == 0) mx = pos_zero ? 0.0f : -0.0f;
  }
  out[0] = sum;
  out[1] = mn;
  out[2] = mx;
}

void swan_central_moments(const float *x, int64_t n, double mean, double out[2]) {
  double m2 = 0, m4 = 0;
  for (int64_t i = 0; i < n; i++) {
    const double d = (double)x[i] - mean;
    const double d2 = d * d;
    m2 += d2;
    m4 += d2 * d2;
  }
  out[0] = m2;
  out[1] = m4;
}
