/* Single-precision GEMM, BLIS-style: B is packed into NR-wide panels and A into MR-tall panels
 * (k-major), so one register-tile micro-kernel serves every transpose combination: transposes
 * are only different strides in the packing loops. The instruction set is chosen at run time;
 * each x86 SIMD kernel is compiled with a per-function target attribute, so the addon itself
 * needs no -mavx flags and still loads on any x86-64. On aarch64 NEON is part of the base
 * architecture, so its kernel needs no attribute and is always available. */
#define _GNU_SOURCE
#include "vswin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VSWIN_X86 1
#include <immintrin.h>
#endif

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define VSWIN_NEON 1
#include <arm_neon.h>
#endif

#define KC 256
#define MAX_MR 16
#define MAX_NR 32

/* c[i][j] = (accumulate ? c[i][j] : 0) + sum_p a[p][i] b[p][j], then + bias[j] when bias is not NULL
 * (a row bias added as the tile is stored, on the last K block: the same additions in the same
 * order as a separate pass over C, without streaming C through memory again). */
typedef void (*micro_kernel)(long kc, const float *a, const float *b, float *c, long ldc, int accumulate, const float *bias);

typedef struct {
  const char *name;
  int mr, nr, mc, nc;
  micro_kernel kernel;
} gemm_isa;

/* Portable tile: plain C that compilers vectorise for the baseline (SSE2, NEON). */
#define PORTABLE_MR 4
#define PORTABLE_NR 16
static void kernel_portable(long kc, const float *a, const float *b, float *c, long ldc, int accumulate,
                            const float *bias) {
  float acc[PORTABLE_MR][PORTABLE_NR];
  memset(acc, 0, sizeof acc);
  for (long p = 0; p < kc; p++) {
    for (int i = 0; i < PORTABLE_MR; i++) {
      float ai = a[i];
      for (int j = 0; j < PORTABLE_NR; j++) acc[i][j] += ai * b[j];
    }
    a += PORTABLE_MR;
    b += PORTABLE_NR;
  }
  for (int i = 0; i < PORTABLE_MR; i++) {
    float *row = c + i * ldc;
    if (accumulate) {
      for (int j = 0; j < PORTABLE_NR; j++) row[j] += acc[i][j];
    } else {
      for (int j = 0; j < PORTABLE_NR; j++) row[j] = acc[i][j];
    }
    if (bias)
      for (int j = 0; j < PORTABLE_NR; j++) row[j] += bias[j];
  }
}

#ifdef VSWIN_X86
/* 6x16 with AVX2+FMA: 12 accumulators + 2 B vectors + 1 broadcast fit the 16 ymm registers. */
__attribute__((target("avx2,fma"))) static void kernel_avx2(long kc, const float *a, const float *b, float *c,
                                                             long ldc, int accumulate, const float *bias) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (long p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai;
    ai = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += 6;
    b += 16;
  }
#define STORE_ROW_AVX2(i, lo, hi)                                                      \
  do {                                                                                \
    float *row = c + (i) * ldc;                                                       \
    if (accumulate) {                                                                 \
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));                                   \
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));                               \
    }                                                                                 \
    if (bias) {                                                                       \
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(bias));                                  \
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(bias + 8));                              \
    }                                                                                 \
    _mm256_storeu_ps(row, lo);                                                        \
    _mm256_storeu_ps(row + 8, hi);                                                    \
  } while (0)
  STORE_ROW_AVX2(0, c00, c01); STORE_ROW_AVX2(1, c10, c11); STORE_ROW_AVX2(2, c20, c21);
  STORE_ROW_AVX2(3, c30, c31); STORE_ROW_AVX2(4, c40, c41); STORE_ROW_AVX2(5, c50, c51);
#undef STORE_ROW_AVX2
}

/* 14x32 with AVX-512: 28 accumulators + 2 B vectors + 1 broadcast of the 32 zmm registers.
 * 14 divides the window token count (392) and 32 is the head dimension. */
__attribute__((target("avx512f"))) static void kernel_avx512(long kc, const float *a, const float *b, float *c,
                                                              long ldc, int accumulate, const float *bias) {
  __m512 acc[14][2];
#pragma GCC unroll 14
  for (int i = 0; i < 14; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (long p = 0; p < kc; p++) {
    __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < 14; i++) {
      __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += 14;
    b += 32;
  }
#pragma GCC unroll 14
  for (int i = 0; i < 14; i++) {
    float *row = c + i * ldc;
    __m512 lo = acc[i][0], hi = acc[i][1];
    if (accumulate) {
      lo = _mm512_add_ps(lo, _mm512_loadu_ps(row));
      hi = _mm512_add_ps(hi, _mm512_loadu_ps(row + 16));
    }
    if (bias) {
      lo = _mm512_add_ps(lo, _mm512_loadu_ps(bias));
      hi = _mm512_add_ps(hi, _mm512_loadu_ps(bias + 16));
    }
    _mm512_storeu_ps(row, lo);
    _mm512_storeu_ps(row + 16, hi);
  }
}
#endif

#ifdef VSWIN_NEON
/* 12x8 with NEON: 24 accumulators (12 rows x 2 four-float vectors) + 3 A vectors + 2 B vectors =
 * 29 of the 32 q registers. Each k step loads 5 vectors and issues 24 FMAs, each multiplying a B
 * vector by one lane of an A vector (vfmaq_laneq_f32), so A needs no separate broadcasts. NR = 8
 * divides every Swin width (32, 96, 288, 384, 392), so ragged edges fall on rows only, once per
 * matrix. */
#define NEON_ROW(i, av, lane)                                \
  do {                                                       \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, lane);        \
    c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, lane);        \
  } while (0)
#define NEON_STORE(i)                                        \
  do {                                                       \
    float *row = c + (i) * ldc;                              \
    if (accumulate) {                                        \
      c##i##0 = vaddq_f32(c##i##0, vld1q_f32(row));          \
      c##i##1 = vaddq_f32(c##i##1, vld1q_f32(row + 4));      \
    }                                                        \
    if (bias) {                                              \
      c##i##0 = vaddq_f32(c##i##0, vld1q_f32(bias));         \
      c##i##1 = vaddq_f32(c##i##1, vld1q_f32(bias + 4));     \
    }                                                        \
    vst1q_f32(row, c##i##0);                                 \
    vst1q_f32(row + 4, c##i##1);                             \
  } while (0)
static void kernel_neon(long kc, const float *a, const float *b, float *c, long ldc, int accumulate,
                        const float *bias) {
  float32x4_t zero = vdupq_n_f32(0.0f);
  float32x4_t c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  float32x4_t c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
  float32x4_t c60 = zero, c61 = zero, c70 = zero, c71 = zero, c80 = zero, c81 = zero;
  float32x4_t c90 = zero, c91 = zero, c100 = zero, c101 = zero, c110 = zero, c111 = zero;
  for (long p = 0; p < kc; p++) {
    float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4), a2 = vld1q_f32(a + 8);
    float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
    NEON_ROW(0, a0, 0); NEON_ROW(1, a0, 1); NEON_ROW(2, a0, 2); NEON_ROW(3, a0, 3);
    NEON_ROW(4, a1, 0); NEON_ROW(5, a1, 1); NEON_ROW(6, a1, 2); NEON_ROW(7, a1, 3);
    NEON_ROW(8, a2, 0); NEON_ROW(9, a2, 1); NEON_ROW(10, a2, 2); NEON_ROW(11, a2, 3);
    a += 12;
    b += 8;
  }
  NEON_STORE(0); NEON_STORE(1); NEON_STORE(2); NEON_STORE(3); NEON_STORE(4); NEON_STORE(5);
  NEON_STORE(6); NEON_STORE(7); NEON_STORE(8); NEON_STORE(9); NEON_STORE(10); NEON_STORE(11);
}
#undef NEON_ROW
#undef NEON_STORE
#endif

static const gemm_isa isa_portable = {"portable", PORTABLE_MR, PORTABLE_NR, 128, 2048, kernel_portable};
#ifdef VSWIN_X86
static const gemm_isa isa_avx2 = {"avx2", 6, 16, 144, 2048, kernel_avx2};
static const gemm_isa isa_avx512 = {"avx512", 14, 32, 168, 2048, kernel_avx512};
#endif
#ifdef VSWIN_NEON
/* MC = 12 tiles (a 144 x 256 A block, 144 KB) and NC = 2048: the same cache budget as AVX2's. */
static const gemm_isa isa_neon = {"neon", 12, 8, 144, 2048, kernel_neon};
#endif

static const gemm_isa *selected_isa;
static int isa_forced;

static int cpu_has(const char *name) {
#ifdef VSWIN_X86
  if (strcmp(name, "avx512") == 0) return __builtin_cpu_supports("avx512f");
  if (strcmp(name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#ifdef VSWIN_NEON
  if (strcmp(name, "neon") == 0) return 1; /* Advanced SIMD is mandatory in AArch64 */
#endif
  return strcmp(name, "portable") == 0;
}

static const gemm_isa *isa_by_name(const char *name) {
#ifdef VSWIN_X86
  if (strcmp(name, "avx512") == 0) return &isa_avx512;
  if (strcmp(name, "avx2") == 0) return &isa_avx2;
#endif
#ifdef VSWIN_NEON
  if (strcmp(name, "neon") == 0) return &isa_neon;
#endif
  if (strcmp(name, "portable") == 0) return &isa_portable;
  return NULL;
}

int vswin_gemm_force_isa(const char *name) {
  if (strcmp(name, "auto") == 0) {
    selected_isa = NULL;
    isa_forced = 0;
    return 1;
  }
  const gemm_isa *isa = isa_by_name(name);
  if (!isa || !cpu_has(name)) return 0;
  selected_isa = isa;
  isa_forced = 1;
  return 1;
}

static const gemm_isa *current_isa(void) {
  if (selected_isa) return selected_isa;
  const char *override = getenv("VSWIN_ISA");
  if (override && vswin_gemm_force_isa(override)) return selected_isa;
  if (cpu_has("avx512")) selected_isa = isa_by_name("avx512");
  else if (cpu_has("avx2")) selected_isa = isa_by_name("avx2");
#ifdef VSWIN_NEON
  else if (cpu_has("neon")) selected_isa = isa_by_name("neon");
#endif
  else selected_isa = &isa_portable;
  return selected_isa;
}

const char *vswin_gemm_isa(void) { return current_isa()->name; }

int vswin_isa_is_avx2(void) {
#ifdef VSWIN_X86
  return current_isa() == &isa_avx2;
#else
  return 0;
#endif
}

int vswin_isa_is_avx512(void) {
#ifdef VSWIN_X86
  return current_isa() == &isa_avx512;
#else
  return 0;
#endif
}

/* Pack buffers are per thread (not per pool slot) so two concurrent callers never share one. */
static __thread float *pack_a_buffer;
static __thread float *pack_b_buffer;

static float *thread_buffer(float **slot, size_t floats) {
  if (!*slot) *slot = aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64);
  return *slot;
}

/* A block (mc x kc) into MR-tall panels, each laid out k-major, zero-padded to MR rows. */
static void pack_a(long mc, long kc, const float *a, long row, long col, float *out, int mr) {
  for (long i0 = 0; i0 < mc; i0 += mr) {
    long rows = mc - i0 < mr ? mc - i0 : mr;
    const float *panel = a + i0 * row;
    if (row == 1) {
      for (long p = 0; p < kc; p++) {
        const float *src = panel + p * col;
        long i = 0;
        for (; i < rows; i++) out[p * mr + i] = src[i];
        for (; i < mr; i++) out[p * mr + i] = 0.0f;
      }
    } else {
      for (long i = 0; i < rows; i++) {
        const float *src = panel + i * row;
        for (long p = 0; p < kc; p++) out[p * mr + i] = src[p * col];
      }
      for (long i = rows; i < mr; i++)
        for (long p = 0; p < kc; p++) out[p * mr + i] = 0.0f;
    }
    out += mr * kc;
  }
}

/* B block (kc x nc) into NR-wide panels, each laid out k-major, zero-padded to NR columns. */
static void pack_b(long kc, long nc, const float *b, long row, long col, float *out, int nr) {
  for (long j0 = 0; j0 < nc; j0 += nr) {
    long cols = nc - j0 < nr ? nc - j0 : nr;
    const float *panel = b + j0 * col;
    if (col == 1) {
      for (long p = 0; p < kc; p++) {
        const float *src = panel + p * row;
        float *dst = out + p * nr;
        memcpy(dst, src, (size_t)cols * sizeof(float));
        for (long j = cols; j < nr; j++) dst[j] = 0.0f;
      }
    } else {
      for (long j = 0; j < cols; j++) {
        const float *src = panel + j * col;
        for (long p = 0; p < kc; p++) out[p * nr + j] = src[p * row];
      }
      for (long j = cols; j < nr; j++)
        for (long p = 0; p < kc; p++) out[p * nr + j] = 0.0f;
    }
    out += nr * kc;
  }
}

static inline float activate(float x, int activation, float alpha) {
  switch (activation) {
    case VSWIN_RELU: return x > 0.0f ? x : 0.0f;
    case VSWIN_RELU6: return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case VSWIN_LEAKY_RELU: return x < 0.0f ? alpha * x : x;
    case VSWIN_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case VSWIN_ELU: return x > 0.0f ? x : expf(x) - 1.0f;
    default: return x;
  }
}

typedef struct {
  const vswin_gemm_args *args;
  const gemm_isa *isa;
  long m_parts, n_parts, m_chunk, n_chunk;
  volatile int failed; /* a thread could not allocate its pack buffers */
} gemm_job;

static void gemm_task(void *context, long index) {
  gemm_job *job = context;
  const vswin_gemm_args *g = job->args;
  const gemm_isa *isa = job->isa;
  const int mr = isa->mr, nr = isa->nr;
  long n_part = index % job->n_parts;
  long m_part = (index / job->n_parts) % job->m_parts;
  long batch = index / (job->n_parts * job->m_parts);
  long m0 = m_part * job->m_chunk, m1 = m0 + job->m_chunk < g->m ? m0 + job->m_chunk : g->m;
  long n0 = n_part * job->n_chunk, n1 = n0 + job->n_chunk < g->n ? n0 + job->n_chunk : g->n;
  if (m0 >= m1 || n0 >= n1) return;

  const float *a = g->a + batch * g->a_batch;
  const float *b = g->b + batch * g->b_batch;
  float *c = g->c + batch * g->m * g->n;
  const long ldc = g->n;

  if (g->k == 0) {
    for (long i = m0; i < m1; i++) memset(c + i * ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
  } else {
    float *pack_a_area = thread_buffer(&pack_a_buffer, (size_t)KC * 256);
    float *pack_b_area = thread_buffer(&pack_b_buffer, (size_t)KC * 2048);
    if (!pack_a_area || !pack_b_area) {
      job->failed = 1;
      return;
    }
    float tile[MAX_MR * MAX_NR] __attribute__((aligned(64)));
    /* A row bias (linear layers) without activation is added by the micro-kernel as full tiles are
     * stored; ragged tiles, other bias layouts and activations use the pass after the loops. */
    const float *row_bias = g->bias && g->bias_row == 0 && g->bias_col == 1 && g->activation == VSWIN_LINEAR
                                ? g->bias + batch * g->bias_batch
                                : NULL;
    for (long jc = n0; jc < n1; jc += isa->nc) {
      long nc = n1 - jc < isa->nc ? n1 - jc : isa->nc;
      for (long pc = 0; pc < g->k; pc += KC) {
        long kc = g->k - pc < KC ? g->k - pc : KC;
        int accumulate = pc > 0;
        const float *last_bias = pc + kc >= g->k ? row_bias : NULL;
        pack_b(kc, nc, b + pc * g->b_row + jc * g->b_col, g->b_row, g->b_col, pack_b_area, nr);
        for (long ic = m0; ic < m1; ic += isa->mc) {
          long mc = m1 - ic < isa->mc ? m1 - ic : isa->mc;
          pack_a(mc, kc, a + ic * g->a_row + pc * g->a_col, g->a_row, g->a_col, pack_a_area, mr);
          for (long jr = 0; jr < nc; jr += nr) {
            long cols = nc - jr < nr ? nc - jr : nr;
            const float *b_panel = pack_b_area + (jr / nr) * nr * kc;
            for (long ir = 0; ir < mc; ir += mr) {
              long rows = mc - ir < mr ? mc - ir : mr;
              const float *a_panel = pack_a_area + (ir / mr) * mr * kc;
              float *target = c + (ic + ir) * ldc + jc + jr;
              if (rows == mr && cols == nr) {
                isa->kernel(kc, a_panel, b_panel, target, ldc, accumulate, last_bias ? last_bias + jc + jr : NULL);
              } else {
                /* Ragged edge: compute the full tile aside, then keep the valid part. */
                isa->kernel(kc, a_panel, b_panel, tile, nr, 0, NULL);
                for (long i = 0; i < rows; i++) {
                  float *dst = target + i * ldc;
                  const float *src = tile + i * nr;
                  if (accumulate) {
                    for (long j = 0; j < cols; j++) dst[j] += src[j];
                  } else {
                    for (long j = 0; j < cols; j++) dst[j] = src[j];
                  }
                  if (last_bias)
                    for (long j = 0; j < cols; j++) dst[j] += last_bias[jc + jr + j];
                }
              }
            }
          }
        }
      }
    }
  }

  int bias_done = g->k > 0 && g->bias && g->bias_row == 0 && g->bias_col == 1 && g->activation == VSWIN_LINEAR;
  if (!bias_done && (g->bias || g->activation != VSWIN_LINEAR)) {
    const float *bias = g->bias ? g->bias + batch * g->bias_batch : NULL;
    for (long i = m0; i < m1; i++) {
      float *row = c + i * ldc;
      if (bias) {
        const float *bias_row = bias + i * g->bias_row;
        if (g->bias_col == 1) {
          for (long j = n0; j < n1; j++) row[j] += bias_row[j];
        } else {
          for (long j = n0; j < n1; j++) row[j] += bias_row[j * g->bias_col];
        }
      }
      if (g->activation != VSWIN_LINEAR)
        for (long j = n0; j < n1; j++) row[j] = activate(row[j], g->activation, g->alpha);
    }
  }
}

static long round_up(long value, long multiple) { return (value + multiple - 1) / multiple * multiple; }

int vswin_gemm(const vswin_gemm_args *args) {
  if (args->batch <= 0 || args->m <= 0 || args->n <= 0) return 0;
  const gemm_isa *isa = current_isa();
#ifdef VSWIN_X86
  /* At small depth (attention scores, K = head dim 32) the 6x16 AVX2 tile measured faster than
   * the 14x32 AVX-512 one: less C traffic per tile and less ragged-edge waste. */
  if (!isa_forced && isa == &isa_avx512 && args->k <= 64) isa = &isa_avx2;
#endif
  int threads = vswin_thread_count();
  double flops = 2.0 * (double)args->batch * (double)args->m * (double)args->n * (double)(args->k > 0 ? args->k : 1);
  if (flops < 4.0e5) threads = 1;

  gemm_job job = {args, isa, 1, 1, args->m, args->n, 0};
  /* Whole matrices per task when the batch alone keeps every thread busy and balanced; otherwise
   * split rows (each task then packs its own copy of B, which costs k*n against 2*m*k*n/threads
   * flops), and split columns when there are too few rows to share. */
  if (threads > 1 && (args->batch < threads || (args->batch % threads != 0 && args->batch < 8 * threads))) {
    long m_parts = threads;
    long max_m_parts = (args->m + isa->mr - 1) / isa->mr;
    if (m_parts > max_m_parts) m_parts = max_m_parts;
    job.m_chunk = round_up((args->m + m_parts - 1) / m_parts, isa->mr);
    job.m_parts = (args->m + job.m_chunk - 1) / job.m_chunk;
    if (job.m_parts < threads) {
      long n_parts = threads / job.m_parts;
      long max_n_parts = (args->n + isa->nr - 1) / isa->nr;
      if (n_parts > max_n_parts) n_parts = max_n_parts;
      job.n_chunk = round_up((args->n + n_parts - 1) / n_parts, isa->nr);
      job.n_parts = (args->n + job.n_chunk - 1) / job.n_chunk;
    }
  }
  long tasks = args->batch * job.m_parts * job.n_parts;
  if (threads == 1) {
    vswin_fp_state state = vswin_fp_enter();
    for (long i = 0; i < tasks; i++) gemm_task(&job, i);
    vswin_fp_leave(state);
  } else {
    vswin_parallel(tasks, gemm_task, &job);
  }
  return job.failed ? -1 : 0;
}

int vswin_gemm_serial(const vswin_gemm_args *args) {
  if (args->batch <= 0 || args->m <= 0 || args->n <= 0) return 0;
  const gemm_isa *isa = current_isa();
#ifdef VSWIN_X86
  if (!isa_forced && isa == &isa_avx512 && args->k <= 64) isa = &isa_avx2;
#endif
  gemm_job job = {args, isa, 1, 1, args->m, args->n, 0};
  for (long i = 0; i < args->batch; i++) gemm_task(&job, i);
  return job.failed ? -1 : 0;
}
