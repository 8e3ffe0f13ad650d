/*
 * swan_blas: an optional N-API addon exposing the platform BLAS's SGEMM to the native kernel
 * backend (src/kernels/native-backend.ts). Built by scripts/build-native.mjs with the system C
 * compiler against OpenBLAS (Linux) or Accelerate (macOS); when it is not built, swan uses the
 * WebAssembly backend.
 *
 * Exports:
 *   gemm(transA, transB, m, n, k, a, b, c)  C[m×n] = op(A)·op(B) on row-major Float32Arrays, in place
 *                                            (no copies). Throws on wrong types or short arrays.
 *   setThreads(n)                            threads for large GEMMs, the calling one included
 *   getThreads()                             that count
 *   info()                                   { blas, config, corename }
 *   rtnErrorSums(data, rows, cols, bits, group)  [Σerr², Σw²] of the error proxy (native/error_proxy.c),
 *                                            the same doubles as the TypeScript rtnNrmse computes
 *   uniformNoise(state, out, len, half)      the output-sensitivity noise (native/noise.c); state is a
 *                                            Uint32Array(4) of xoshiro128** state, advanced in place
 *   quantizeAffine(w, rows, cols, bits, group, metal, wq, scales, biases)
 *                                            MLX affine quantization (native/affine.c) on the
 *                                            setThreads threads, the same bits as the TypeScript
 *   quantizeSearch(w, rows, cols, bits, group, metal, kind, colWeights, wq, scales, biases,
 *                  groupSearch, groupRtn, stats)
 *                                            `--rounding search` (native/search.c) on the setThreads
 *                                            threads: the TypeScript's bits and SearchStats sums
 *   cholesky(g, n, shift, r)                 r = upper R, RᵀR = G + shift·I (g Float32Array or
 *                                            Float64Array, r Float64Array; native/linalg.c); false
 *                                            when not positive definite
 *   invertUpper(r, n, x)                     x = R⁻¹ (Float64Arrays); false on a zero pivot
 *   mulUpper(a, b, n, c)                     c = A·B, upper-triangular Float64Arrays
 *   symmetricEigenvalues(a, n, w)            w = eigenvalues of the symmetric A, ascending
 *                                            (Float64Arrays); throws when they do not converge
 *   gram(data, rows, cols, byRows, g)        g = float64 A·Aᵀ (byRows) or Aᵀ·A of a Float32Array
 *   mulUpperRight(y, rows, n, u, out)        out = Y·U (float32, Y rows×n, U n×n upper triangular) by
 *                                            STRMM on chunks of rows, like gemm's: half GEMM's flops
 *   solveUpperRight(y, rows, n, u, out)      out = Y·U⁻¹ (float32, the same shapes) by STRSM on the same chunks
 *   gram32(data, rows, cols, byRows, out)   out = float32 A·Aᵀ (byRows) or Aᵀ·A of a Float32Array, by
 *                                            SGEMMs on the lower triangle's row chunks: half GEMM's flops
 *   normalPairs(state, out, offset, pairs, scale, redo)
 *                                            fillNormal's Gaussian pairs into out from offset
 *                                            (native/normal.c); [pairs done, pairs listed in redo]
 *
 * Same bytes for any thread count. A multi-threaded OpenBLAS SGEMM is not bitwise reproducible
 * across thread counts (how C is split between threads decides which micro-kernel, full tile or
 * edge, sums each entry, and edge kernels sum in another order). So the BLAS itself always runs
 * single-threaded (openblas_set_num_threads(1) at load), and this addon splits C into chunks of
 * rows (or of columns when C is wide) whose sizes depend on the shape only; each chunk is one
 * single-threaded cblas_sgemm call, and threads merely take chunks from a shared counter. Every
 * entry is therefore computed by the same call on the same sub-problem whatever the thread count.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error_proxy.h"
#include "bf16.h"
#include "moments.h"
#include "noise.h"
#include "affine.h"
#include "search.h"
#include "linalg.h"
#include "normal.h"

#ifdef __APPLE__
#include <Accelerate/Accelerate.h>
#define SWAN_BLAS_NAME "accelerate"
#else
#include <cblas.h>
#define SWAN_BLAS_NAME "openblas"
/* Declared by OpenBLAS's cblas.h; repeated in case another cblas.h was found first. */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
#endif

#define CHECK(env, call)                                                        \
  do {                                                                          \
    if ((call) != napi_ok) {                                                    \
      napi_throw_error((env), NULL, "swan_blas: N-API call failed: " #call);    \
      return NULL;                                                              \
    }                                                                           \
  } while (0)

/* Threads for large GEMMs, the calling thread included. */
static int g_threads = 1;

/* One GEMM split into chunks along C's rows (by_rows) or columns. */
typedef struct {
  int ta, tb, m, n, k, by_rows, chunk, nchunks;
  const float *a, *b;
  float *c;
  atomic_int next;
} job_t;

static void run_chunk(const job_t *j, int i) {
  int s = i * j->chunk;
  int e = s + j->chunk;
  const float *a = j->a, *b = j->b;
  float *c = j->c;
  int m = j->m, n = j->n;
  if (j->by_rows) {
    if (e > j->m) e = j->m;
    m = e - s;
    a += j->ta ? (size_t)s : (size_t)s * (size_t)j->k; /* A stored k×m (columns s..e) or m×k (rows) */
    c += (size_t)s * (size_t)j->n;
  } else {
    if (e > j->n) e = j->n;
    n = e - s;
    b += j->tb ? (size_t)s * (size_t)j->k : (size_t)s; /* B stored n×k (rows s..e) or k×n (columns) */
    c += (size_t)s;
  }
  cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, m, n, j->k,
              1.0f, a, j->ta ? j->m : j->k, b, j->tb ? j->k : j->n, 0.0f, c, j->n);
}

static void *worker(void *arg) {
  job_t *j = (job_t *)arg;
  for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->nchunks;) run_chunk(j, i);
  return NULL;
}

/*
 * The chunk layout is a function of the shape alone (never of the thread count): below ~4 MFLOP
 * one chunk; else 16 chunks or fewer along `extent`, a multiple of 64 wide.
 */
static int chunk_width(int extent, double flops) {
  if (flops < 4e6 || extent < 128) return extent;
  int c = (extent + 15) / 16;
  return ((c + 63) / 64) * 64;
}

static void plan(job_t *j) {
  j->by_rows = j->m >= j->n;
  int extent = j->by_rows ? j->m : j->n;
  j->chunk = chunk_width(extent, 2.0 * (double)j->m * (double)j->n * (double)j->k);
  j->nchunks = (extent + j->chunk - 1) / j->chunk;
}

/* fn(arg) on this thread and up to g_threads − 1 others, which share out `nchunks` chunks. */
static void run_parallel(void *(*fn)(void *), void *arg, int nchunks, double flops) {
  int helpers = g_threads - 1;
  if (helpers > nchunks - 1) helpers = nchunks - 1;
  if (helpers > 63) helpers = 63;
  /* Spawning threads costs tens of µs: not worth it below ~20 MFLOP (results are the same). */
  if (flops < 2e7) helpers = 0;
  pthread_t tid[63];
  int started = 0;
  for (; started < helpers; started++)
    if (pthread_create(&tid[started], NULL, fn, arg) != 0) break; /* fewer threads: same result */
  fn(arg);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
}

static void run_job(job_t *j) {
  run_parallel(worker, j, j->nchunks, 2.0 * (double)j->m * (double)j->n * (double)j->k);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

/* A non-negative integer argument that fits an int (BLAS dimensions are int). */
static int get_dim(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

/* A typed-array argument of the given type: its data pointer and length (elements). */
static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

static int get_f32(napi_env env, napi_value v, float **data, size_t *length) {
  return get_typed(env, v, napi_float32_array, (void **)data, length);
}

static int get_u32(napi_env env, napi_value v, uint32_t **data, size_t *length) {
  return get_typed(env, v, napi_uint32_array, (void **)data, length);
}

static napi_value gemm(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return throw_type(env, "gemm(transA, transB, m, n, k, a, b, c): 8 arguments expected");
  bool ta, tb;
  if (napi_get_value_bool(env, argv[0], &ta) != napi_ok || napi_get_value_bool(env, argv[1], &tb) != napi_ok)
    return throw_type(env, "gemm: transA and transB must be booleans");
  int64_t m, n, k;
  if (!get_dim(env, argv[2], &m) || !get_dim(env, argv[3], &n) || !get_dim(env, argv[4], &k))
    return throw_type(env, "gemm: m, n and k must be non-negative integers below 2^31");
  float *a, *b, *c;
  size_t la, lb, lc;
  if (!get_f32(env, argv[5], &a, &la) || !get_f32(env, argv[6], &b, &lb) || !get_f32(env, argv[7], &c, &lc))
    return throw_type(env, "gemm: a, b and c must be Float32Arrays");
  if ((uint64_t)la < (uint64_t)m * (uint64_t)k || (uint64_t)lb < (uint64_t)k * (uint64_t)n ||
      (uint64_t)lc < (uint64_t)m * (uint64_t)n)
    return throw_range(env, "gemm: buffers too small for the given m, n, k");
  if (m == 0 || n == 0) return NULL;
  if (k == 0) {
    memset(c, 0, (size_t)(m * n) * sizeof(float));
    return NULL;
  }
  /* Row-major: op(A) is m×k; A is stored k×m (lda = m) when transposed, else m×k (lda = k). */
  job_t j = {.ta = ta, .tb = tb, .m = (int)m, .n = (int)n, .k = (int)k, .a = a, .b = b, .c = c};
  atomic_init(&j.next, 0);
  plan(&j);
  run_job(&j);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t t;
  if (argc < 1 || !get_dim(env, argv[0], &t) || t < 1) return throw_type(env, "setThreads(n): n must be a positive integer");
  g_threads = t > 64 ? 64 : (int)t;
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(env, napi_create_int32(env, g_threads, &out));
  return out;
}

static napi_value make_string(napi_env env, const char *s) {
  napi_value out;
  if (napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &out) != napi_ok) return NULL;
  return out;
}

static napi_value blas_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj;
  CHECK(env, napi_create_object(env, &obj));
  const char *config = "Accelerate", *corename = "";
#ifndef __APPLE__
  config = openblas_get_config();
  corename = openblas_get_corename();
#endif
  CHECK(env, napi_set_named_property(env, obj, "blas", make_string(env, SWAN_BLAS_NAME)));
  CHECK(env, napi_set_named_property(env, obj, "config", make_string(env, config)));
  CHECK(env, napi_set_named_property(env, obj, "corename", make_string(env, corename)));
  return obj;
}

/* values[0..n) as a JavaScript array of numbers. */
static napi_value make_doubles(napi_env env, const double *values, uint32_t n) {
  napi_value out, v;
  CHECK(env, napi_create_array_with_length(env, n, &out));
  for (uint32_t i = 0; i < n; i++) {
    CHECK(env, napi_create_double(env, values[i], &v));
    CHECK(env, napi_set_element(env, out, i, v));
  }
  return out;
}

/* [a, b] as a JavaScript array of two numbers. */
static napi_value make_pair(napi_env env, const double pair[2]) {
  return make_doubles(env, pair, 2);
}

static napi_value rtn_error_sums(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "rtnErrorSums(data, rows, cols, bits, group): 5 arguments expected");
  float *data;
  size_t len;
  if (!get_f32(env, argv[0], &data, &len)) return throw_type(env, "rtnErrorSums: data must be a Float32Array");
  int64_t rows, cols, bits, group;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &cols) || !get_dim(env, argv[3], &bits) || !get_dim(env, argv[4], &group))
    return throw_type(env, "rtnErrorSums: rows, cols, bits and group must be non-negative integers");
  if (bits < 1 || bits > 8 || group < 1) return throw_range(env, "rtnErrorSums: bits must be 1..8 and group positive");
  if ((uint64_t)len < (uint64_t)rows * (uint64_t)cols) return throw_range(env, "rtnErrorSums: data shorter than rows × cols");
  double sums[2];
  swan_rtn_error_sums(data, rows, cols, (int)bits, group, sums);
  return make_pair(env, sums);
}

static napi_value decode_bf16(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "decodeBf16(src, dst, lim): 3 arguments expected");
  uint8_t *src;
  float *dst;
  size_t slen, dlen;
  int64_t lim;
  if (!get_typed(env, argv[0], napi_uint8_array, (void **)&src, &slen)) return throw_type(env, "decodeBf16: src must be a Uint8Array");
  if (!get_f32(env, argv[1], &dst, &dlen)) return throw_type(env, "decodeBf16: dst must be a Float32Array");
  if (!get_dim(env, argv[2], &lim) || lim > 0x8000) return throw_type(env, "decodeBf16: lim must be an integer 0..0x8000");
  if (dlen < slen / 2) return throw_range(env, "decodeBf16: dst shorter than src's values");
  napi_value out;
  CHECK(env, napi_create_int64(env, swan_decode_bf16(src, dst, (int64_t)(slen / 2), (uint32_t)lim), &out));
  return out;
}

static napi_value encode_bf16(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *src;
  uint8_t *dst;
  size_t slen, dlen;
  if (argc < 2 || !get_f32(env, argv[0], &src, &slen)) return throw_type(env, "encodeBf16(src, dst): src must be a Float32Array");
  if (!get_typed(env, argv[1], napi_uint8_array, (void **)&dst, &dlen)) return throw_type(env, "encodeBf16: dst must be a Uint8Array");
  if (dlen / 2 < slen) return throw_range(env, "encodeBf16: dst shorter than 2 bytes per value");
  swan_encode_bf16(src, dst, (int64_t)slen);
  return NULL;
}

static napi_value sum_min_max(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x;
  size_t len;
  if (argc < 1 || !get_f32(env, argv[0], &x, &len)) return throw_type(env, "sumMinMax(x): x must be a Float32Array");
  double r[3];
  swan_sum_min_max(x, (int64_t)len, r);
  return make_doubles(env, r, 3);
}

static napi_value central_moments(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x;
  size_t len;
  double mean;
  if (argc < 2 || !get_f32(env, argv[0], &x, &len)) return throw_type(env, "centralMoments(x, mean): x must be a Float32Array");
  if (napi_get_value_double(env, argv[1], &mean) != napi_ok) return throw_type(env, "centralMoments: mean must be a number");
  double r[2];
  swan_central_moments(x, (int64_t)len, mean, r);
  return make_pair(env, r);
}

static napi_value uniform_noise(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "uniformNoise(state, out, len, half): 4 arguments expected");
  uint32_t *state;
  size_t slen;
  if (!get_u32(env, argv[0], &state, &slen) || slen < 4) return throw_type(env, "uniformNoise: state must be a Uint32Array of 4");
  float *out;
  size_t olen;
  if (!get_f32(env, argv[1], &out, &olen)) return throw_type(env, "uniformNoise: out must be a Float32Array");
  int64_t len;
  if (!get_dim(env, argv[2], &len)) return throw_type(env, "uniformNoise: len must be a non-negative integer");
  if ((uint64_t)len > (uint64_t)olen) return throw_range(env, "uniformNoise: out shorter than len");
  double half;
  if (napi_get_value_double(env, argv[3], &half) != napi_ok) return throw_type(env, "uniformNoise: half must be a number");
  swan_uniform_noise(state, out, len, half);
  return NULL;
}

/* Bits and group size MLX's affine quantization accepts, the group dividing cols. */
static int affine_shape_ok(int64_t bits, int64_t group, int64_t cols) {
  return (bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8) && (group == 32 || group == 64 || group == 128) &&
         cols % group == 0;
}

static napi_value quantize_affine(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 9) return throw_type(env, "quantizeAffine(w, rows, cols, bits, group, metal, wq, scales, biases): 9 arguments expected");
  float *w, *scales, *biases;
  size_t lw, ls, lb, lq;
  if (!get_f32(env, argv[0], &w, &lw) || !get_f32(env, argv[7], &scales, &ls) || !get_f32(env, argv[8], &biases, &lb))
    return throw_type(env, "quantizeAffine: w, scales and biases must be Float32Arrays");
  int64_t rows, cols, bits, group;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &cols) || !get_dim(env, argv[3], &bits) || !get_dim(env, argv[4], &group))
    return throw_type(env, "quantizeAffine: rows, cols, bits and group must be non-negative integers");
  bool metal;
  if (napi_get_value_bool(env, argv[5], &metal) != napi_ok) return throw_type(env, "quantizeAffine: metal must be a boolean");
  uint32_t *wq;
  if (!get_u32(env, argv[6], &wq, &lq)) return throw_type(env, "quantizeAffine: wq must be a Uint32Array");
  if (!affine_shape_ok(bits, group, cols))
    return throw_range(env, "quantizeAffine: bits must be 2, 3, 4, 5, 6 or 8, group 32, 64 or 128 dividing cols");
  const uint64_t n = (uint64_t)rows * (uint64_t)cols;
  if ((uint64_t)lw < n || (uint64_t)lq < n * (uint64_t)bits / 32 || (uint64_t)ls < n / (uint64_t)group || (uint64_t)lb < n / (uint64_t)group)
    return throw_range(env, "quantizeAffine: buffers too small for rows × cols");
  swan_quantize_affine(w, rows, cols, (int)bits, (int)group, metal, g_threads, wq, scales, biases);
  return NULL;
}

static int get_f64(napi_env env, napi_value v, double **data, size_t *length) {
  return get_typed(env, v, napi_float64_array, (void **)data, length);
}

/* An optional Float64Array argument of at least `need` elements: 1 with *d (NULL for null or undefined), or 0. */
static int get_optional_f64(napi_env env, napi_value v, uint64_t need, double **d) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  *d = NULL;
  if (t == napi_null || t == napi_undefined) return 1;
  size_t len;
  return get_f64(env, v, d, &len) && (uint64_t)len >= need;
}

static napi_value quantize_search(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 14)
    return throw_type(env, "quantizeSearch(w, rows, cols, bits, group, metal, kind, colWeights, wq, scales, biases, "
                           "groupSearch, groupRtn, stats): 14 arguments expected");
  float *w, *scales, *biases;
  size_t lw, ls, lb, lq, lstats;
  if (!get_f32(env, argv[0], &w, &lw) || !get_f32(env, argv[9], &scales, &ls) || !get_f32(env, argv[10], &biases, &lb))
    return throw_type(env, "quantizeSearch: w, scales and biases must be Float32Arrays");
  int64_t rows, cols, bits, group, kind;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &cols) || !get_dim(env, argv[3], &bits) || !get_dim(env, argv[4], &group) ||
      !get_dim(env, argv[6], &kind))
    return throw_type(env, "quantizeSearch: rows, cols, bits, group and kind must be non-negative integers");
  bool metal;
  if (napi_get_value_bool(env, argv[5], &metal) != napi_ok) return throw_type(env, "quantizeSearch: metal must be a boolean");
  uint32_t *wq;
  if (!get_u32(env, argv[8], &wq, &lq)) return throw_type(env, "quantizeSearch: wq must be a Uint32Array");
  if (!affine_shape_ok(bits, group, cols) || cols == 0 || kind > SWAN_KIND_F16)
    return throw_range(env, "quantizeSearch: bits must be 2, 3, 4, 5, 6 or 8, group 32, 64 or 128 dividing cols, kind 0, 1 or 2");
  const uint64_t n = (uint64_t)rows * (uint64_t)cols, groups = n / (uint64_t)group;
  if ((uint64_t)lw < n || (uint64_t)lq < n * (uint64_t)bits / 32 || (uint64_t)ls < groups || (uint64_t)lb < groups)
    return throw_range(env, "quantizeSearch: buffers too small for rows × cols");
  double *col_weights, *group_search, *group_rtn, *stats_out;
  if (!get_optional_f64(env, argv[7], (uint64_t)cols, &col_weights))
    return throw_type(env, "quantizeSearch: colWeights must be null or a Float64Array of cols");
  if (!get_optional_f64(env, argv[11], groups, &group_search) || !get_optional_f64(env, argv[12], groups, &group_rtn))
    return throw_type(env, "quantizeSearch: groupSearch and groupRtn must be null or Float64Arrays of rows × cols / group");
  if (!get_f64(env, argv[13], &stats_out, &lstats) || lstats < 7) return throw_type(env, "quantizeSearch: stats must be a Float64Array of 7");
  swan_search_stats_t st;
  if (swan_quantize_search(w, rows, cols, (int)bits, (int)group, metal, (int)kind, col_weights, g_threads, wq, scales, biases, group_search,
                           group_rtn, &st) != 0) {
    napi_throw_error(env, NULL, "quantizeSearch: out of memory");
    return NULL;
  }
  const double sums[7] = {st.search_err, st.rtn_err, st.energy, st.plain_search_err, st.plain_rtn_err, st.plain_energy, (double)st.improved_groups};
  memcpy(stats_out, sums, sizeof sums);
  return NULL;
}

static napi_value affine_error_sums(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return throw_type(env, "affineErrorSums(w, rows, cols, bits, group, metal, kind): 7 arguments expected");
  float *w;
  size_t lw;
  if (!get_f32(env, argv[0], &w, &lw)) return throw_type(env, "affineErrorSums: w must be a Float32Array");
  int64_t rows, cols, bits, group, kind;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &cols) || !get_dim(env, argv[3], &bits) || !get_dim(env, argv[4], &group) ||
      !get_dim(env, argv[6], &kind))
    return throw_type(env, "affineErrorSums: rows, cols, bits, group and kind must be non-negative integers");
  bool metal;
  if (napi_get_value_bool(env, argv[5], &metal) != napi_ok) return throw_type(env, "affineErrorSums: metal must be a boolean");
  if (!affine_shape_ok(bits, group, cols) || cols == 0 || kind > SWAN_KIND_F16)
    return throw_range(env, "affineErrorSums: bits must be 2, 3, 4, 5, 6 or 8, group 32, 64 or 128 dividing cols, kind 0, 1 or 2");
  if ((uint64_t)lw < (uint64_t)rows * (uint64_t)cols) return throw_range(env, "affineErrorSums: w shorter than rows × cols");
  double sums[2];
  swan_affine_error_sums(w, rows, cols, (int)bits, (int)group, metal, (int)kind, sums);
  return make_pair(env, sums);
}

/* An n×n Float64Array argument: 1 and its data in *d, or 0 after throwing. */
static int get_square(napi_env env, napi_value v, int64_t n, const char *msg, double **d) {
  size_t len;
  if (!get_f64(env, v, d, &len)) {
    throw_type(env, msg);
    return 0;
  }
  if ((uint64_t)len < (uint64_t)n * (uint64_t)n) {
    throw_range(env, msg);
    return 0;
  }
  return 1;
}

/* The n argument of the l×l routines: small enough that n² fits an int. */
static int get_small_dim(napi_env env, napi_value v, int64_t *n) {
  return get_dim(env, v, n) && *n <= 46340;
}

static napi_value make_bool(napi_env env, bool b) {
  napi_value out;
  if (napi_get_boolean(env, b, &out) != napi_ok) return NULL;
  return out;
}

static napi_value cholesky(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "cholesky(g, n, shift, r): 4 arguments expected");
  int64_t n;
  if (!get_small_dim(env, argv[1], &n)) return throw_type(env, "cholesky: n must be a non-negative integer ≤ 46340");
  void *g;
  size_t lg;
  int g32 = get_typed(env, argv[0], napi_float32_array, &g, &lg);
  if (!g32 && !get_typed(env, argv[0], napi_float64_array, &g, &lg))
    return throw_type(env, "cholesky: g must be a Float32Array or a Float64Array");
  if ((uint64_t)lg < (uint64_t)n * (uint64_t)n) return throw_range(env, "cholesky: g shorter than n × n");
  double shift;
  if (napi_get_value_double(env, argv[2], &shift) != napi_ok) return throw_type(env, "cholesky: shift must be a number");
  double *r;
  if (!get_square(env, argv[3], n, "cholesky: r must be a Float64Array of n × n", &r)) return NULL;
  return make_bool(env, swan_cholesky(g, g32, (int)n, shift, r) == 0);
}

static napi_value invert_upper(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "invertUpper(r, n, x): 3 arguments expected");
  int64_t n;
  if (!get_small_dim(env, argv[1], &n)) return throw_type(env, "invertUpper: n must be a non-negative integer ≤ 46340");
  double *r;
  if (!get_square(env, argv[0], n, "invertUpper: r must be a Float64Array of n × n", &r)) return NULL;
  double *x;
  if (!get_square(env, argv[2], n, "invertUpper: x must be a Float64Array of n × n", &x)) return NULL;
  return make_bool(env, swan_invert_upper(r, (int)n, x) == 0);
}

static napi_value mul_upper(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "mulUpper(a, b, n, c): 4 arguments expected");
  int64_t n;
  if (!get_small_dim(env, argv[2], &n)) return throw_type(env, "mulUpper: n must be a non-negative integer ≤ 46340");
  const char *msg = "mulUpper: a, b and c must be Float64Arrays of n × n";
  double *a;
  if (!get_square(env, argv[0], n, msg, &a)) return NULL;
  double *b;
  if (!get_square(env, argv[1], n, msg, &b)) return NULL;
  double *c;
  if (!get_square(env, argv[3], n, msg, &c)) return NULL;
  swan_mul_upper(a, b, (int)n, c);
  return NULL;
}

static napi_value symmetric_eigenvalues(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "symmetricEigenvalues(a, n, w): 3 arguments expected");
  int64_t n;
  if (!get_small_dim(env, argv[1], &n)) return throw_type(env, "symmetricEigenvalues: n must be a non-negative integer ≤ 46340");
  double *a;
  if (!get_square(env, argv[0], n, "symmetricEigenvalues: a must be a Float64Array of n × n", &a)) return NULL;
  double *w;
  size_t lw;
  if (!get_f64(env, argv[2], &w, &lw)) return throw_type(env, "symmetricEigenvalues: w must be a Float64Array");
  if ((uint64_t)lw < (uint64_t)n) return throw_range(env, "symmetricEigenvalues: w shorter than n");
  int info_ = swan_symmetric_eigenvalues(a, (int)n, w);
  if (info_ < 0) {
    napi_throw_error(env, NULL, "symmetricEigenvalues: out of memory");
    return NULL;
  }
  if (info_ > 0) {
    napi_throw_error(env, NULL, "symmetricEigenvalues: the eigenvalue iteration did not converge");
    return NULL;
  }
  return NULL;
}

static napi_value gram(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "gram(data, rows, cols, byRows, g): 5 arguments expected");
  float *data;
  size_t ld;
  if (!get_f32(env, argv[0], &data, &ld)) return throw_type(env, "gram: data must be a Float32Array");
  int64_t rows, cols;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &cols)) return throw_type(env, "gram: rows and cols must be non-negative integers");
  bool by_rows;
  if (napi_get_value_bool(env, argv[3], &by_rows) != napi_ok) return throw_type(env, "gram: byRows must be a boolean");
  if ((uint64_t)ld < (uint64_t)rows * (uint64_t)cols) return throw_range(env, "gram: data shorter than rows × cols");
  int64_t s = by_rows ? rows : cols;
  if (s > 46340) return throw_range(env, "gram: more than 46340 vectors");
  double *g;
  if (!get_square(env, argv[4], s, "gram: g must be a Float64Array of s × s", &g)) return NULL;
  if (swan_gram(data, (int)rows, (int)cols, by_rows, g) != 0) {
    napi_throw_error(env, NULL, "gram: out of memory");
    return NULL;
  }
  return NULL;
}

static napi_value normal_pairs(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_type(env, "normalPairs(state, out, offset, pairs, scale, redo): 6 arguments expected");
  uint32_t *state;
  size_t slen;
  if (!get_u32(env, argv[0], &state, &slen) || slen < 4) return throw_type(env, "normalPairs: state must be a Uint32Array of 4");
  float *out;
  size_t olen;
  if (!get_f32(env, argv[1], &out, &olen)) return throw_type(env, "normalPairs: out must be a Float32Array");
  int64_t offset, pairs;
  if (!get_dim(env, argv[2], &offset) || !get_dim(env, argv[3], &pairs))
    return throw_type(env, "normalPairs: offset and pairs must be non-negative integers");
  if ((uint64_t)offset + 2 * (uint64_t)pairs > (uint64_t)olen) return throw_range(env, "normalPairs: out shorter than offset + 2·pairs");
  double scale;
  if (napi_get_value_double(env, argv[4], &scale) != napi_ok) return throw_type(env, "normalPairs: scale must be a number");
  double *redo;
  size_t rlen;
  if (!get_f64(env, argv[5], &redo, &rlen)) return throw_type(env, "normalPairs: redo must be a Float64Array");
  int64_t nredo = 0;
  int64_t done = swan_normal_pairs(state, out + offset, pairs, scale, redo, (int64_t)(rlen / 3), &nredo, g_threads);
  if (done < 0) {
    napi_throw_error(env, NULL, "normalPairs: out of memory");
    return NULL;
  }
  const double counts[2] = {(double)done, (double)nredo};
  return make_pair(env, counts);
}

/* out = Y·U (or Y·U⁻¹ when solve) for an upper-triangular U, in chunks of rows laid out by chunk_width(). */
typedef struct {
  int rows, n, chunk, nchunks, solve;
  const float *y, *u;
  float *out;
  atomic_int next;
} trmm_job_t;

static void *trmm_worker(void *arg) {
  trmm_job_t *j = (trmm_job_t *)arg;
  for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->nchunks;) {
    int s = i * j->chunk, e = s + j->chunk > j->rows ? j->rows : s + j->chunk;
    float *o = j->out + (size_t)s * j->n;
    memcpy(o, j->y + (size_t)s * j->n, (size_t)(e - s) * j->n * sizeof(float));
    if (j->solve)
      cblas_strsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, e - s, j->n, 1.0f, j->u, j->n, o, j->n);
    else
      cblas_strmm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, e - s, j->n, 1.0f, j->u, j->n, o, j->n);
  }
  return NULL;
}

/* mulUpperRight and solveUpperRight: the same arguments, `name` for the messages. */
static napi_value upper_right(napi_env env, napi_callback_info info, int solve, const char *name) {
  char msg[160];
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    snprintf(msg, sizeof msg, "%s(y, rows, n, u, out): 5 arguments expected", name);
    return throw_type(env, msg);
  }
  int64_t rows, n;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &n)) {
    snprintf(msg, sizeof msg, "%s: rows and n must be non-negative integers", name);
    return throw_type(env, msg);
  }
  float *y, *u, *out;
  size_t ly, lu, lo;
  if (!get_f32(env, argv[0], &y, &ly) || !get_f32(env, argv[3], &u, &lu) || !get_f32(env, argv[4], &out, &lo)) {
    snprintf(msg, sizeof msg, "%s: y, u and out must be Float32Arrays", name);
    return throw_type(env, msg);
  }
  if ((uint64_t)ly < (uint64_t)rows * (uint64_t)n || (uint64_t)lo < (uint64_t)rows * (uint64_t)n || (uint64_t)lu < (uint64_t)n * (uint64_t)n) {
    snprintf(msg, sizeof msg, "%s: buffers too small for rows × n", name);
    return throw_range(env, msg);
  }
  if (rows == 0 || n == 0) return NULL;
  if (out == y) {
    snprintf(msg, sizeof msg, "%s: out must not be y", name);
    return throw_range(env, msg);
  }
  trmm_job_t j = {.rows = (int)rows, .n = (int)n, .solve = solve, .y = y, .u = u, .out = out};
  atomic_init(&j.next, 0);
  double flops = (double)rows * (double)n * (double)n;
  j.chunk = chunk_width((int)rows, flops);
  j.nchunks = ((int)rows + j.chunk - 1) / j.chunk;
  run_parallel(trmm_worker, &j, j.nchunks, flops);
  return NULL;
}

static napi_value mul_upper_right(napi_env env, napi_callback_info info) {
  return upper_right(env, info, 0, "mulUpperRight");
}

static napi_value solve_upper_right(napi_env env, napi_callback_info info) {
  return upper_right(env, info, 1, "solveUpperRight");
}

/*
 * out = the float32 Gram of a row-major rows×cols matrix (A·Aᵀ when by_rows, else Aᵀ·A), s×s: the
 * lower triangle by chunks of `chunk` rows of out (rows r0..r1 take columns 0..r1, one
 * single-threaded SGEMM each: half a full GEMM's flops), then mirrored. The chunk layout depends on
 * s alone, so the bytes do not depend on the thread count.
 */
typedef struct {
  int rows, cols, by_rows, s, chunk, nchunks;
  const float *a;
  float *out;
  atomic_int next;
} syrk_job_t;

static void *syrk_worker(void *arg) {
  syrk_job_t *j = (syrk_job_t *)arg;
  /* Last chunks first: they are the largest, so the threads finish together. */
  for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->nchunks;) {
    int c = j->nchunks - 1 - i;
    int r0 = c * j->chunk, r1 = r0 + j->chunk > j->s ? j->s : r0 + j->chunk;
    float *o = j->out + (size_t)r0 * j->s;
    if (j->by_rows)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, j->cols, 1.0f, j->a + (size_t)r0 * j->cols,
                  j->cols, j->a, j->cols, 0.0f, o, j->s);
    else
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, r1, j->rows, 1.0f, j->a + r0, j->cols, j->a,
                  j->cols, 0.0f, o, j->s);
  }
  return NULL;
}

static napi_value gram32(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_type(env, "gram32(data, rows, cols, byRows, out): 5 arguments expected");
  float *data, *out;
  size_t ld, lo;
  if (!get_f32(env, argv[0], &data, &ld) || !get_f32(env, argv[4], &out, &lo))
    return throw_type(env, "gram32: data and out must be Float32Arrays");
  int64_t rows, cols;
  if (!get_dim(env, argv[1], &rows) || !get_dim(env, argv[2], &cols)) return throw_type(env, "gram32: rows and cols must be non-negative integers");
  bool by_rows;
  if (napi_get_value_bool(env, argv[3], &by_rows) != napi_ok) return throw_type(env, "gram32: byRows must be a boolean");
  if ((uint64_t)ld < (uint64_t)rows * (uint64_t)cols) return throw_range(env, "gram32: data shorter than rows × cols");
  int64_t s = by_rows ? rows : cols;
  if (s > 46340) return throw_range(env, "gram32: more than 46340 vectors");
  if ((uint64_t)lo < (uint64_t)s * (uint64_t)s) return throw_range(env, "gram32: out shorter than s × s");
  if (s == 0) return NULL;
  if ((by_rows ? cols : rows) == 0) {
    memset(out, 0, (size_t)s * (size_t)s * sizeof(float));
    return NULL;
  }
  syrk_job_t j = {.rows = (int)rows, .cols = (int)cols, .by_rows = by_rows, .s = (int)s, .a = data, .out = out};
  atomic_init(&j.next, 0);
  j.chunk = s < 128 ? (int)s : 64;
  j.nchunks = ((int)s + j.chunk - 1) / j.chunk;
  double flops = (double)s * (double)s * (double)(by_rows ? cols : rows);
  run_parallel(syrk_worker, &j, j.nchunks, flops);
  for (int64_t i = 0; i < s; i++)
    for (int64_t k = i + 1; k < s; k++) out[i * s + k] = out[k * s + i];
  return NULL;
}

NAPI_MODULE_INIT() {
#ifndef __APPLE__
  openblas_set_num_threads(1); /* see the file comment */
#endif
  napi_property_descriptor props[] = {
      {"gemm", NULL, gemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"info", NULL, blas_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rtnErrorSums", NULL, rtn_error_sums, NULL, NULL, NULL, napi_enumerable, NULL},
      {"uniformNoise", NULL, uniform_noise, NULL, NULL, NULL, napi_enumerable, NULL},
      {"decodeBf16", NULL, decode_bf16, NULL, NULL, NULL, napi_enumerable, NULL},
      {"encodeBf16", NULL, encode_bf16, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sumMinMax", NULL, sum_min_max, NULL, NULL, NULL, napi_enumerable, NULL},
      {"centralMoments", NULL, central_moments, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantizeAffine", NULL, quantize_affine, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantizeSearch", NULL, quantize_search, NULL, NULL, NULL, napi_enumerable, NULL},
      {"affineErrorSums", NULL, affine_error_sums, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cholesky", NULL, cholesky, NULL, NULL, NULL, napi_enumerable, NULL},
      {"invertUpper", NULL, invert_upper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mulUpper", NULL, mul_upper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"symmetricEigenvalues", NULL, symmetric_eigenvalues, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gram", NULL, gram, NULL, NULL, NULL, napi_enumerable, NULL},
      {"normalPairs", NULL, normal_pairs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mulUpperRight", NULL, mul_upper_right, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gram32", NULL, gram32, NULL, NULL, NULL, napi_enumerable, NULL},
      {"solveUpperRight", NULL, solve_upper_right, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
