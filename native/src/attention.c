/* Fused window attention: each (window, head) pair is one task that computes its n x n scores,
 * adds the relative position bias and the shift mask, takes the row softmax and multiplies by V
 * while the scores are still in cache (n = 392 for 8x7x7 windows: 614 KB, inside L2). Unfused,
 * every one of those steps streams a 236 MB tensor through memory at 16x224x224. */
#define _GNU_SOURCE
#include "vswin.h"

#include <stdlib.h>

typedef struct {
  const float *q, *k, *v, *bias, *mask;
  float *out;
  long heads, n, dim, windows;
  volatile int failed;
} attention_job;

static __thread float *scores_buffer;
static __thread long scores_capacity;

static float *scores_for(long floats) {
  if (floats > scores_capacity) {
    free(scores_buffer);
    scores_buffer = aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64);
    scores_capacity = scores_buffer ? floats : 0;
  }
  return scores_buffer;
}

static void attention_task(void *context, long index) {
  attention_job *job = context;
  const long n = job->n, dim = job->dim;
  const long window = (index / job->heads) % job->windows;
  const long head = index % job->heads;
  const long offset = index * n * dim;
  float *scores = scores_for(n * n);
  if (!scores) {
    job->failed = 1;
    return;
  }

  vswin_gemm_args product = {
      .batch = 1, .m = n, .n = n, .k = dim,
      .a = job->q + offset, .a_row = dim, .a_col = 1,
      .b = job->k + offset, .b_row = 1, .b_col = dim, /* k transposed */
      .c = scores,
  };
  if (vswin_gemm_serial(&product) != 0) job->failed = 1;

  const float *bias = job->bias + head * n * n;
  const float *mask = job->mask ? job->mask + window * n * n : NULL;
  if (mask) {
    for (long i = 0; i < n * n; i++) scores[i] += bias[i] + mask[i];
  } else {
    for (long i = 0; i < n * n; i++) scores[i] += bias[i];
  }
  vswin_softmax_rows_serial(scores, n, n);

  vswin_gemm_args weighted = {
      .batch = 1, .m = n, .n = dim, .k = n,
      .a = scores, .a_row = n, .a_col = 1,
      .b = job->v + offset, .b_row = dim, .b_col = 1,
      .c = job->out + offset,
  };
  if (vswin_gemm_serial(&weighted) != 0) job->failed = 1;
}

int vswin_window_attention(const float *q, const float *k, const float *v, const float *bias, const float *mask,
                           float *out, long batch, long heads, long n, long dim, long windows) {
  if (batch <= 0 || heads <= 0 || n <= 0) return 0;
  attention_job job = {q, k, v, bias, mask, out, heads, n, dim, windows > 0 ? windows : 1, 0};
  vswin_parallel(batch * heads, attention_task, &job);
  return job.failed ? -1 : 0;
}
