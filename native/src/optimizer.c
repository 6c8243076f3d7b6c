/* AdamW update in one pass: the tfjs version is ~10 elementwise ops per parameter tensor, each a
 * full read and write of parameter-sized memory. Same arithmetic order as core/train/adamw.ts. */
#include "vswin.h"

#include <math.h>

typedef struct {
  const float *param, *grad, *exp_avg, *exp_avg_sq;
  float *out_param, *out_exp_avg, *out_exp_avg_sq;
  long size;
  vswin_adamw_settings settings;
} adamw_job;

#define ADAMW_CHUNK 16384L

static void adamw_task(void *context, long index) {
  const adamw_job *job = context;
  const vswin_adamw_settings *s = &job->settings;
  long start = index * ADAMW_CHUNK, end = start + ADAMW_CHUNK < job->size ? start + ADAMW_CHUNK : job->size;
  const float keep = 1.0f - s->lr * s->weight_decay;
  const float step = s->lr / s->correction1;
  for (long i = start; i < end; i++) {
    float g = job->grad[i];
    float m = (job->exp_avg ? job->exp_avg[i] * s->beta1 : 0.0f) + g * (1.0f - s->beta1);
    float v = (job->exp_avg_sq ? job->exp_avg_sq[i] * s->beta2 : 0.0f) + g * g * (1.0f - s->beta2);
    float denominator = sqrtf(v) / s->correction2_sqrt + s->eps;
    job->out_param[i] = job->param[i] * keep - (m / denominator) * step;
    job->out_exp_avg[i] = m;
    job->out_exp_avg_sq[i] = v;
  }
}

void vswin_adamw(const float *param, const float *grad, const float *exp_avg, const float *exp_avg_sq, float *out_param,
                 float *out_exp_avg, float *out_exp_avg_sq, long size, const vswin_adamw_settings *settings) {
  if (size <= 0) return;
  adamw_job job = {param, grad, exp_avg, exp_avg_sq, out_param, out_exp_avg, out_exp_avg_sq, size, *settings};
  vswin_parallel((size + ADAMW_CHUNK - 1) / ADAMW_CHUNK, adamw_task, &job);
}
