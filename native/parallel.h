#ifndef SWAN_PARALLEL_H
#define SWAN_PARALLEL_H
#include <stdint.h>

/*
 * fn(ctx, a, b) over rows [row0, row1) on up to `threads` threads (at most 64), each taking at least
 * min_rows rows: thread t takes a fixed slice [row0 + rows·t/T, row0 + rows·(t+1)/T). A thread that
 * cannot start has its slice done on the calling thread. For work where every row is computed the
 * same way whoever computes it, the result does not depend on the thread count.
 */
void swan_parallel_rows(void (*fn)(void *ctx, int64_t a, int64_t b), void *ctx, int64_t row0, int64_t row1, int threads,
                        int64_t min_rows);

#endif
