#ifndef SWAN_MOMENTS_H
#define SWAN_MOMENTS_H
#include <stdint.h>

/*
 * out = [Σx in index order (double), min, max] with JavaScript's Math.min/Math.max semantics (a NaN
 * makes both NaN; −0 is below +0): src/kernels/linalg.ts sumMinMax, the same doubles.
 */
void swan_sum_min_max(const float *x, int64_t n, double out[3]);

/* out = [Σd², Σd⁴], d = x − mean in double, in index order: src/metrics/kurtosis.ts's second pass. */
void swan_central_moments(const float *x, int64_t n, double mean, double out[2]);

#endif
