/*
 * The l×l linear algebra of the randomized SVD and of the exact singular values (see linalg.h) by
 * LAPACK's Fortran interface (OpenBLAS ships LAPACK; Accelerate on macOS). LAPACK is column-major:
 * a row-major n×n array read column-major is its transpose, so the row-major upper triangle is the
 * column-major lower one ('L' below), and a row-major upper R is handed over as the lower Rᵀ.
 */
#include "linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __APPLE__
#include <Accelerate/Accelerate.h>
#else
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dtrtri_(const char *uplo, const char *diag, const int *n, double *a, const int *lda, int *info);
extern void dtrmm_(const char *side, const char *uplo, const char *transa, const char *diag, const int *m, const int *n,
                   const double *alpha, const double *a, const int *lda, double *b, const int *ldb);
extern void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha, const double *a,
                   const int *lda, const double *beta, double *c, const int *ldc);
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
                   const int *lwork, int *info);
#endif

int swan_cholesky(const void *g, int g32, int n, double shift, double *r) {
  const float *gf = (const float *)g;
  const double *gd = (const double *)g;
  if (n == 0) return 0;
  memset(r, 0, (size_t)n * (size_t)n * sizeof(double));
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) r[(size_t)i * n + j] = g32 ? (double)gf[(size_t)i * n + j] : gd[(size_t)i * n + j];
  for (int i = 0; i < n; i++) r[(size_t)i * n + i] += shift;
  int info = 0;
  dpotrf_("L", &n, r, &n, &info);
  if (info != 0) return 1;
  /* dpotrf stops at a pivot ≤ 0 or NaN; an infinite one (the TypeScript refuses it too) it keeps. */
  for (int i = 0; i < n; i++)
    if (!isfinite(r[(size_t)i * n + i])) return 1;
  return 0;
}

int swan_invert_upper(const double *r, int n, double *x) {
  if (n == 0) return 0;
  memcpy(x, r, (size_t)n * (size_t)n * sizeof(double));
  int info = 0;
  dtrtri_("L", "N", &n, x, &n, &info);
  return info;
}

void swan_mul_upper(const double *a, const double *b, int n, double *c) {
  /* Column-major, the buffers hold Aᵀ and Bᵀ (lower); Cᵀ = Bᵀ·Aᵀ. */
  if (n == 0) return;
  memcpy(c, b, (size_t)n * (size_t)n * sizeof(double));
  const double one = 1.0;
  dtrmm_("R", "L", "N", "N", &n, &n, &one, a, &n, c, &n);
}

int swan_symmetric_eigenvalues(const double *a, int n, double *w) {
  if (n == 0) return 0;
  double *copy = malloc((size_t)n * (size_t)n * sizeof(double));
  if (!copy) return -1;
  memcpy(copy, a, (size_t)n * (size_t)n * sizeof(double));
  int info = 0, query = -1;
  double size = 0;
  dsyev_("N", "L", &n, copy, &n, w, &size, &query, &info);
  int lwork = info == 0 && size >= 1 ? (int)size : 3 * n;
  if (lwork < 3 * n - 1) lwork = 3 * n - 1;
  if (lwork < 1) lwork = 1;
  double *work = malloc((size_t)lwork * sizeof(double));
  if (!work) {
    free(copy);
    return -1;
  }
  dsyev_("N", "L", &n, copy, &n, w, work, &lwork, &info);
  free(work);
  free(copy);
  return info;
}

int swan_gram(const float *data, int rows, int cols, int by_rows, double *g) {
  const int s = by_rows ? rows : cols, len = by_rows ? cols : rows;
  const int CH = 256; /* vectors are converted to float64 this many elements at a time */
  memset(g, 0, (size_t)s * (size_t)s * sizeof(double));
  if (s == 0 || len == 0) return 0;
  double *v = malloc((size_t)s * CH * sizeof(double)); /* row i: vector i's chunk */
  if (!v) return -1;
  const double one = 1.0;
  for (int k0 = 0; k0 < len; k0 += CH) {
    int kc = len - k0 < CH ? len - k0 : CH;
    if (by_rows) {
      for (int i = 0; i < s; i++)
        for (int p = 0; p < kc; p++) v[(size_t)i * CH + p] = data[(size_t)i * cols + k0 + p];
    } else {
      for (int p = 0; p < kc; p++)
        for (int i = 0; i < s; i++) v[(size_t)i * CH + p] = data[(size_t)(k0 + p) * cols + i];
    }
    /* Column-major, v is the kc×s matrix V of the chunks (column i = vector i): G += VᵀV. */
    dsyrk_("L", "T", &s, &kc, &one, v, &CH, &one, g, &s);
  }
  free(v);
  /* Column-major lower = row-major upper; mirror it. */
  for (int i = 0; i < s; i++)
    for (int j = i + 1; j < s; j++) g[(size_t)j * s + i] = g[(size_t)i * s + j];
  return 0;
}
