/* A measured fp32 peak: every pool thread runs independent chains of fused multiply-adds on
 * registers for a fixed count, in the widest instruction set the kernels use. 16 accumulators
 * cover the FMA latency (4 cycles) times two FMA ports. The benchmark divides its GFLOP/s by this
 * to report a share of the machine's peak, measured under the same load as the kernels. */
#define _GNU_SOURCE
#include "vswin.h"

#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define CHAINS 16

__attribute__((target("avx512f"))) static float fma_avx512(long iterations) {
  __m512 acc[CHAINS];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < iterations; it++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < CHAINS; i++) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iterations) {
  __m256 acc[CHAINS];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
  for (long it = 0; it < iterations; it++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < CHAINS; i++) sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}
#endif

static float fma_portable(long iterations) {
  float acc[8];
  for (int i = 0; i < 8; i++) acc[i] = (float)i;
  for (long it = 0; it < iterations; it++)
    for (int i = 0; i < 8; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float sum = 0;
  for (int i = 0; i < 8; i++) sum += acc[i];
  return sum;
}

typedef struct {
  long iterations;
  volatile float sink;
} peak_job;

static double flops_per_iteration(void) {
#if defined(__x86_64__) || defined(__i386__)
  if (vswin_isa_is_avx512()) return 2.0 * 16 * CHAINS;
  if (vswin_isa_is_avx2()) return 2.0 * 8 * CHAINS;
#endif
  return 2.0 * 8;
}

static void peak_task(void *context, long index) {
  (void)index;
  peak_job *job = context;
  float result;
#if defined(__x86_64__) || defined(__i386__)
  if (vswin_isa_is_avx512())
    result = fma_avx512(job->iterations);
  else if (vswin_isa_is_avx2())
    result = fma_avx2(job->iterations);
  else
#endif
    result = fma_portable(job->iterations);
  job->sink = result;
}

double vswin_fma_peak(long iterations, double *seconds) {
  peak_job job = {iterations, 0};
  struct timespec start, end;
  long tasks = vswin_thread_count();
  clock_gettime(CLOCK_MONOTONIC, &start);
  vswin_parallel(tasks, peak_task, &job);
  clock_gettime(CLOCK_MONOTONIC, &end);
  *seconds = (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec);
  return flops_per_iteration() * (double)iterations * (double)tasks;
}
