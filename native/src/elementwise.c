/* Memory-bound kernels: strided copies (Transpose, Slice, StridedSlice), broadcast binary ops,
 * Erf and Softmax. Work is split into tasks of at least ~16K elements so the pool's wake-up cost
 * stays small against the copy itself. */
#define _GNU_SOURCE
#include "vswin.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

/* Run-time dispatched clones of the arithmetic loops (glibc ifunc): the compiler vectorises the
 * same C for AVX-512, AVX2 and the baseline. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define VSWIN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VSWIN_CLONES
#endif

#define TASK_ELEMENTS 16384L

static long product(const long *shape, int from, int to) {
  long size = 1;
  for (int d = from; d < to; d++) size *= shape[d];
  return size;
}

/* Offsets of the row with linear index `row` over dims [0, dims), for up to two strided inputs. */
static void row_offsets(long row, int dims, const long *shape, const long *strides_a, const long *strides_b,
                        long *offset_a, long *offset_b) {
  long a = 0, b = 0;
  for (int d = dims - 1; d >= 0; d--) {
    long index = row % shape[d];
    row /= shape[d];
    a += index * strides_a[d];
    if (strides_b) b += index * strides_b[d];
  }
  *offset_a = a;
  if (offset_b) *offset_b = b;
}

/* ---------------------------------------------------------------- strided copy */

typedef struct {
  const uint32_t *input;
  uint32_t *output;
  int rank;
  long shape[VSWIN_MAX_RANK];
  long in_strides[VSWIN_MAX_RANK];
  long offset;
  long inner;          /* elements per row (last dim) */
  long rows_per_task;  /* rows handled by one task */
  long rows;
  /* Blocked-transpose case: dim `unit` has input stride 1 and is not the last. */
  int unit;
  long unit_chunk;
  long unit_parts;
  long outer_count;    /* rows over the dims other than `unit` and the last */
  long outer_shape[VSWIN_MAX_RANK];
  long outer_in[VSWIN_MAX_RANK];
  long outer_out[VSWIN_MAX_RANK];
  int outer_rank;
} copy_job;

static void copy_rows_task(void *context, long index) {
  const copy_job *job = context;
  long first = index * job->rows_per_task;
  long last = first + job->rows_per_task < job->rows ? first + job->rows_per_task : job->rows;
  int dims = job->rank - 1;
  long in_offset;
  row_offsets(first, dims, job->shape, job->in_strides, NULL, &in_offset, NULL);
  long counter[VSWIN_MAX_RANK];
  long rest = first;
  for (int d = dims - 1; d >= 0; d--) {
    counter[d] = rest % job->shape[d];
    rest /= job->shape[d];
  }
  const long inner = job->inner, step = job->in_strides[job->rank - 1];
  for (long row = first; row < last; row++) {
    const uint32_t *src = job->input + job->offset + in_offset;
    uint32_t *dst = job->output + row * inner;
    if (step == 1) {
      memcpy(dst, src, (size_t)inner * sizeof(uint32_t));
    } else {
      for (long i = 0; i < inner; i++) dst[i] = src[i * step];
    }
    for (int d = dims - 1; d >= 0; d--) {
      in_offset += job->in_strides[d];
      if (++counter[d] < job->shape[d]) break;
      in_offset -= counter[d] * job->in_strides[d];
      counter[d] = 0;
    }
  }
}

#define TILE 16
static void copy_transpose_task(void *context, long index) {
  const copy_job *job = context;
  long part = index % job->unit_parts;
  long outer = index / job->unit_parts;
  long in_offset, out_offset;
  row_offsets(outer, job->outer_rank, job->outer_shape, job->outer_in, job->outer_out, &in_offset, &out_offset);
  const int last = job->rank - 1;
  const long unit_size = job->shape[job->unit];
  const long unit_out = product(job->shape, job->unit + 1, job->rank);
  const long last_size = job->shape[last], last_in = job->in_strides[last];
  long u0 = part * job->unit_chunk;
  long u1 = u0 + job->unit_chunk < unit_size ? u0 + job->unit_chunk : unit_size;
  const uint32_t *src = job->input + job->offset + in_offset;
  uint32_t *dst = job->output + out_offset;
  for (long lb = 0; lb < last_size; lb += TILE) {
    long le = lb + TILE < last_size ? lb + TILE : last_size;
    for (long ub = u0; ub < u1; ub += TILE) {
      long ue = ub + TILE < u1 ? ub + TILE : u1;
      for (long u = ub; u < ue; u++) {
        uint32_t *out_row = dst + u * unit_out;
        const uint32_t *in_column = src + u;
        for (long l = lb; l < le; l++) out_row[l] = in_column[l * last_in];
      }
    }
  }
}

void vswin_strided_copy(const uint32_t *input, uint32_t *output, int rank, const long *shape,
                        const long *in_strides, long offset) {
  if (rank == 0) {
    output[0] = input[offset];
    return;
  }
  copy_job job;
  memset(&job, 0, sizeof job);
  job.input = input;
  job.output = output;
  job.rank = rank;
  job.offset = offset;
  memcpy(job.shape, shape, (size_t)rank * sizeof(long));
  memcpy(job.in_strides, in_strides, (size_t)rank * sizeof(long));
  long total = product(shape, 0, rank);
  if (total == 0) return;
  const int last = rank - 1;

  int unit = -1;
  if (in_strides[last] != 1 && shape[last] > 1) {
    for (int d = 0; d < last; d++)
      if (in_strides[d] == 1 && shape[d] > 1) unit = d;
  }
  if (unit >= 0 && shape[unit] >= 4) {
    job.unit = unit;
    long out_strides[VSWIN_MAX_RANK];
    for (int d = 0; d < rank; d++) out_strides[d] = product(shape, d + 1, rank);
    for (int d = 0; d < last; d++) {
      if (d == unit) continue;
      job.outer_shape[job.outer_rank] = shape[d];
      job.outer_in[job.outer_rank] = in_strides[d];
      job.outer_out[job.outer_rank] = out_strides[d];
      job.outer_rank++;
    }
    job.outer_count = product(job.outer_shape, 0, job.outer_rank);
    long block = shape[unit] * shape[last];
    long parts = 1;
    if (block > TASK_ELEMENTS) parts = block / TASK_ELEMENTS;
    if (parts > shape[unit] / TILE) parts = shape[unit] / TILE > 0 ? shape[unit] / TILE : 1;
    job.unit_chunk = (shape[unit] + parts - 1) / parts;
    job.unit_parts = (shape[unit] + job.unit_chunk - 1) / job.unit_chunk;
    long tasks = job.outer_count * job.unit_parts;
    if (total < 2 * TASK_ELEMENTS) {
      vswin_fp_state state = vswin_fp_enter();
      for (long i = 0; i < tasks; i++) copy_transpose_task(&job, i);
      vswin_fp_leave(state);
    } else {
      vswin_parallel(tasks, copy_transpose_task, &job);
    }
    return;
  }

  job.inner = shape[last];
  job.rows = total / job.inner;
  job.rows_per_task = TASK_ELEMENTS / job.inner > 0 ? TASK_ELEMENTS / job.inner : 1;
  long tasks = (job.rows + job.rows_per_task - 1) / job.rows_per_task;
  if (tasks == 1) {
    copy_rows_task(&job, 0);
  } else {
    vswin_parallel(tasks, copy_rows_task, &job);
  }
}

/* ---------------------------------------------------------------- gather */

typedef struct {
  const uint32_t *x;
  const int32_t *indices;
  uint32_t *out;
  long outer, dim, slice, count, per_task, parts;
} gather_job;

static void gather_task(void *context, long index) {
  const gather_job *job = context;
  long part = index % job->parts;
  long row = index / job->parts; /* (batch, outer) pair */
  long batch = row / job->outer;
  long first = part * job->per_task;
  long last = first + job->per_task < job->count ? first + job->per_task : job->count;
  const int32_t *indices = job->indices + batch * job->count;
  const uint32_t *source = job->x + row * job->dim * job->slice;
  uint32_t *target = job->out + (row * job->count) * job->slice;
  for (long j = first; j < last; j++)
    memcpy(target + j * job->slice, source + (long)indices[j] * job->slice, (size_t)job->slice * sizeof(uint32_t));
}

long vswin_gather(const uint32_t *x, const int32_t *indices, uint32_t *out, long batch, long outer, long dim,
                  long slice, long count) {
  for (long i = 0; i < batch * count; i++)
    if (indices[i] < 0 || indices[i] >= dim) return i;
  if (batch * outer * count * slice == 0) return -1;
  gather_job job = {x, indices, out, outer, dim, slice, count, 0, 0};
  job.per_task = TASK_ELEMENTS / slice > 0 ? TASK_ELEMENTS / slice : 1;
  if (job.per_task > count) job.per_task = count;
  job.parts = (count + job.per_task - 1) / job.per_task;
  vswin_parallel(batch * outer * job.parts, gather_task, &job);
  return -1;
}

/* ---------------------------------------------------------------- binary ops */

typedef struct {
  int op;
  const float *a, *b;
  float *out;
  int rank;
  long shape[VSWIN_MAX_RANK], a_strides[VSWIN_MAX_RANK], b_strides[VSWIN_MAX_RANK];
  long inner, rows, rows_per_task, inner_chunk, inner_parts;
} binary_job;

#define BINARY_LOOP(EXPR)                                                              \
  do {                                                                                \
    if (sa == 1 && sb == 1) {                                                         \
      for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); }     \
    } else if (sa == 1 && sb == 0) {                                                  \
      float y = b[0];                                                                 \
      for (long i = 0; i < n; i++) { float x = a[i]; out[i] = (EXPR); }               \
    } else if (sa == 0 && sb == 1) {                                                  \
      float x = a[0];                                                                 \
      for (long i = 0; i < n; i++) { float y = b[i]; out[i] = (EXPR); }               \
    } else {                                                                          \
      for (long i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; out[i] = (EXPR); } \
    }                                                                                 \
  } while (0)

VSWIN_CLONES static void binary_span(int op, const float *restrict a, long sa, const float *restrict b, long sb,
                                     float *restrict out, long n) {
  switch (op) {
    case VSWIN_ADD: BINARY_LOOP(x + y); break;
    case VSWIN_SUB: BINARY_LOOP(x - y); break;
    case VSWIN_MUL: BINARY_LOOP(x * y); break;
    default: BINARY_LOOP(x / y); break;
  }
}

static void binary_task(void *context, long index) {
  const binary_job *job = context;
  const int dims = job->rank - 1;
  const long sa = job->a_strides[dims], sb = job->b_strides[dims];
  long first, last, start = 0, end = job->inner;
  if (job->inner_parts > 1) {
    first = index / job->inner_parts;
    last = first + 1;
    start = (index % job->inner_parts) * job->inner_chunk;
    end = start + job->inner_chunk < job->inner ? start + job->inner_chunk : job->inner;
  } else {
    first = index * job->rows_per_task;
    last = first + job->rows_per_task < job->rows ? first + job->rows_per_task : job->rows;
  }
  for (long row = first; row < last; row++) {
    long offset_a, offset_b;
    row_offsets(row, dims, job->shape, job->a_strides, job->b_strides, &offset_a, &offset_b);
    binary_span(job->op, job->a + offset_a + start * sa, sa, job->b + offset_b + start * sb, sb,
                job->out + row * job->inner + start, end - start);
  }
}

void vswin_binary(int op, const float *a, const float *b, float *out, int rank, const long *shape,
                  const long *a_strides, const long *b_strides) {
  binary_job job;
  memset(&job, 0, sizeof job);
  job.op = op;
  job.a = a;
  job.b = b;
  job.out = out;
  if (rank == 0) {
    job.rank = 1;
    job.shape[0] = 1;
  } else {
    job.rank = rank;
    memcpy(job.shape, shape, (size_t)rank * sizeof(long));
    memcpy(job.a_strides, a_strides, (size_t)rank * sizeof(long));
    memcpy(job.b_strides, b_strides, (size_t)rank * sizeof(long));
  }
  long total = product(job.shape, 0, job.rank);
  if (total == 0) return;
  job.inner = job.shape[job.rank - 1];
  job.rows = total / job.inner;
  long tasks;
  if (job.inner > 4 * TASK_ELEMENTS) {
    job.inner_chunk = 2 * TASK_ELEMENTS;
    job.inner_parts = (job.inner + job.inner_chunk - 1) / job.inner_chunk;
    tasks = job.rows * job.inner_parts;
  } else {
    job.inner_parts = 1;
    job.rows_per_task = TASK_ELEMENTS / job.inner > 0 ? TASK_ELEMENTS / job.inner : 1;
    tasks = (job.rows + job.rows_per_task - 1) / job.rows_per_task;
  }
  vswin_parallel(tasks, binary_task, &job);
}

/* ---------------------------------------------------------------- Erf, Softmax */

/* exp for float without a libm call, so loops over it vectorise: Cody-Waite reduction to
 * |r| <= ln2/2 and a degree-6 Taylor polynomial (relative error ~2e-7); results below the
 * normal range return 0, which is what flush-to-zero would give anyway. */
static inline float exp_approx(float x) {
  const float clamped = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
  const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  float n = (clamped * 1.44269504088896341f + shifter) - shifter;
  float r = clamped - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  float result = p * scale;
  result = x < -87.0f ? 0.0f : result;
  result = x > 88.0f ? INFINITY : result;
  return result;
}

typedef struct {
  const float *input;
  float *output;
  long size, rows, cols, per_task;
} unary_job;

/* |x| < 1: the Maclaurin series x * sum((-x^2)^n / (n! (2n+1))) to n = 10 (truncation < 2e-8),
 * accurate in relative terms near 0 where 1 - (...) would cancel. |x| >= 1: Abramowitz & Stegun
 * 7.1.26 (absolute error <= 1.5e-7), the formula TensorFlow.js's own Erf kernels use. Both are
 * computed and one selected, so the loop vectorises. */
VSWIN_CLONES static void erf_span_portable(const float *input, float *output, long n) {
  for (long i = 0; i < n; i++) {
    float x = input[i];
    float ax = fabsf(x);
    float square = x * x;
    float series = 1.0f / 76204800.0f;            /* n = 10: 1 / (10! * 21) */
    series = series * square - 1.0f / 6894720.0f;  /* n = 9 */
    series = series * square + 1.0f / 685440.0f;   /* n = 8 */
    series = series * square - 1.0f / 75600.0f;    /* n = 7 */
    series = series * square + 1.0f / 9360.0f;     /* n = 6 */
    series = series * square - 1.0f / 1320.0f;     /* n = 5 */
    series = series * square + 1.0f / 216.0f;      /* n = 4 */
    series = series * square - 1.0f / 42.0f;       /* n = 3 */
    series = series * square + 1.0f / 10.0f;       /* n = 2 */
    series = series * square - 1.0f / 3.0f;        /* n = 1 */
    series = series * square + 1.0f;               /* n = 0 */
    float small = 1.1283791670955126f * x * series; /* 2 / sqrt(pi) */
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float large = 1.0f - poly * exp_approx(-square);
    large = x < 0.0f ? -large : large;
    output[i] = ax < 1.0f ? small : large;
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx512f"))) static inline __m512 exp_avx512(__m512 x);

__attribute__((target("avx512f"))) static void erf_span_avx512(const float *input, float *output, long n) {
  static const float series[11] = {1.0f / 76204800.0f, -1.0f / 6894720.0f, 1.0f / 685440.0f, -1.0f / 75600.0f, 1.0f / 9360.0f,
                                   -1.0f / 1320.0f, 1.0f / 216.0f, -1.0f / 42.0f, 1.0f / 10.0f, -1.0f / 3.0f, 1.0f};
  for (long i = 0; i < n; i += 16) {
    __mmask16 live = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
    __m512 x = _mm512_maskz_loadu_ps(live, input + i);
    __m512 ax = _mm512_abs_ps(x);
    __m512 square = _mm512_mul_ps(x, x);
    __m512 poly_small = _mm512_set1_ps(series[0]);
    for (int c = 1; c < 11; c++) poly_small = _mm512_fmadd_ps(poly_small, square, _mm512_set1_ps(series[c]));
    __m512 small = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(1.1283791670955126f), x), poly_small);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
    __m512 poly = _mm512_fmadd_ps(_mm512_set1_ps(1.061405429f), t, _mm512_set1_ps(-1.453152027f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421413741f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284496736f));
    poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254829592f));
    poly = _mm512_mul_ps(poly, t);
    __m512 large = _mm512_fnmadd_ps(poly, exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), square)), _mm512_set1_ps(1.0f));
    /* copy the sign of x onto large */
    large = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(large),
                                                _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
    __m512 result = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(1.0f), _CMP_LT_OQ), large, small);
    /* NaN stays NaN */
    result = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), result, x);
    _mm512_mask_storeu_ps(output + i, live, result);
  }
}
#endif

static void erf_span(const float *input, float *output, long n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (vswin_isa_is_avx512()) {
    erf_span_avx512(input, output, n);
    return;
  }
#endif
  erf_span_portable(input, output, n);
}

static void erf_task(void *context, long index) {
  const unary_job *job = context;
  long start = index * job->per_task;
  long end = start + job->per_task < job->size ? start + job->per_task : job->size;
  erf_span(job->input + start, job->output + start, end - start);
}

/* GELU reuses the vectorised erf on a task-sized chunk, then combines in the same cache lines. */
typedef struct {
  const float *x, *dy;
  float *out;
  long size;
} gelu_job;

static void gelu_task(void *context, long index) {
  const gelu_job *job = context;
  long start = index * 2 * TASK_ELEMENTS;
  long end = start + 2 * TASK_ELEMENTS < job->size ? start + 2 * TASK_ELEMENTS : job->size;
  float scaled[256];
  for (long i = start; i < end; i += 256) {
    long n = end - i < 256 ? end - i : 256;
    for (long j = 0; j < n; j++) scaled[j] = job->x[i + j] * 0.70710678118654752f;
    erf_span(scaled, scaled, n); /* erf(x / sqrt 2) */
    if (job->dy) {
      for (long j = 0; j < n; j++) {
        float x = job->x[i + j];
        float cdf = 0.5f * (1.0f + scaled[j]);
        float pdf = exp_approx(-0.5f * x * x) * 0.3989422804014327f;
        job->out[i + j] = job->dy[i + j] * (cdf + x * pdf);
      }
    } else {
      for (long j = 0; j < n; j++) job->out[i + j] = 0.5f * job->x[i + j] * (1.0f + scaled[j]);
    }
  }
}

void vswin_gelu(const float *input, float *output, long size) {
  if (size <= 0) return;
  gelu_job job = {input, NULL, output, size};
  vswin_parallel((size + 2 * TASK_ELEMENTS - 1) / (2 * TASK_ELEMENTS), gelu_task, &job);
}

void vswin_gelu_grad(const float *dy, const float *x, float *dx, long size) {
  if (size <= 0) return;
  gelu_job job = {x, dy, dx, size};
  vswin_parallel((size + 2 * TASK_ELEMENTS - 1) / (2 * TASK_ELEMENTS), gelu_task, &job);
}

void vswin_erf(const float *input, float *output, long size) {
  if (size <= 0) return;
  unary_job job = {input, output, size, 0, 0, 2 * TASK_ELEMENTS};
  vswin_parallel((size + job.per_task - 1) / job.per_task, erf_task, &job);
}

#define LANES 16
/* Portable row softmax; lane-wise partial reductions vectorise without reassociation flags. */
static void softmax_row_portable(const float *x, float *y, long n) {
  float lane[LANES];
  for (int l = 0; l < LANES; l++) lane[l] = -INFINITY;
  long i = 0;
  /* `v != v` keeps a NaN once seen: NaN anywhere makes the whole row NaN, as in TensorFlow. */
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; l++) {
      float v = x[i + l];
      lane[l] = (v > lane[l] || v != v) ? v : lane[l];
    }
  float maximum = -INFINITY;
  for (int l = 0; l < LANES; l++) maximum = (lane[l] > maximum || lane[l] != lane[l]) ? lane[l] : maximum;
  for (; i < n; i++) maximum = (x[i] > maximum || x[i] != x[i]) ? x[i] : maximum;

  for (int l = 0; l < LANES; l++) lane[l] = 0.0f;
  for (i = 0; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; l++) {
      float e = exp_approx(x[i + l] - maximum);
      y[i + l] = e;
      lane[l] += e;
    }
  float sum = 0.0f;
  for (int l = 0; l < LANES; l++) sum += lane[l];
  for (; i < n; i++) {
    float e = exp_approx(x[i] - maximum);
    y[i] = e;
    sum += e;
  }
  float inverse = 1.0f / sum;
  for (i = 0; i < n; i++) y[i] *= inverse;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The compiler does not turn the portable loops into max/fma vector code on its own (measured
 * 4-10x slower), so the x86 row softmax is written with intrinsics: same exp_approx formula. */
__attribute__((target("avx512f"))) static inline __m512 exp_avx512(__m512 x) {
  __m512 clamped = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), clamped);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  __m512 result = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
  result = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ), result, _mm512_setzero_ps());
  result = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(88.0f), _CMP_GT_OQ), result, _mm512_set1_ps(INFINITY));
  /* NaN in, NaN out (the clamps above would have replaced it). */
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), result, x);
}

__attribute__((target("avx512f"))) static void softmax_row_avx512(const float *x, float *y, long n) {
  __m512 maximum = _mm512_set1_ps(-INFINITY);
  __mmask16 nan = 0;
  long i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    maximum = _mm512_max_ps(maximum, v);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  if (i < n) {
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    __m512 v = _mm512_maskz_loadu_ps(tail, x + i);
    maximum = _mm512_mask_max_ps(maximum, tail, maximum, v);
    nan |= _mm512_mask_cmp_ps_mask(tail, v, v, _CMP_UNORD_Q);
  }
  float top = nan ? NAN : _mm512_reduce_max_ps(maximum);
  __m512 shift = _mm512_set1_ps(top);
  __m512 sum = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), shift));
    _mm512_storeu_ps(y + i, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (i < n) {
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), shift));
    _mm512_mask_storeu_ps(y + i, tail, e);
    sum = _mm512_mask_add_ps(sum, tail, sum, e);
  }
  __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inverse));
  if (i < n) {
    __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + i), inverse));
  }
}

/* AVX2+FMA versions for CPUs without AVX-512 (most AMD and client Intel parts). */
__attribute__((target("avx2,fma"))) static inline __m256 exp_avx2(__m256 x) {
  __m256 clamped = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ));
  result = _mm256_blendv_ps(result, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
  return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma"))) static float reduce_max_avx2(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma"))) static float reduce_add_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static void softmax_row_avx2(const float *x, float *y, long n) {
  __m256 maximum = _mm256_set1_ps(-INFINITY);
  __m256 nan = _mm256_setzero_ps();
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    maximum = _mm256_max_ps(maximum, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  float top = reduce_max_avx2(maximum);
  int has_nan = _mm256_movemask_ps(nan) != 0;
  for (long j = i; j < n; j++) {
    if (x[j] != x[j]) has_nan = 1;
    top = x[j] > top ? x[j] : top;
  }
  if (has_nan) top = NAN;
  __m256 shift = _mm256_set1_ps(top);
  __m256 sum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
    _mm256_storeu_ps(y + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  float total = reduce_add_avx2(sum);
  for (; i < n; i++) {
    float e = exp_approx(x[i] - top);
    y[i] = e;
    total += e;
  }
  __m256 inverse = _mm256_set1_ps(1.0f / total);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inverse));
  for (; i < n; i++) y[i] *= 1.0f / total;
}
#endif

static void softmax_row(const float *x, float *y, long n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (vswin_isa_is_avx512()) {
    softmax_row_avx512(x, y, n);
    return;
  }
  if (vswin_isa_is_avx2()) {
    softmax_row_avx2(x, y, n);
    return;
  }
#endif
  softmax_row_portable(x, y, n);
}

void vswin_softmax_rows_serial(float *rows_data, long rows, long cols) {
  for (long row = 0; row < rows; row++) softmax_row(rows_data + row * cols, rows_data + row * cols, cols);
}

static void softmax_task(void *context, long index) {
  const unary_job *job = context;
  long first = index * job->per_task;
  long last = first + job->per_task < job->rows ? first + job->per_task : job->rows;
  for (long row = first; row < last; row++)
    softmax_row(job->input + row * job->cols, job->output + row * job->cols, job->cols);
}

void vswin_softmax(const float *input, float *output, long rows, long cols) {
  if (rows <= 0 || cols <= 0) return;
  long per_task = TASK_ELEMENTS / cols > 0 ? TASK_ELEMENTS / cols : 1;
  unary_job job = {input, output, rows * cols, rows, cols, per_task};
  vswin_parallel((rows + per_task - 1) / per_task, softmax_task, &job);
}
