/* N-API surface of the kernels. Every entry point takes typed arrays that view tfjs's wasm heap
 * directly (zero copy) plus an Int32Array of sizes and strides, and checks that every index the
 * kernel will touch lies inside the arrays it was given: a wrong stride from JS must raise an
 * error, never write outside a tensor. */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdio.h>
#include <string.h>

#include "vswin.h"

#define CHECK_STATUS(call)                                               \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, NULL, "vswin native: N-API call failed: " #call); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

typedef struct {
  void *data;
  size_t length;
  napi_typedarray_type type;
} typed_view;

static int read_view(napi_env env, napi_value value, typed_view *view, const char *name) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    char message[160];
    snprintf(message, sizeof message, "vswin native: argument %s must be a typed array", name);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &view->type, &view->length, &view->data, &buffer, &offset) != napi_ok) {
    napi_throw_error(env, NULL, "vswin native: cannot read a typed array");
    return 0;
  }
  return 1;
}

static int read_float_view(napi_env env, napi_value value, typed_view *view, const char *name) {
  if (!read_view(env, value, view, name)) return 0;
  if (view->type != napi_float32_array) {
    char message[160];
    snprintf(message, sizeof message, "vswin native: argument %s must be a Float32Array", name);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  return 1;
}

static int read_params(napi_env env, napi_value value, const int32_t **params, size_t *count) {
  typed_view view;
  if (!read_view(env, value, &view, "params")) return 0;
  if (view.type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "vswin native: params must be an Int32Array");
    return 0;
  }
  *params = view.data;
  *count = view.length;
  return 1;
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

/* Smallest and largest element offsets reached by a strided walk over shape. */
static void reach(int rank, const long *shape, const long *strides, long base, long *low, long *high) {
  long lo = base, hi = base;
  for (int d = 0; d < rank; d++) {
    long span = (shape[d] - 1) * strides[d];
    if (span < 0) lo += span; else hi += span;
  }
  *low = lo;
  *high = hi;
}

static int fits(int rank, const long *shape, const long *strides, long base, size_t length) {
  for (int d = 0; d < rank; d++)
    if (shape[d] == 0) return 1;
  long low, high;
  reach(rank, shape, strides, base, &low, &high);
  return low >= 0 && (size_t)high < length;
}

/* gemm(a, b, c, bias | null, params, alpha)
 * params: batch, m, n, k, aBatch, aRow, aCol, bBatch, bRow, bCol, biasBatch, biasRow, biasCol, activation */
static napi_value js_gemm(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return fail(env, "vswin native gemm: expected 6 arguments");
  typed_view a, b, c, bias = {0};
  if (!read_float_view(env, argv[0], &a, "a") || !read_float_view(env, argv[1], &b, "b") ||
      !read_float_view(env, argv[2], &c, "c"))
    return NULL;
  napi_valuetype bias_type;
  CHECK_STATUS(napi_typeof(env, argv[3], &bias_type));
  int has_bias = bias_type != napi_null && bias_type != napi_undefined;
  if (has_bias && !read_float_view(env, argv[3], &bias, "bias")) return NULL;
  const int32_t *p;
  size_t count;
  if (!read_params(env, argv[4], &p, &count)) return NULL;
  if (count < 14) return fail(env, "vswin native gemm: params needs 14 entries");
  double alpha;
  CHECK_STATUS(napi_get_value_double(env, argv[5], &alpha));

  vswin_gemm_args g = {
      .batch = p[0], .m = p[1], .n = p[2], .k = p[3],
      .a = a.data, .a_batch = p[4], .a_row = p[5], .a_col = p[6],
      .b = b.data, .b_batch = p[7], .b_row = p[8], .b_col = p[9],
      .c = c.data,
      .bias = has_bias ? bias.data : NULL, .bias_batch = p[10], .bias_row = p[11], .bias_col = p[12],
      .activation = p[13], .alpha = (float)alpha,
  };
  if (g.batch < 0 || g.m < 0 || g.n < 0 || g.k < 0) return fail(env, "vswin native gemm: negative size");
  if (g.activation < VSWIN_LINEAR || g.activation > VSWIN_ELU) return fail(env, "vswin native gemm: unknown activation");
  long a_shape[3] = {g.batch, g.m, g.k}, a_strides[3] = {g.a_batch, g.a_row, g.a_col};
  long b_shape[3] = {g.batch, g.k, g.n}, b_strides[3] = {g.b_batch, g.b_row, g.b_col};
  long c_shape[1] = {g.batch * g.m * g.n}, c_strides[1] = {1};
  long bias_shape[3] = {g.batch, g.m, g.n}, bias_strides[3] = {g.bias_batch, g.bias_row, g.bias_col};
  if (!fits(3, a_shape, a_strides, 0, a.length)) return fail(env, "vswin native gemm: a is smaller than its strides say");
  if (!fits(3, b_shape, b_strides, 0, b.length)) return fail(env, "vswin native gemm: b is smaller than its strides say");
  if (!fits(1, c_shape, c_strides, 0, c.length)) return fail(env, "vswin native gemm: c is smaller than batch*m*n");
  if (has_bias && !fits(3, bias_shape, bias_strides, 0, bias.length))
    return fail(env, "vswin native gemm: bias is smaller than its strides say");
  if (vswin_gemm(&g) != 0) napi_throw_error(env, NULL, "vswin native gemm: out of memory for the packing buffers");
  return NULL;
}

/* stridedCopy(input, output, params): params = rank, offset, shape[rank], inStrides[rank] */
static napi_value js_strided_copy(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return fail(env, "vswin native stridedCopy: expected 3 arguments");
  typed_view input, output;
  if (!read_view(env, argv[0], &input, "input") || !read_view(env, argv[1], &output, "output")) return NULL;
  size_t in_bytes = input.type == napi_float32_array || input.type == napi_int32_array || input.type == napi_uint32_array ? 4 : 0;
  size_t out_bytes = output.type == napi_float32_array || output.type == napi_int32_array || output.type == napi_uint32_array ? 4 : 0;
  if (!in_bytes || !out_bytes) return fail(env, "vswin native stridedCopy: arrays must hold 32-bit elements");
  const int32_t *p;
  size_t count;
  if (!read_params(env, argv[2], &p, &count)) return NULL;
  if (count < 2) return fail(env, "vswin native stridedCopy: params too short");
  int rank = p[0];
  if (rank < 0 || rank > VSWIN_MAX_RANK || count < (size_t)(2 + 2 * rank))
    return fail(env, "vswin native stridedCopy: rank out of range or params too short");
  long shape[VSWIN_MAX_RANK], strides[VSWIN_MAX_RANK], total = 1;
  for (int d = 0; d < rank; d++) {
    shape[d] = p[2 + d];
    strides[d] = p[2 + rank + d];
    if (shape[d] < 0) return fail(env, "vswin native stridedCopy: negative size");
    total *= shape[d];
  }
  if (total == 0) return NULL;
  if (!fits(rank, shape, strides, p[1], input.length)) return fail(env, "vswin native stridedCopy: input smaller than its strides say");
  if ((size_t)total > output.length) return fail(env, "vswin native stridedCopy: output too small");
  vswin_strided_copy(input.data, output.data, rank, shape, strides, p[1]);
  return NULL;
}

/* binary(op, a, b, out, params): params = rank, shape[rank], aStrides[rank], bStrides[rank] */
static napi_value js_binary(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return fail(env, "vswin native binary: expected 5 arguments");
  int32_t op;
  CHECK_STATUS(napi_get_value_int32(env, argv[0], &op));
  if (op < VSWIN_ADD || op > VSWIN_DIV) return fail(env, "vswin native binary: unknown op");
  typed_view a, b, out;
  if (!read_float_view(env, argv[1], &a, "a") || !read_float_view(env, argv[2], &b, "b") ||
      !read_float_view(env, argv[3], &out, "out"))
    return NULL;
  const int32_t *p;
  size_t count;
  if (!read_params(env, argv[4], &p, &count)) return NULL;
  int rank = count > 0 ? p[0] : -1;
  if (rank < 0 || rank > VSWIN_MAX_RANK || count < (size_t)(1 + 3 * rank))
    return fail(env, "vswin native binary: rank out of range or params too short");
  long shape[VSWIN_MAX_RANK], as[VSWIN_MAX_RANK], bs[VSWIN_MAX_RANK], total = 1;
  for (int d = 0; d < rank; d++) {
    shape[d] = p[1 + d];
    as[d] = p[1 + rank + d];
    bs[d] = p[1 + 2 * rank + d];
    if (shape[d] < 0) return fail(env, "vswin native binary: negative size");
    total *= shape[d];
  }
  if (total == 0) return NULL;
  if (!fits(rank, shape, as, 0, a.length) || !fits(rank, shape, bs, 0, b.length))
    return fail(env, "vswin native binary: an input is smaller than its strides say");
  if ((size_t)total > out.length) return fail(env, "vswin native binary: output too small");
  vswin_binary(op, a.data, b.data, out.data, rank, shape, as, bs);
  return NULL;
}

/* gather(x, indices, out, params): params = batch, outer, dim, slice, count (indices per batch).
 * Returns -1, or the position of the first out-of-range index (nothing written then). */
static napi_value js_gather(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return fail(env, "vswin native gather: expected 4 arguments");
  typed_view x, indices, out;
  if (!read_view(env, argv[0], &x, "x") || !read_view(env, argv[1], &indices, "indices") || !read_view(env, argv[2], &out, "out"))
    return NULL;
  if (indices.type != napi_int32_array) return fail(env, "vswin native gather: indices must be an Int32Array");
  int x32 = x.type == napi_float32_array || x.type == napi_int32_array || x.type == napi_uint32_array;
  int out32 = out.type == napi_float32_array || out.type == napi_int32_array || out.type == napi_uint32_array;
  if (!x32 || !out32) return fail(env, "vswin native gather: x and out must hold 32-bit elements");
  const int32_t *p;
  size_t count;
  if (!read_params(env, argv[3], &p, &count)) return NULL;
  if (count < 5) return fail(env, "vswin native gather: params needs 5 entries");
  long batch = p[0], outer = p[1], dim = p[2], slice = p[3], per_batch = p[4];
  if (batch < 0 || outer < 0 || dim < 0 || slice < 0 || per_batch < 0) return fail(env, "vswin native gather: negative size");
  if ((size_t)(batch * outer * dim * slice) > x.length) return fail(env, "vswin native gather: x smaller than its shape");
  if ((size_t)(batch * per_batch) > indices.length) return fail(env, "vswin native gather: fewer indices than batch*count");
  if ((size_t)(batch * outer * per_batch * slice) > out.length) return fail(env, "vswin native gather: out too small");
  long bad = vswin_gather(x.data, indices.data, out.data, batch, outer, dim, slice, per_batch);
  napi_value result;
  CHECK_STATUS(napi_create_int64(env, bad, &result));
  return result;
}

static napi_value js_erf(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return fail(env, "vswin native erf: expected 2 arguments");
  typed_view input, output;
  if (!read_float_view(env, argv[0], &input, "input") || !read_float_view(env, argv[1], &output, "output")) return NULL;
  if (output.length < input.length) return fail(env, "vswin native erf: output too small");
  vswin_erf(input.data, output.data, (long)input.length);
  return NULL;
}

/* softmax(input, output, rows, cols): rows of `cols` contiguous values */
static napi_value js_softmax(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return fail(env, "vswin native softmax: expected 4 arguments");
  typed_view input, output;
  if (!read_float_view(env, argv[0], &input, "input") || !read_float_view(env, argv[1], &output, "output")) return NULL;
  int64_t rows, cols;
  CHECK_STATUS(napi_get_value_int64(env, argv[2], &rows));
  CHECK_STATUS(napi_get_value_int64(env, argv[3], &cols));
  if (rows < 0 || cols < 0) return fail(env, "vswin native softmax: negative size");
  if ((size_t)(rows * cols) > input.length || (size_t)(rows * cols) > output.length)
    return fail(env, "vswin native softmax: arrays smaller than rows*cols");
  vswin_softmax(input.data, output.data, (long)rows, (long)cols);
  return NULL;
}

/* windowAttention(q, k, v, bias, mask | null, out, params): params = batch, heads, n, dim, windows */
static napi_value js_window_attention(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return fail(env, "vswin native windowAttention: expected 7 arguments");
  typed_view q, k, v, bias, mask = {0}, out;
  if (!read_float_view(env, argv[0], &q, "q") || !read_float_view(env, argv[1], &k, "k") ||
      !read_float_view(env, argv[2], &v, "v") || !read_float_view(env, argv[3], &bias, "bias") ||
      !read_float_view(env, argv[5], &out, "out"))
    return NULL;
  napi_valuetype mask_type;
  CHECK_STATUS(napi_typeof(env, argv[4], &mask_type));
  int has_mask = mask_type != napi_null && mask_type != napi_undefined;
  if (has_mask && !read_float_view(env, argv[4], &mask, "mask")) return NULL;
  const int32_t *p;
  size_t count;
  if (!read_params(env, argv[6], &p, &count)) return NULL;
  if (count < 5) return fail(env, "vswin native windowAttention: params needs 5 entries");
  long batch = p[0], heads = p[1], n = p[2], dim = p[3], windows = p[4];
  if (batch < 0 || heads < 0 || n < 0 || dim < 0 || windows < 1) return fail(env, "vswin native windowAttention: bad sizes");
  size_t tokens = (size_t)(batch * heads * n * dim);
  if (q.length < tokens || k.length < tokens || v.length < tokens || out.length < tokens)
    return fail(env, "vswin native windowAttention: q, k, v or out smaller than batch*heads*n*dim");
  if (bias.length < (size_t)(heads * n * n)) return fail(env, "vswin native windowAttention: bias smaller than heads*n*n");
  if (has_mask && (mask.length < (size_t)(windows * n * n) || batch % windows != 0))
    return fail(env, "vswin native windowAttention: mask smaller than windows*n*n, or batch not a multiple of windows");
  if (vswin_window_attention(q.data, k.data, v.data, bias.data, has_mask ? mask.data : NULL, out.data, batch, heads, n, dim, windows) != 0)
    napi_throw_error(env, NULL, "vswin native windowAttention: out of memory for the per-thread score or packing buffers");
  return NULL;
}

static int read_floats(napi_env env, napi_value *argv, typed_view *views, const char *const *names, int count) {
  for (int i = 0; i < count; i++)
    if (!read_float_view(env, argv[i], &views[i], names[i])) return 0;
  return 1;
}

/* gelu(input, output) */
static napi_value js_gelu(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  static const char *const names[] = {"input", "output"};
  typed_view v[2];
  if (argc < 2) return fail(env, "vswin native gelu: expected 2 arguments");
  if (!read_floats(env, argv, v, names, 2)) return NULL;
  if (v[1].length < v[0].length) return fail(env, "vswin native gelu: output too small");
  vswin_gelu(v[0].data, v[1].data, (long)v[0].length);
  return NULL;
}

/* geluGrad(dy, x, dx) */
static napi_value js_gelu_grad(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  static const char *const names[] = {"dy", "x", "dx"};
  typed_view v[3];
  if (argc < 3) return fail(env, "vswin native geluGrad: expected 3 arguments");
  if (!read_floats(env, argv, v, names, 3)) return NULL;
  if (v[0].length < v[1].length || v[2].length < v[1].length) return fail(env, "vswin native geluGrad: dy or dx smaller than x");
  vswin_gelu_grad(v[0].data, v[1].data, v[2].data, (long)v[1].length);
  return NULL;
}

/* layerNorm(x, gamma, beta, y, mean, rstd, rows, cols, eps) */
static napi_value js_layer_norm(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  static const char *const names[] = {"x", "gamma", "beta", "y", "mean", "rstd"};
  typed_view v[6];
  if (argc < 9) return fail(env, "vswin native layerNorm: expected 9 arguments");
  if (!read_floats(env, argv, v, names, 6)) return NULL;
  int64_t rows, cols;
  double eps;
  CHECK_STATUS(napi_get_value_int64(env, argv[6], &rows));
  CHECK_STATUS(napi_get_value_int64(env, argv[7], &cols));
  CHECK_STATUS(napi_get_value_double(env, argv[8], &eps));
  size_t total = (size_t)(rows * cols);
  if (rows < 0 || cols < 0 || v[0].length < total || v[3].length < total || v[1].length < (size_t)cols ||
      v[2].length < (size_t)cols || v[4].length < (size_t)rows || v[5].length < (size_t)rows)
    return fail(env, "vswin native layerNorm: arrays smaller than rows x cols");
  vswin_layer_norm(v[0].data, v[1].data, v[2].data, v[3].data, v[4].data, v[5].data, (long)rows, (long)cols, (float)eps);
  return NULL;
}

/* layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols) */
static napi_value js_layer_norm_grad(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  static const char *const names[] = {"dy", "x", "gamma", "mean", "rstd", "dx", "dgamma", "dbeta"};
  typed_view v[8];
  if (argc < 10) return fail(env, "vswin native layerNormGrad: expected 10 arguments");
  if (!read_floats(env, argv, v, names, 8)) return NULL;
  int64_t rows, cols;
  CHECK_STATUS(napi_get_value_int64(env, argv[8], &rows));
  CHECK_STATUS(napi_get_value_int64(env, argv[9], &cols));
  size_t total = (size_t)(rows * cols);
  if (rows < 0 || cols < 0 || v[0].length < total || v[1].length < total || v[5].length < total || v[2].length < (size_t)cols ||
      v[6].length < (size_t)cols || v[7].length < (size_t)cols || v[3].length < (size_t)rows || v[4].length < (size_t)rows)
    return fail(env, "vswin native layerNormGrad: arrays smaller than rows x cols");
  if (vswin_layer_norm_grad(v[0].data, v[1].data, v[2].data, v[3].data, v[4].data, v[5].data, v[6].data, v[7].data, (long)rows, (long)cols) != 0)
    napi_throw_error(env, NULL, "vswin native layerNormGrad: out of memory for partial sums");
  return NULL;
}

/* adamw(param, grad, expAvg | null, expAvgSq | null, outParam, outExpAvg, outExpAvgSq, settings Float64Array) */
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return fail(env, "vswin native adamw: expected 8 arguments");
  typed_view param, grad, exp_avg = {0}, exp_avg_sq = {0}, out_param, out_exp_avg, out_exp_avg_sq, settings;
  if (!read_float_view(env, argv[0], &param, "param") || !read_float_view(env, argv[1], &grad, "grad") ||
      !read_float_view(env, argv[4], &out_param, "outParam") || !read_float_view(env, argv[5], &out_exp_avg, "outExpAvg") ||
      !read_float_view(env, argv[6], &out_exp_avg_sq, "outExpAvgSq") || !read_view(env, argv[7], &settings, "settings"))
    return NULL;
  napi_valuetype type;
  CHECK_STATUS(napi_typeof(env, argv[2], &type));
  int has_moments = type != napi_null && type != napi_undefined;
  if (has_moments && (!read_float_view(env, argv[2], &exp_avg, "expAvg") || !read_float_view(env, argv[3], &exp_avg_sq, "expAvgSq")))
    return NULL;
  if (settings.type != napi_float64_array || settings.length < 7) return fail(env, "vswin native adamw: settings must be a Float64Array of 7");
  size_t size = param.length;
  if (grad.length != size || out_param.length < size || out_exp_avg.length < size || out_exp_avg_sq.length < size ||
      (has_moments && (exp_avg.length != size || exp_avg_sq.length != size)))
    return fail(env, "vswin native adamw: tensors differ in size");
  const double *s = settings.data;
  vswin_adamw_settings values = {(float)s[0], (float)s[1], (float)s[2], (float)s[3], (float)s[4], (float)s[5], (float)s[6]};
  vswin_adamw(param.data, grad.data, has_moments ? exp_avg.data : NULL, has_moments ? exp_avg_sq.data : NULL, out_param.data,
              out_exp_avg.data, out_exp_avg_sq.data, (long)size, &values);
  return NULL;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, isa, threads;
  CHECK_STATUS(napi_create_object(env, &result));
  CHECK_STATUS(napi_create_string_utf8(env, vswin_gemm_isa(), NAPI_AUTO_LENGTH, &isa));
  CHECK_STATUS(napi_create_int32(env, vswin_thread_count(), &threads));
  CHECK_STATUS(napi_set_named_property(env, result, "isa", isa));
  CHECK_STATUS(napi_set_named_property(env, result, "threads", threads));
  return result;
}

/* setIsa(name) -> boolean: forces a micro-kernel family (tests run each one on capable CPUs). */
static napi_value js_set_isa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[32] = {0};
  size_t length;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) != napi_ok)
    return fail(env, "vswin native setIsa: expected a string");
  napi_value result;
  CHECK_STATUS(napi_get_boolean(env, vswin_gemm_force_isa(name), &result));
  return result;
}

/* fmaPeak(iterations) -> {flops, seconds}: the measured fp32 peak of the pool (peak.c). */
static napi_value js_fma_peak(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_STATUS(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double iterations;
  if (argc < 1 || napi_get_value_double(env, argv[0], &iterations) != napi_ok || !(iterations >= 1))
    return fail(env, "vswin native fmaPeak: expected a positive iteration count");
  double seconds = 0;
  double flops = vswin_fma_peak((long)iterations, &seconds);
  napi_value result, flops_value, seconds_value;
  CHECK_STATUS(napi_create_object(env, &result));
  CHECK_STATUS(napi_create_double(env, flops, &flops_value));
  CHECK_STATUS(napi_create_double(env, seconds, &seconds_value));
  CHECK_STATUS(napi_set_named_property(env, result, "flops", flops_value));
  CHECK_STATUS(napi_set_named_property(env, result, "seconds", seconds_value));
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"gemm", NULL, js_gemm, NULL, NULL, NULL, napi_default, NULL},
      {"stridedCopy", NULL, js_strided_copy, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, js_binary, NULL, NULL, NULL, napi_default, NULL},
      {"gather", NULL, js_gather, NULL, NULL, NULL, napi_default, NULL},
      {"erf", NULL, js_erf, NULL, NULL, NULL, napi_default, NULL},
      {"softmax", NULL, js_softmax, NULL, NULL, NULL, napi_default, NULL},
      {"windowAttention", NULL, js_window_attention, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, js_gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, js_gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, js_layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, js_layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, js_adamw, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
      {"setIsa", NULL, js_set_isa, NULL, NULL, NULL, napi_default, NULL},
      {"fmaPeak", NULL, js_fma_peak, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
