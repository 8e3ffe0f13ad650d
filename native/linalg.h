#ifndef SWAN_LINALG_H
#define SWAN_LINALG_H

/*
 * The small float64 linear algebra of src/kernels/linalg.ts through LAPACK/BLAS. Every matrix is
 * n×n, row-major, as in the TypeScript. Single-threaded (the BLAS runs on one thread, see
 * swan_blas.c), so the results do not depend on the thread count.
 */

/* r = upper R with RᵀR = G + shift·I, from G's upper triangle (g float32 when g32, else float64).
 * Returns 0, or non-zero when G + shift·I is not positive definite (a pivot ≤ 0 or not finite). */
int swan_cholesky(const void *g, int g32, int n, double shift, double *r);

/* x = R⁻¹ for an upper-triangular R (non-zero return: a zero diagonal entry). */
int swan_invert_upper(const double *r, int n, double *x);

/* c = A·B for upper-triangular A and B. */
void swan_mul_upper(const double *a, const double *b, int n, double *c);

/* w = the eigenvalues of the symmetric A (its upper triangle), ascending. Returns 0; > 0 when the
 * iteration did not converge, < 0 when out of memory. */
int swan_symmetric_eigenvalues(const double *a, int n, double *w);

/* g = the float64 Gram of a row-major rows×cols float32 matrix, full and symmetric: A·Aᵀ (s = rows)
 * when by_rows, else Aᵀ·A (s = cols). Returns 0, or -1 when out of memory. */
int swan_gram(const float *data, int rows, int cols, int by_rows, double *g);

#endif
