/* Shared declarations for the vswin native kernels (N-API addon). */
#ifndef VSWIN_H
#define VSWIN_H

#include <stddef.h>
#include <stdint.h>

#define VSWIN_MAX_RANK 8

/* Thread pool: runs task(context, index) for index in [0, count) on the pool plus the caller. */
typedef void (*vswin_task)(void *context, long index);
void vswin_parallel(long count, vswin_task task, void *context);
int vswin_thread_count(void);

/* Flush-to-zero / denormals-are-zero for the duration of a call (per thread: MXCSR/FPCR are
 * thread state, so every worker sets and restores its own). */
typedef uint64_t vswin_fp_state;
vswin_fp_state vswin_fp_enter(void);
void vswin_fp_leave(vswin_fp_state state);

enum vswin_activation {
  VSWIN_LINEAR = 0,
  VSWIN_RELU = 1,
  VSWIN_RELU6 = 2,
  VSWIN_LEAKY_RELU = 3,
  VSWIN_SIGMOID = 4,
  VSWIN_ELU = 5,
};

typedef struct {
  long batch, m, n, k;
  const float *a; long a_batch, a_row, a_col; /* element (m, k) at a[m * a_row + k * a_col] */
  const float *b; long b_batch, b_row, b_col; /* element (k, n) at b[k * b_row + n * b_col] */
  float *c;                                   /* [batch, m, n] contiguous */
  const float *bias; long bias_batch, bias_row, bias_col;
  int activation;
  float alpha;
} vswin_gemm_args;

/* Returns -1 when a thread could not allocate its pack buffers (the product is then incomplete). */
int vswin_gemm(const vswin_gemm_args *args);
/* The same product on the calling thread only (for use inside a pool task). */
int vswin_gemm_serial(const vswin_gemm_args *args);
const char *vswin_gemm_isa(void);
/* True when the chosen (or forced) instruction set is AVX-512; the hand-vectorised elementwise
 * kernels follow the same choice, so forcing "portable" tests their fallbacks too. */
int vswin_isa_is_avx512(void);
int vswin_isa_is_avx2(void);
/* Forces an instruction set ("avx512", "avx2" on x86-64, "neon" on aarch64, "portable" anywhere;
 * returns 0 if this CPU or build lacks it), or "auto" to go back to the run-time choice. The
 * VSWIN_ISA environment variable names the same choice. */
int vswin_gemm_force_isa(const char *name);

/* out[i0..] = in[offset + sum(i_d * in_strides[d])], out contiguous over shape. 32-bit elements. */
void vswin_strided_copy(const uint32_t *input, uint32_t *output, int rank, const long *shape,
                        const long *in_strides, long offset);

enum vswin_binary_op { VSWIN_ADD = 0, VSWIN_SUB = 1, VSWIN_MUL = 2, VSWIN_DIV = 3 };
void vswin_binary(int op, const float *a, const float *b, float *out, int rank, const long *shape,
                  const long *a_strides, const long *b_strides);

/* out[b, o, j, :] = x[b, o, indices[b, j], :]; returns the position of the first index outside
 * [0, dim) (nothing is written then), or -1. 32-bit elements. */
long vswin_gather(const uint32_t *x, const int32_t *indices, uint32_t *out, long batch, long outer, long dim,
                  long slice, long count);

void vswin_erf(const float *input, float *output, long size);
/* Exact GELU x * (1 + erf(x / sqrt 2)) / 2, and its gradient dx = dy * (cdf(x) + x * pdf(x)). */
void vswin_gelu(const float *input, float *output, long size);
void vswin_gelu_grad(const float *dy, const float *x, float *dx, long size);

/* LayerNorm over the last axis of [rows, cols] (biased variance), saving mean and 1/std per row. */
void vswin_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd,
                      long rows, long cols, float eps);
/* Its gradient; returns -1 when the partial-sum buffer cannot be allocated (nothing valid then). */
int vswin_layer_norm_grad(const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd,
                          float *dx, float *dgamma, float *dbeta, long rows, long cols);
void vswin_softmax(const float *input, float *output, long rows, long cols);
/* Softmax of rows in place on the calling thread. */
void vswin_softmax_rows_serial(float *rows_data, long rows, long cols);

/* out[b, h] = softmax(q[b, h] k[b, h]^T + bias[h] + mask[b % windows]) v[b, h] for every window b
 * and head h, one (b, h) at a time so the n x n scores stay in cache. q, k, v, out: [batch, heads,
 * n, dim]; bias: [heads, n, n]; mask: [windows, n, n] or NULL. Returns -1 when a thread could not
 * allocate its score buffer (the output is then incomplete), else 0. */
int vswin_window_attention(const float *q, const float *k, const float *v, const float *bias, const float *mask,
                           float *out, long batch, long heads, long n, long dim, long windows);

typedef struct {
  float lr, beta1, beta2, eps, weight_decay, correction1, correction2_sqrt;
} vswin_adamw_settings;
/* One AdamW step: exp_avg / exp_avg_sq may be NULL on the first step (zeros). */
void vswin_adamw(const float *param, const float *grad, const float *exp_avg, const float *exp_avg_sq, float *out_param,
                 float *out_exp_avg, float *out_exp_avg_sq, long size, const vswin_adamw_settings *settings);

/* The FMA loop of peak.c on every pool thread; returns the floating-point operations done and
 * writes the wall time taken. */
double vswin_fma_peak(long iterations, double *seconds);

#endif
