/* Fixed row slices on threads (parallel.h). */
#include "parallel.h"

#include <pthread.h>

#define MAX_THREADS 64

typedef struct {
  void (*fn)(void *ctx, int64_t a, int64_t b);
  void *ctx;
  int64_t a, b;
} slice_t;

static void *run_slice(void *arg) {
  const slice_t *s = (const slice_t *)arg;
  s->fn(s->ctx, s->a, s->b);
  return NULL;
}

void swan_parallel_rows(void (*fn)(void *ctx, int64_t a, int64_t b), void *ctx, int64_t row0, int64_t row1, int threads,
                        int64_t min_rows) {
  const int64_t rows = row1 - row0;
  if (rows <= 0) return;
  if (min_rows < 1) min_rows = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads > rows / min_rows) threads = (int)(rows / min_rows);
  if (threads < 1) threads = 1;
  slice_t slices[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  int running[MAX_THREADS] = {0};
  for (int t = 0; t < threads; t++)
    slices[t] = (slice_t){.fn = fn, .ctx = ctx, .a = row0 + rows * t / threads, .b = row0 + rows * (t + 1) / threads};
  for (int t = 1; t < threads; t++) running[t] = pthread_create(&tid[t], NULL, run_slice, &slices[t]) == 0;
  run_slice(&slices[0]);
  for (int t = 1; t < threads; t++) {
    if (running[t]) pthread_join(tid[t], NULL);
    else run_slice(&slices[t]); /* no thread: do it here, same result */
  }
}
