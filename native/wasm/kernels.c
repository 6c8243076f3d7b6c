/* WebAssembly SIMD kernels for the wasm tier. Freestanding (no libc) and stack-free by design: the
 * module imports a memory it does not own (TensorFlow.js's own wasm memory, or the tier's shared
 * memory when it runs worker threads) and works on tensors in place, so it must never write
 * anywhere but the outputs and the scratch block JS hands it (no data segments, no shadow stack,
 * no address-taken locals; check-wasm.mjs checks the first two in the binary). The same source is
 * built twice by build-wasm.sh: kernels.wasm (plain memory import) and kernels-threads.wasm
 * (shared memory import, atomics), whose `run` export lets several threads share one job.
 * Same packing scheme as the native GEMM (see ../src/gemm.c): A in MR-tall and B in NR-wide
 * k-major panels, transposes as strides, one register tile for NN/NT/TN/TT. */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define KC 256
#define MC 128
#define NC 1024
/* The register tile, MR rows x NR columns of C. V8 gives wasm SIMD 15 usable registers and no
 * FMA; tiles that spill accumulators lose. Measured on one thread (1024^3, 3136x96x288, the
 * attention's 392x32x392 NT and 392x392x32), GFLOP/s: 2x16 41-43, 4x8 37-43, 3x12 36-41,
 * 3x16 34-37, 4x32 (the previous tile, 32 accumulators) 29-33, 8x4 28-33. */
#ifndef MR
#define MR 2
#endif
#ifndef NR
#define NR 16
#endif
/* Scratch layout (floats): packed A panel block, packed B panel block, one ragged-edge tile. */
#define TILE_OFFSET (KC * MC + KC * NC)
#define SCRATCH_FLOATS (TILE_OFFSET + MR * NR)

EXPORT(scratch_bytes) int scratch_bytes(void) { return SCRATCH_FLOATS * 4; }

/* C[MR x NR] (+)= A panel (k-major, MR per step) x B panel (k-major, NR per step). */
static void kernel(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  v128_t acc[MR][NR / 4];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR / 4; j++) acc[i][j] = wasm_f32x4_splat(0);
  for (int p = 0; p < kc; p++) {
    v128_t bv[NR / 4];
    for (int j = 0; j < NR / 4; j++) bv[j] = wasm_v128_load(b + 4 * j);
    for (int i = 0; i < MR; i++) {
      v128_t ai = wasm_f32x4_splat(a[i]);
      for (int j = 0; j < NR / 4; j++) acc[i][j] = wasm_f32x4_add(acc[i][j], wasm_f32x4_mul(ai, bv[j]));
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; i++) {
    float *row = c + i * ldc;
    for (int j = 0; j < NR / 4; j++) {
      v128_t value = acc[i][j];
      if (accumulate) value = wasm_f32x4_add(value, wasm_v128_load(row + 4 * j));
      wasm_v128_store(row + 4 * j, value);
    }
  }
}

static void pack_a(int mc, int kc, const float *a, int row, int col, float *out) {
  for (int i0 = 0; i0 < mc; i0 += MR) {
    int rows = mc - i0 < MR ? mc - i0 : MR;
    const float *panel = a + i0 * row;
    for (int p = 0; p < kc; p++) {
      const float *src = panel + p * col;
      for (int i = 0; i < MR; i++) out[p * MR + i] = i < rows ? src[i * row] : 0.0f;
    }
    out += MR * kc;
  }
}

static void pack_b(int kc, int nc, const float *b, int row, int col, float *out) {
  for (int j0 = 0; j0 < nc; j0 += NR) {
    int cols = nc - j0 < NR ? nc - j0 : NR;
    const float *panel = b + j0 * col;
    if (col == 1 && cols == NR) {
      for (int p = 0; p < kc; p++)
        for (int j = 0; j < NR; j += 4) wasm_v128_store(out + p * NR + j, wasm_v128_load(panel + p * row + j));
    } else {
      for (int p = 0; p < kc; p++)
        for (int j = 0; j < NR; j++) out[p * NR + j] = j < cols ? panel[p * row + j * col] : 0.0f;
    }
    out += NR * kc;
  }
}

static float exp_approx(float x) {
  float clamped = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
  const float shifter = 12582912.0f;
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
  union { int32_t bits; float value; } scale = {((int32_t)n + 127) << 23};
  float result = p * scale.value;
  if (x < -87.0f) result = 0.0f;
  if (x > 88.0f) result = __builtin_inff();
  return result;
}

static float activate(float x, int activation, float alpha) {
  switch (activation) {
    case 1: return x > 0.0f ? x : 0.0f;
    case 2: return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case 3: return x < 0.0f ? alpha * x : x;
    case 4: return 1.0f / (1.0f + exp_approx(-x));
    case 5: return x > 0.0f ? x : exp_approx(x) - 1.0f;
    default: return x;
  }
}

/* C = A B (+ bias, activation) with C's rows ldc floats apart and batches m * ldc apart. */
static void gemm_ld(const float *a, const float *b, float *c, int ldc, const float *bias, int batch, int m, int n, int k,
                    int a_batch, int a_row, int a_col, int b_batch, int b_row, int b_col, int bias_batch, int bias_row,
                    int bias_col, int activation, float alpha, float *scratch) {
  float *packed_a = scratch;
  float *packed_b = scratch + KC * MC;
  for (int t = 0; t < batch; t++) {
    const float *at = a + t * a_batch;
    const float *bt = b + t * b_batch;
    float *ct = c + t * m * ldc;
    if (k == 0) {
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) ct[i * ldc + j] = 0.0f;
    }
    for (int jc = 0; jc < n && k > 0; jc += NC) {
      int nc = n - jc < NC ? n - jc : NC;
      for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC;
        pack_b(kc, nc, bt + pc * b_row + jc * b_col, b_row, b_col, packed_b);
        for (int ic = 0; ic < m; ic += MC) {
          int mc = m - ic < MC ? m - ic : MC;
          pack_a(mc, kc, at + ic * a_row + pc * a_col, a_row, a_col, packed_a);
          for (int jr = 0; jr < nc; jr += NR) {
            int cols = nc - jr < NR ? nc - jr : NR;
            for (int ir = 0; ir < mc; ir += MR) {
              int rows = mc - ir < MR ? mc - ir : MR;
              const float *ap = packed_a + (ir / MR) * MR * kc;
              const float *bp = packed_b + (jr / NR) * NR * kc;
              float *target = ct + (ic + ir) * ldc + jc + jr;
              if (rows == MR && cols == NR) {
                kernel(kc, ap, bp, target, ldc, pc > 0);
              } else {
                /* Ragged edge: the tile goes past both packed blocks. */
                float *tile = scratch + TILE_OFFSET;
                kernel(kc, ap, bp, tile, NR, 0);
                for (int i = 0; i < rows; i++)
                  for (int j = 0; j < cols; j++) {
                    float value = tile[i * NR + j];
                    target[i * ldc + j] = pc > 0 ? target[i * ldc + j] + value : value;
                  }
              }
            }
          }
        }
      }
    }
    if (bias || activation) {
      const float *bb = bias ? bias + t * bias_batch : 0;
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          float value = ct[i * ldc + j];
          if (bb) value += bb[i * bias_row + j * bias_col];
          ct[i * ldc + j] = activate(value, activation, alpha);
        }
    }
  }
}

/* Same parameters as the native gemm (vswin_gemm_args), flattened; addresses are byte offsets. */
EXPORT(gemm)
void gemm(const float *a, const float *b, float *c, const float *bias, int batch, int m, int n, int k,
          int a_batch, int a_row, int a_col, int b_batch, int b_row, int b_col, int bias_batch, int bias_row,
          int bias_col, int activation, float alpha, float *scratch) {
  gemm_ld(a, b, c, n, bias, batch, m, n, k, a_batch, a_row, a_col, b_batch, b_row, b_col, bias_batch, bias_row, bias_col,
          activation, alpha, scratch);
}

/* dst[i * cols + j] = src[i + j * step] for a rows x cols block: a transpose in 4 x 4 register
 * tiles, walked in 16 x 64 blocks so the source lines and the output rows stay in L1. Walking the
 * output row by row instead reads one element per cache line (0.06 Gelem/s on a 768 x 3072
 * weight, 10x slower). */
static void transpose_block(const uint32_t *src, uint32_t *dst, int rows, int cols, int step) {
  for (int j0 = 0; j0 < cols; j0 += 64) {
    const int j1 = cols - j0 < 64 ? cols : j0 + 64;
    for (int i0 = 0; i0 < rows; i0 += 16) {
      const int i1 = rows - i0 < 16 ? rows : i0 + 16;
      int i = i0;
      for (; i + 4 <= i1; i += 4) {
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
          const uint32_t *column = src + i + j * step;
          v128_t a = wasm_v128_load(column), b = wasm_v128_load(column + step);
          v128_t c = wasm_v128_load(column + 2 * step), d = wasm_v128_load(column + 3 * step);
          v128_t ab_low = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), ab_high = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
          v128_t cd_low = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), cd_high = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
          uint32_t *row = dst + i * cols + j;
          wasm_v128_store(row, wasm_i32x4_shuffle(ab_low, cd_low, 0, 1, 4, 5));
          wasm_v128_store(row + cols, wasm_i32x4_shuffle(ab_low, cd_low, 2, 3, 6, 7));
          wasm_v128_store(row + 2 * cols, wasm_i32x4_shuffle(ab_high, cd_high, 0, 1, 4, 5));
          wasm_v128_store(row + 3 * cols, wasm_i32x4_shuffle(ab_high, cd_high, 2, 3, 6, 7));
        }
        for (; j < j1; j++)
          for (int r = 0; r < 4; r++) dst[(i + r) * cols + j] = src[i + r + j * step];
      }
      for (; i < i1; i++)
        for (int j = j0; j < j1; j++) dst[i * cols + j] = src[i + j * step];
    }
  }
}

/* out (contiguous over shape) = input[offset + sum(i_d * strides[d])].
 * params = shape[rank], strides[rank], counter[rank] (zeroed by the caller; a local array would
 * live on a shadow stack in the host's memory). When the last dimension is strided and the one
 * before it is contiguous (a transpose of the two), each such 2-D slice is copied in tiles. */
EXPORT(strided_copy)
void strided_copy(const uint32_t *input, uint32_t *output, int rank, int offset, int32_t *params) {
  const int32_t *shape = params, *strides = params + rank;
  int32_t *counter = params + 2 * rank;
  if (rank == 0) {
    output[0] = input[offset];
    return;
  }
  const int tiled = rank >= 2 && strides[rank - 2] == 1 && strides[rank - 1] != 1 && shape[rank - 2] >= 4 && shape[rank - 1] >= 4;
  const int walked = tiled ? rank - 2 : rank - 1; /* dimensions walked by the counter */
  int inner = shape[rank - 1], step = strides[rank - 1];
  long rows = 1;
  for (int d = 0; d < walked; d++) rows *= shape[d];
  const uint32_t *src = input + offset;
  for (long row = 0; row < rows; row++) {
    if (tiled) {
      transpose_block(src, output, shape[rank - 2], inner, step);
      output += (long)shape[rank - 2] * inner;
    } else {
      if (step == 1 && inner <= 64) {
        /* short rows (a head's 32 channels): vector moves, memory.copy costs a call per row */
        int i = 0;
        for (; i + 4 <= inner; i += 4) wasm_v128_store(output + i, wasm_v128_load(src + i));
        for (; i < inner; i++) output[i] = src[i];
      } else if (step == 1) {
        __builtin_memcpy(output, src, (unsigned long)inner * 4);
      } else {
        for (int i = 0; i < inner; i++) output[i] = src[i * step];
      }
      output += inner;
    }
    for (int d = walked - 1; d >= 0; d--) {
      src += strides[d];
      if (++counter[d] < shape[d]) break;
      src -= (long)counter[d] * strides[d];
      counter[d] = 0;
    }
  }
}

/* out[b, o, j, :] = x[b, o, indices[b, j], :]; returns the first bad index position or -1. */
EXPORT(gather)
int gather(const uint32_t *x, const int32_t *indices, uint32_t *out, int batch, int outer, int dim, int slice, int count) {
  for (int i = 0; i < batch * count; i++)
    if (indices[i] < 0 || indices[i] >= dim) return i;
  for (int t = 0; t < batch; t++)
    for (int o = 0; o < outer; o++) {
      const uint32_t *source = x + (t * outer + o) * dim * slice;
      for (int j = 0; j < count; j++, out += slice)
        __builtin_memcpy(out, source + indices[t * count + j] * slice, (unsigned long)slice * 4);
    }
  return -1;
}

/* Broadcast binary op (0 add, 1 sub, 2 mul, 3 div) over a strided walk; out is contiguous.
 * params = shape[rank], a_strides[rank], b_strides[rank], counter[rank] (zeroed by the caller). */
#define BINARY_LOOP(EXPR)                                                                  \
  if (sa == 1 && sb == 1) {                                                               \
    for (int i = 0; i < inner; i++) { float x = pa[i], y = pb[i]; out[i] = (EXPR); }      \
  } else if (sb == 0) {                                                                   \
    float y = pb[0];                                                                      \
    for (int i = 0; i < inner; i++) { float x = pa[i * sa]; out[i] = (EXPR); }            \
  } else if (sa == 0) {                                                                   \
    float x = pa[0];                                                                      \
    for (int i = 0; i < inner; i++) { float y = pb[i * sb]; out[i] = (EXPR); }            \
  } else {                                                                                \
    for (int i = 0; i < inner; i++) { float x = pa[i * sa], y = pb[i * sb]; out[i] = (EXPR); } \
  }

EXPORT(binary)
void binary(int op, const float *a, const float *b, float *out, int rank, int32_t *params) {
  if (rank == 0) {
    float x = a[0], y = b[0];
    out[0] = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
    return;
  }
  const int32_t *shape = params, *as = params + rank, *bs = params + 2 * rank;
  int32_t *counter = params + 3 * rank;
  const int inner = shape[rank - 1], sa = as[rank - 1], sb = bs[rank - 1];
  long rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= shape[d];
  const float *pa = a, *pb = b;
  for (long row = 0; row < rows; row++) {
    switch (op) {
      case 0: BINARY_LOOP(x + y) break;
      case 1: BINARY_LOOP(x - y) break;
      case 2: BINARY_LOOP(x * y) break;
      default: BINARY_LOOP(x / y) break;
    }
    out += inner;
    for (int d = rank - 2; d >= 0; d--) {
      pa += as[d];
      pb += bs[d];
      if (++counter[d] < shape[d]) break;
      pa -= (long)counter[d] * as[d];
      pb -= (long)counter[d] * bs[d];
      counter[d] = 0;
    }
  }
}

/* ---------------------------------------------------------------- vector helpers */

#define SPLAT(x) wasm_f32x4_splat(x)

static inline float lane_sum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

static inline float lane_max(v128_t v) {
  v128_t pair = wasm_f32x4_max(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_f32x4_extract_lane(wasm_f32x4_max(pair, wasm_i32x4_shuffle(pair, pair, 1, 0, 3, 2)), 0);
}

/* exp_approx on four lanes: the same reduction and polynomial, so results match the scalar one
 * (round-to-nearest-even of x log2 e with the 1.5 * 2^23 shifter, Cody-Waite ln 2, degree-6
 * Taylor). pmin/pmax are single instructions (min/max with wasm's NaN rules are several); a NaN
 * still comes through, as the polynomial of NaN. */
static inline v128_t exp4(v128_t x) {
  const v128_t shifter = SPLAT(12582912.0f);
  v128_t clamped = wasm_f32x4_pmax(wasm_f32x4_pmin(x, SPLAT(88.0f)), SPLAT(-87.0f));
  v128_t shifted = wasm_f32x4_add(wasm_f32x4_mul(clamped, SPLAT(1.44269504088896341f)), shifter);
  v128_t n = wasm_f32x4_sub(shifted, shifter);
  v128_t r = wasm_f32x4_sub(clamped, wasm_f32x4_mul(n, SPLAT(0.693145751953125f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, SPLAT(1.428606765330187045e-06f)));
  v128_t p = SPLAT(1.0f / 720.0f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f / 120.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f / 24.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f / 6.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f));
  /* The shifter's bits are 0x4B400000 + n; shifted left by 23 only n + 127 (1..254) is left. */
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(shifted, wasm_i32x4_splat(127)), 23);
  v128_t result = wasm_f32x4_mul(p, scale);
  result = wasm_v128_andnot(result, wasm_f32x4_lt(x, SPLAT(-87.0f)));
  return wasm_v128_bitselect(SPLAT(__builtin_inff()), result, wasm_f32x4_gt(x, SPLAT(88.0f)));
}

/* exp4 for x <= 0 (and NaN), as softmax needs after subtracting the row maximum: no upper clamp. */
static inline v128_t exp4_nonpositive(v128_t x) {
  const v128_t shifter = SPLAT(12582912.0f);
  v128_t clamped = wasm_f32x4_pmax(x, SPLAT(-87.0f));
  v128_t shifted = wasm_f32x4_add(wasm_f32x4_mul(clamped, SPLAT(1.44269504088896341f)), shifter);
  v128_t n = wasm_f32x4_sub(shifted, shifter);
  v128_t r = wasm_f32x4_sub(clamped, wasm_f32x4_mul(n, SPLAT(0.693145751953125f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, SPLAT(1.428606765330187045e-06f)));
  v128_t p = SPLAT(1.0f / 720.0f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f / 120.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f / 24.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f / 6.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), SPLAT(1.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(shifted, wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(p, scale), wasm_f32x4_lt(x, SPLAT(-87.0f)));
}

/* erf as in the native tier (../src/elementwise.c): |x| < 1, the Maclaurin series to n = 10;
 * |x| >= 1, Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7); both computed, one selected. */
static inline v128_t erf4(v128_t x) {
  v128_t ax = wasm_f32x4_abs(x);
  v128_t square = wasm_f32x4_mul(x, x);
  v128_t series = SPLAT(1.0f / 76204800.0f);
  series = wasm_f32x4_sub(wasm_f32x4_mul(series, square), SPLAT(1.0f / 6894720.0f));
  series = wasm_f32x4_add(wasm_f32x4_mul(series, square), SPLAT(1.0f / 685440.0f));
  series = wasm_f32x4_sub(wasm_f32x4_mul(series, square), SPLAT(1.0f / 75600.0f));
  series = wasm_f32x4_add(wasm_f32x4_mul(series, square), SPLAT(1.0f / 9360.0f));
  series = wasm_f32x4_sub(wasm_f32x4_mul(series, square), SPLAT(1.0f / 1320.0f));
  series = wasm_f32x4_add(wasm_f32x4_mul(series, square), SPLAT(1.0f / 216.0f));
  series = wasm_f32x4_sub(wasm_f32x4_mul(series, square), SPLAT(1.0f / 42.0f));
  series = wasm_f32x4_add(wasm_f32x4_mul(series, square), SPLAT(1.0f / 10.0f));
  series = wasm_f32x4_sub(wasm_f32x4_mul(series, square), SPLAT(1.0f / 3.0f));
  series = wasm_f32x4_add(wasm_f32x4_mul(series, square), SPLAT(1.0f));
  v128_t small = wasm_f32x4_mul(wasm_f32x4_mul(SPLAT(1.1283791670955126f), x), series);
  v128_t t = wasm_f32x4_div(SPLAT(1.0f), wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(SPLAT(0.3275911f), ax)));
  v128_t poly = wasm_f32x4_sub(wasm_f32x4_mul(SPLAT(1.061405429f), t), SPLAT(1.453152027f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(1.421413741f));
  poly = wasm_f32x4_sub(wasm_f32x4_mul(poly, t), SPLAT(0.284496736f));
  poly = wasm_f32x4_add(wasm_f32x4_mul(poly, t), SPLAT(0.254829592f));
  poly = wasm_f32x4_mul(poly, t);
  v128_t large = wasm_f32x4_sub(SPLAT(1.0f), wasm_f32x4_mul(poly, exp4(wasm_f32x4_neg(square))));
  large = wasm_v128_or(large, wasm_v128_and(x, wasm_i32x4_splat((int32_t)0x80000000u)));
  return wasm_v128_bitselect(small, large, wasm_f32x4_lt(ax, SPLAT(1.0f)));
}

/* Loads / stores of the ragged end of an array: the lanes past `count` read as 0 and are not written. */
static inline v128_t load_part(const float *p, int count) {
  v128_t v = wasm_f32x4_splat(0.0f);
  if (count > 0) v = wasm_f32x4_replace_lane(v, 0, p[0]);
  if (count > 1) v = wasm_f32x4_replace_lane(v, 1, p[1]);
  if (count > 2) v = wasm_f32x4_replace_lane(v, 2, p[2]);
  return v;
}
static inline void store_part(float *p, v128_t v, int count) {
  if (count > 0) p[0] = wasm_f32x4_extract_lane(v, 0);
  if (count > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (count > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

/* ---------------------------------------------------------------- Erf, GELU */

EXPORT(erf)
void erf_kernel(const float *input, float *output, int size) {
  int i = 0;
  for (; i + 4 <= size; i += 4) wasm_v128_store(output + i, erf4(wasm_v128_load(input + i)));
  if (i < size) store_part(output + i, erf4(load_part(input + i, size - i)), size - i);
}

static inline v128_t gelu4(v128_t x) {
  v128_t e = erf4(wasm_f32x4_mul(x, SPLAT(0.70710678118654752f)));
  return wasm_f32x4_mul(wasm_f32x4_mul(SPLAT(0.5f), x), wasm_f32x4_add(SPLAT(1.0f), e));
}

static inline v128_t gelu_grad4(v128_t dy, v128_t x) {
  v128_t cdf = wasm_f32x4_mul(SPLAT(0.5f), wasm_f32x4_add(SPLAT(1.0f), erf4(wasm_f32x4_mul(x, SPLAT(0.70710678118654752f)))));
  v128_t pdf = wasm_f32x4_mul(exp4(wasm_f32x4_mul(wasm_f32x4_mul(SPLAT(-0.5f), x), x)), SPLAT(0.3989422804014327f));
  return wasm_f32x4_mul(dy, wasm_f32x4_add(cdf, wasm_f32x4_mul(x, pdf)));
}

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)). */
EXPORT(gelu)
void gelu(const float *x, float *y, int size) {
  int i = 0;
  for (; i + 4 <= size; i += 4) wasm_v128_store(y + i, gelu4(wasm_v128_load(x + i)));
  if (i < size) store_part(y + i, gelu4(load_part(x + i, size - i)), size - i);
}

/* dx = dy (Phi(x) + x phi(x)). */
EXPORT(gelu_grad)
void gelu_grad(const float *dy, const float *x, float *dx, int size) {
  int i = 0;
  for (; i + 4 <= size; i += 4) wasm_v128_store(dx + i, gelu_grad4(wasm_v128_load(dy + i), wasm_v128_load(x + i)));
  if (i < size) store_part(dx + i, gelu_grad4(load_part(dy + i, size - i), load_part(x + i, size - i)), size - i);
}

/* ---------------------------------------------------------------- Softmax rows (attention) */
/* No Softmax kernel of its own: measured on [1152,392,392], stock XNNPACK's takes 236-247 ms and
 * a softmax built on this row pass 311 ms, and neither leaves denormals behind. The attention
 * keeps its fused row pass (bias and mask added on the way, normalised after the product). */

/* y = exp(v - max v) for v = x + add1 + add2 over one row (add1, add2 may be 0; y may be x);
 * returns the row's sum. NaN anywhere makes the row NaN, as in TensorFlow. */
static float exp_row(const float *x, const float *add1, const float *add2, float *y, int n) {
  v128_t top4 = SPLAT(-__builtin_inff()), nan4 = wasm_i32x4_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    if (add1) {
      v = wasm_f32x4_add(v, add2 ? wasm_f32x4_add(wasm_v128_load(add1 + i), wasm_v128_load(add2 + i)) : wasm_v128_load(add1 + i));
      wasm_v128_store(y + i, v);
    }
    top4 = wasm_f32x4_pmax(top4, v);
    nan4 = wasm_v128_or(nan4, wasm_f32x4_ne(v, v));
  }
  float top = wasm_v128_any_true(nan4) ? __builtin_nanf("") : lane_max(top4);
  for (; i < n; i++) {
    float v = x[i];
    if (add1) {
      v += add2 ? add1[i] + add2[i] : add1[i];
      y[i] = v;
    }
    top = (v > top || v != v) ? v : top;
  }
  const float *biased = add1 ? y : x; /* x + add1 + add2, kept in y by the first pass */
  v128_t shift = SPLAT(top), sum4 = SPLAT(0.0f);
  for (i = 0; i + 4 <= n; i += 4) {
    v128_t e = exp4_nonpositive(wasm_f32x4_sub(wasm_v128_load(biased + i), shift));
    wasm_v128_store(y + i, e);
    sum4 = wasm_f32x4_add(sum4, e);
  }
  float sum = lane_sum(sum4);
  for (; i < n; i++) {
    float e = exp_approx(biased[i] - top);
    y[i] = e;
    sum += e;
  }
  return sum;
}

/* ---------------------------------------------------------------- LayerNorm */

/* y = (x - mean) rstd gamma + beta over rows of `cols`, biased variance (two passes); the row
 * mean and rstd are kept for the gradient. */
EXPORT(layer_norm)
void layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *mean_out, float *rstd_out,
                int rows, int cols, float eps) {
  for (int r = 0; r < rows; r++, x += cols, y += cols) {
    v128_t sum4 = SPLAT(0.0f);
    int c = 0;
    for (; c + 4 <= cols; c += 4) sum4 = wasm_f32x4_add(sum4, wasm_v128_load(x + c));
    float sum = lane_sum(sum4);
    for (; c < cols; c++) sum += x[c];
    const float mean = sum / (float)cols;
    v128_t mean4 = SPLAT(mean), squares4 = SPLAT(0.0f);
    for (c = 0; c + 4 <= cols; c += 4) {
      v128_t d = wasm_f32x4_sub(wasm_v128_load(x + c), mean4);
      squares4 = wasm_f32x4_add(squares4, wasm_f32x4_mul(d, d));
    }
    float squares = lane_sum(squares4);
    for (; c < cols; c++) squares += (x[c] - mean) * (x[c] - mean);
    const float rstd = 1.0f / __builtin_sqrtf(squares / (float)cols + eps);
    v128_t rstd4 = SPLAT(rstd);
    for (c = 0; c + 4 <= cols; c += 4) {
      v128_t normal = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + c), mean4), rstd4);
      wasm_v128_store(y + c, wasm_f32x4_add(wasm_f32x4_mul(normal, wasm_v128_load(gamma + c)), wasm_v128_load(beta + c)));
    }
    for (; c < cols; c++) y[c] = (x[c] - mean) * rstd * gamma[c] + beta[c];
    mean_out[r] = mean;
    rstd_out[r] = rstd;
  }
}

/* dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma; dgamma = sum over rows of
 * dy xhat, dbeta = sum of dy. */
EXPORT(layer_norm_grad)
void layer_norm_grad(const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd,
                     float *dx, float *dgamma, float *dbeta, int rows, int cols) {
  for (int c = 0; c < cols; c++) dgamma[c] = dbeta[c] = 0.0f;
  for (int r = 0; r < rows; r++, x += cols, dy += cols, dx += cols) {
    const float m = mean[r], s = rstd[r];
    v128_t m4 = SPLAT(m), s4 = SPLAT(s), sum_g4 = SPLAT(0.0f), sum_gx4 = SPLAT(0.0f);
    int c = 0;
    for (; c + 4 <= cols; c += 4) {
      v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + c), m4), s4);
      v128_t d = wasm_v128_load(dy + c);
      v128_t g = wasm_f32x4_mul(d, wasm_v128_load(gamma + c));
      sum_g4 = wasm_f32x4_add(sum_g4, g);
      sum_gx4 = wasm_f32x4_add(sum_gx4, wasm_f32x4_mul(g, xhat));
      wasm_v128_store(dgamma + c, wasm_f32x4_add(wasm_v128_load(dgamma + c), wasm_f32x4_mul(d, xhat)));
      wasm_v128_store(dbeta + c, wasm_f32x4_add(wasm_v128_load(dbeta + c), d));
    }
    float sum_g = lane_sum(sum_g4), sum_gx = lane_sum(sum_gx4);
    for (; c < cols; c++) {
      float xhat = (x[c] - m) * s, g = dy[c] * gamma[c];
      sum_g += g;
      sum_gx += g * xhat;
      dgamma[c] += dy[c] * xhat;
      dbeta[c] += dy[c];
    }
    const float mean_g = sum_g / (float)cols, mean_gx = sum_gx / (float)cols;
    v128_t mean_g4 = SPLAT(mean_g), mean_gx4 = SPLAT(mean_gx);
    for (c = 0; c + 4 <= cols; c += 4) {
      v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + c), m4), s4);
      v128_t g = wasm_f32x4_mul(wasm_v128_load(dy + c), wasm_v128_load(gamma + c));
      wasm_v128_store(dx + c, wasm_f32x4_mul(s4, wasm_f32x4_sub(wasm_f32x4_sub(g, mean_g4), wasm_f32x4_mul(xhat, mean_gx4))));
    }
    for (; c < cols; c++) {
      float xhat = (x[c] - m) * s;
      dx[c] = s * (dy[c] * gamma[c] - mean_g - xhat * mean_gx);
    }
  }
}

/* ---------------------------------------------------------------- AdamW */

/* One AdamW step in one pass (same arithmetic order as ../src/optimizer.c and core/train/adamw.ts);
 * exp_avg and exp_avg_sq are 0 (null) on the first step. */
EXPORT(adamw)
void adamw(const float *param, const float *grad, const float *exp_avg, const float *exp_avg_sq, float *out_param,
           float *out_exp_avg, float *out_exp_avg_sq, int size, float lr, float beta1, float beta2, float eps,
           float weight_decay, float correction1, float correction2_sqrt) {
  const float keep = 1.0f - lr * weight_decay, step = lr / correction1;
  const v128_t keep4 = SPLAT(keep), step4 = SPLAT(step), b1 = SPLAT(beta1), b2 = SPLAT(beta2);
  const v128_t rest1 = SPLAT(1.0f - beta1), rest2 = SPLAT(1.0f - beta2), c2 = SPLAT(correction2_sqrt), eps4 = SPLAT(eps);
  int i = 0;
  for (; i + 4 <= size; i += 4) {
    v128_t g = wasm_v128_load(grad + i);
    v128_t m = wasm_f32x4_mul(g, rest1);
    v128_t v = wasm_f32x4_mul(wasm_f32x4_mul(g, g), rest2);
    if (exp_avg) m = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(exp_avg + i), b1), m);
    if (exp_avg_sq) v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(exp_avg_sq + i), b2), v);
    v128_t denominator = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(v), c2), eps4);
    v128_t p = wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(param + i), keep4), wasm_f32x4_mul(wasm_f32x4_div(m, denominator), step4));
    wasm_v128_store(out_param + i, p);
    wasm_v128_store(out_exp_avg + i, m);
    wasm_v128_store(out_exp_avg_sq + i, v);
  }
  for (; i < size; i++) {
    float g = grad[i];
    float m = (exp_avg ? exp_avg[i] * beta1 : 0.0f) + g * (1.0f - beta1);
    float v = (exp_avg_sq ? exp_avg_sq[i] * beta2 : 0.0f) + g * g * (1.0f - beta2);
    float denominator = __builtin_sqrtf(v) / correction2_sqrt + eps;
    out_param[i] = param[i] * keep - (m / denominator) * step;
    out_exp_avg[i] = m;
    out_exp_avg_sq[i] = v;
  }
}

/* ---------------------------------------------------------------- jobs shared by threads */

/* A job is an int32 block: op, the next task to take, the task count, then the op's arguments
 * (addresses are byte offsets, alpha is a float's bits). Every thread calls run() on the same
 * job with its own scratch and takes tasks until none are left; without threads one call does
 * them all. core/engine/kernels/wasm-simd.ts writes the same layout. */
enum { JOB_OP, JOB_NEXT, JOB_TASKS, JOB_ARGS };
enum { OP_GEMM = 1, OP_ATTENTION = 2 };
/* GEMM arguments, after JOB_ARGS */
enum {
  G_A, G_B, G_C, G_BIAS, G_BATCH, G_M, G_N, G_K, G_A_BATCH, G_A_ROW, G_A_COL, G_B_BATCH, G_B_ROW, G_B_COL,
  G_BIAS_BATCH, G_BIAS_ROW, G_BIAS_COL, G_ACTIVATION, G_ALPHA, G_ROWS_PER_TASK, G_COLS_PER_TASK, G_ROW_BANDS, G_COL_BANDS
};
/* Window attention arguments, after JOB_ARGS */
enum { W_Q, W_K, W_V, W_BIAS, W_MASK, W_OUT, W_HEADS, W_N, W_DIM, W_WINDOWS };

#define JOB_WORDS (JOB_ARGS + 24)
EXPORT(job_words) int job_words(void) { return JOB_WORDS; }

/* Scratch of one thread for an attention job over n tokens: the GEMM's packing block, n x n scores, n row sums. */
EXPORT(attention_scratch_bytes) int attention_scratch_bytes(int n) { return (SCRATCH_FLOATS + n * n + n) * 4; }

static int take_task(int32_t *job) {
#ifdef __wasm_atomics__
  return __atomic_fetch_add(&job[JOB_NEXT], 1, __ATOMIC_RELAXED);
#else
  return job[JOB_NEXT]++;
#endif
}

/* One task: batch entry t, a band of rows and a band of columns of C (each task packs what it reads;
 * JS splits along the larger of m and n, so the operand every task repacks is the smaller one). */
static void gemm_task(const int32_t *g, int task, float *scratch) {
  const int bands = g[G_ROW_BANDS] * g[G_COL_BANDS], t = task / bands;
  const int row0 = (task % bands) / g[G_COL_BANDS] * g[G_ROWS_PER_TASK];
  const int col0 = (task % bands) % g[G_COL_BANDS] * g[G_COLS_PER_TASK];
  const int m = g[G_M], n = g[G_N];
  const int rows = m - row0 < g[G_ROWS_PER_TASK] ? m - row0 : g[G_ROWS_PER_TASK];
  const int cols = n - col0 < g[G_COLS_PER_TASK] ? n - col0 : g[G_COLS_PER_TASK];
  const float *a = (const float *)g[G_A] + t * g[G_A_BATCH] + row0 * g[G_A_ROW];
  const float *b = (const float *)g[G_B] + t * g[G_B_BATCH] + col0 * g[G_B_COL];
  float *c = (float *)g[G_C] + (t * m + row0) * n + col0;
  const float *bias = g[G_BIAS] ? (const float *)g[G_BIAS] + t * g[G_BIAS_BATCH] + row0 * g[G_BIAS_ROW] + col0 * g[G_BIAS_COL] : 0;
  union { int32_t bits; float value; } alpha = {g[G_ALPHA]};
  gemm_ld(a, b, c, n, bias, 1, rows, cols, g[G_K], 0, g[G_A_ROW], g[G_A_COL], 0, g[G_B_ROW], g[G_B_COL], 0, g[G_BIAS_ROW],
          g[G_BIAS_COL], g[G_ACTIVATION], alpha.value, scratch);
}

/* One (window, head) pair: scores = q kT + bias + mask in scratch, e = exp(scores - row max),
 * out = (e v) / row sums. Normalising the n x dim output instead of the n x n probabilities saves
 * a pass over the scores; e >= exp(-87) or 0, so no denormal ever reaches the second product. */
static void attention_task(const int32_t *w, int task, float *scratch) {
  const int heads = w[W_HEADS], n = w[W_N], dim = w[W_DIM];
  const int window = (task / heads) % w[W_WINDOWS], head = task % heads;
  const int offset = task * n * dim;
  float *scores = scratch + SCRATCH_FLOATS, *sums = scores + n * n;
  gemm((const float *)w[W_Q] + offset, (const float *)w[W_K] + offset, scores, 0, 1, n, n, dim, 0, dim, 1, 0, 1, dim,
       0, 0, 0, 0, 0.0f, scratch);
  const float *bias = (const float *)w[W_BIAS] + head * n * n;
  const float *mask = w[W_MASK] ? (const float *)w[W_MASK] + window * n * n : 0;
  for (int i = 0; i < n; i++) sums[i] = exp_row(scores + i * n, bias + i * n, mask ? mask + i * n : 0, scores + i * n, n);
  float *out = (float *)w[W_OUT] + offset;
  gemm(scores, (const float *)w[W_V] + offset, out, 0, 1, n, dim, n, 0, n, 1, 0, dim, 1, 0, 0, 0, 0, 0.0f, scratch);
  for (int i = 0; i < n; i++) {
    const float inverse = 1.0f / sums[i];
    const v128_t inverse4 = SPLAT(inverse);
    float *row = out + i * dim;
    int c = 0;
    for (; c + 4 <= dim; c += 4) wasm_v128_store(row + c, wasm_f32x4_mul(wasm_v128_load(row + c), inverse4));
    for (; c < dim; c++) row[c] *= inverse;
  }
}

EXPORT(run)
void run(int32_t *job, float *scratch) {
  const int tasks = job[JOB_TASKS], op = job[JOB_OP];
  for (int task = take_task(job); task < tasks; task = take_task(job)) {
    if (op == OP_GEMM) gemm_task(job + JOB_ARGS, task, scratch);
    else if (op == OP_ATTENTION) attention_task(job + JOB_ARGS, task, scratch);
  }
}
