/* Fused LayerNorm (forward and backward) and exact GELU (forward and backward) over rows of C
 * values. Unfused, LayerNorm is ~10 elementwise passes with [rows, 1] broadcasts and GELU 4-8,
 * each streaming the whole activation through memory. */
#define _GNU_SOURCE
#include "vswin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_PER_TASK 64

typedef struct {
  const float *x, *gamma, *beta, *dy, *mean, *rstd;
  float *y, *out_mean, *out_rstd, *dx, *partial;
  long rows, cols;
  float eps;
} norm_job;

static void layer_norm_task(void *context, long index) {
  const norm_job *job = context;
  const long cols = job->cols;
  long first = index * ROWS_PER_TASK, last = first + ROWS_PER_TASK < job->rows ? first + ROWS_PER_TASK : job->rows;
  for (long r = first; r < last; r++) {
    const float *x = job->x + r * cols;
    float *y = job->y + r * cols;
    /* two passes (mean, then squared deviations) keep the biased variance accurate */
    float sum = 0.0f;
    for (long c = 0; c < cols; c++) sum += x[c];
    float mean = sum / (float)cols;
    float squares = 0.0f;
    for (long c = 0; c < cols; c++) {
      float d = x[c] - mean;
      squares += d * d;
    }
    float rstd = 1.0f / sqrtf(squares / (float)cols + job->eps);
    for (long c = 0; c < cols; c++) y[c] = (x[c] - mean) * rstd * job->gamma[c] + job->beta[c];
    job->out_mean[r] = mean;
    job->out_rstd[r] = rstd;
  }
}

void vswin_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd,
                      long rows, long cols, float eps) {
  if (rows <= 0 || cols <= 0) return;
  norm_job job = {.x = x, .gamma = gamma, .beta = beta, .y = y, .out_mean = mean, .out_rstd = rstd, .rows = rows, .cols = cols, .eps = eps};
  vswin_parallel((rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, layer_norm_task, &job);
}

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma; per-task partial column
 * sums of dy * xhat and dy go to partial[task][2][cols] and are added up by the caller thread. */
static void layer_norm_grad_task(void *context, long index) {
  const norm_job *job = context;
  const long cols = job->cols;
  long first = index * ROWS_PER_TASK, last = first + ROWS_PER_TASK < job->rows ? first + ROWS_PER_TASK : job->rows;
  float *dgamma = job->partial + index * 2 * cols;
  float *dbeta = dgamma + cols;
  memset(dgamma, 0, (size_t)(2 * cols) * sizeof(float));
  for (long r = first; r < last; r++) {
    const float *x = job->x + r * cols, *dy = job->dy + r * cols;
    float *dx = job->dx + r * cols;
    const float mean = job->mean[r], rstd = job->rstd[r];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (long c = 0; c < cols; c++) {
      float xhat = (x[c] - mean) * rstd;
      float g = dy[c] * job->gamma[c];
      sum_g += g;
      sum_gx += g * xhat;
      dgamma[c] += dy[c] * xhat;
      dbeta[c] += dy[c];
    }
    const float mean_g = sum_g / (float)cols, mean_gx = sum_gx / (float)cols;
    for (long c = 0; c < cols; c++) {
      float xhat = (x[c] - mean) * rstd;
      dx[c] = rstd * (dy[c] * job->gamma[c] - mean_g - xhat * mean_gx);
    }
  }
}

int vswin_layer_norm_grad(const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd,
                          float *dx, float *dgamma, float *dbeta, long rows, long cols) {
  memset(dgamma, 0, (size_t)cols * sizeof(float));
  memset(dbeta, 0, (size_t)cols * sizeof(float));
  if (rows <= 0 || cols <= 0) return 0;
  long tasks = (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
  float *partial = malloc((size_t)(tasks * 2 * cols) * sizeof(float));
  if (!partial) return -1;
  norm_job job = {.x = x, .gamma = gamma, .dy = dy, .mean = mean, .rstd = rstd, .dx = dx, .partial = partial, .rows = rows, .cols = cols};
  vswin_parallel(tasks, layer_norm_grad_task, &job);
  for (long t = 0; t < tasks; t++) {
    const float *part = partial + t * 2 * cols;
    for (long c = 0; c < cols; c++) {
      dgamma[c] += part[c];
      dbeta[c] += part[cols + c];
    }
  }
  free(partial);
  return 0;
}
