#ifndef SWAN_ERROR_PROXY_H
#define SWAN_ERROR_PROXY_H
#include <stdint.h>

/* out[0] = Σ err², out[1] = Σ w² of the error proxy (src/metrics/error-proxy.ts rtnNrmse). */
void swan_rtn_error_sums(const float *data, int64_t rows, int64_t cols, int bits, int64_t group, double out[2]);

#endif
