/* WebAssembly SIMD kernels for the wasm tier. Freestanding (no libc) and stack-free by design: the
 * module imports TensorFlow.js's own wasm memory and works on tensors in place, so it must never
 * write anywhere but the output and the scratch block JS hands it (no data segments, no shadow
 * stack, no address-taken locals; build-wasm.sh checks the first two in the binary).
 * Same packing scheme as the native GEMM (see ../src/gemm.c): A in MR-tall and B in NR-wide
 * k-major panels, transposes as strides, one register tile for NN/NT/TN/TT. */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define KC 256
#define MC 128
#define NC 1024
#define MR 4
#ifndef NR
#define NR 32
#endif
/* Scratch layout (floats): packed A panel block, packed B panel block, one ragged-edge tile. */
#define TILE_OFFSET (KC * MC + KC * NC)
#define SCRATCH_FLOATS (TILE_OFFSET + MR * NR)

EXPORT(scratch_bytes) int scratch_bytes(void) { return SCRATCH_FLOATS * 4; }

#if NR == 32
/* 4 x 32: 32 accumulators. V8 has 16 SIMD registers, so some live in spill slots, yet this tile
 * measured fastest (fewer B reloads per FMA than 4 x 16). */
static void kernel(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  v128_t acc[MR][8];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < 8; j++) acc[i][j] = wasm_f32x4_splat(0);
  for (int p = 0; p < kc; p++) {
    v128_t bv[8];
    for (int j = 0; j < 8; j++) bv[j] = wasm_v128_load(b + 4 * j);
    for (int i = 0; i < MR; i++) {
      v128_t ai = wasm_f32x4_splat(a[i]);
      for (int j = 0; j < 8; j++) acc[i][j] = wasm_f32x4_add(acc[i][j], wasm_f32x4_mul(ai, bv[j]));
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; i++) {
    float *row = c + i * ldc;
    for (int j = 0; j < 8; j++) {
      v128_t value = acc[i][j];
      if (accumulate) value = wasm_f32x4_add(value, wasm_v128_load(row + 4 * j));
      wasm_v128_store(row + 4 * j, value);
    }
  }
}
#else
static void kernel(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c02 = c00, c03 = c00;
  v128_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  v128_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  v128_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int p = 0; p < kc; p++) {
    v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4), b2 = wasm_v128_load(b + 8), b3 = wasm_v128_load(b + 12);
    v128_t ai;
#define ROW(i)                                                     \
    ai = wasm_f32x4_splat(a[i]);                                   \
    c##i##0 = wasm_f32x4_add(c##i##0, wasm_f32x4_mul(ai, b0));     \
    c##i##1 = wasm_f32x4_add(c##i##1, wasm_f32x4_mul(ai, b1));     \
    c##i##2 = wasm_f32x4_add(c##i##2, wasm_f32x4_mul(ai, b2));     \
    c##i##3 = wasm_f32x4_add(c##i##3, wasm_f32x4_mul(ai, b3));
    ROW(0) ROW(1) ROW(2) ROW(3)
#undef ROW
    a += MR;
    b += NR;
  }
#define STORE(i)                                                                       \
  {                                                                                    \
    float *row = c + (i) * ldc;                                                        \
    if (accumulate) {                                                                  \
      c##i##0 = wasm_f32x4_add(c##i##0, wasm_v128_load(row));                          \
      c##i##1 = wasm_f32x4_add(c##i##1, wasm_v128_load(row + 4));                      \
      c##i##2 = wasm_f32x4_add(c##i##2, wasm_v128_load(row + 8));                      \
      c##i##3 = wasm_f32x4_add(c##i##3, wasm_v128_load(row + 12));                     \
    }                                                                                  \
    wasm_v128_store(row, c##i##0); wasm_v128_store(row + 4, c##i##1);                  \
    wasm_v128_store(row + 8, c##i##2); wasm_v128_store(row + 12, c##i##3);             \
  }
  STORE(0) STORE(1) STORE(2) STORE(3)
#undef STORE
}

#endif

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

/* Same parameters as the native gemm (vswin_gemm_args), flattened; addresses are byte offsets. */
EXPORT(gemm)
void gemm(const float *a, const float *b, float *c, const float *bias, int batch, int m, int n, int k,
          int a_batch, int a_row, int a_col, int b_batch, int b_row, int b_col, int bias_batch, int bias_row,
          int bias_col, int activation, float alpha, float *scratch) {
  float *packed_a = scratch;
  float *packed_b = scratch + KC * MC;
  for (int t = 0; t < batch; t++) {
    const float *at = a + t * a_batch;
    const float *bt = b + t * b_batch;
    float *ct = c + t * m * n;
    if (k == 0) {
      for (int i = 0; i < m * n; i++) ct[i] = 0.0f;
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
              float *target = ct + (ic + ir) * n + jc + jr;
              if (rows == MR && cols == NR) {
                kernel(kc, ap, bp, target, n, pc > 0);
              } else {
                /* Ragged edge: the tile goes past both packed blocks. */
                float *tile = scratch + TILE_OFFSET;
                kernel(kc, ap, bp, tile, NR, 0);
                for (int i = 0; i < rows; i++)
                  for (int j = 0; j < cols; j++) {
                    float value = tile[i * NR + j];
                    target[i * n + j] = pc > 0 ? target[i * n + j] + value : value;
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
          float value = ct[i * n + j];
          if (bb) value += bb[i * bias_row + j * bias_col];
          ct[i * n + j] = activate(value, activation, alpha);
        }
    }
  }
}

/* out (contiguous over shape) = input[offset + sum(i_d * strides[d])].
 * params = shape[rank], strides[rank], counter[rank] (zeroed by the caller; a local array would
 * live on a shadow stack in the host's memory). */
EXPORT(strided_copy)
void strided_copy(const uint32_t *input, uint32_t *output, int rank, int offset, int32_t *params) {
  const int32_t *shape = params, *strides = params + rank;
  int32_t *counter = params + 2 * rank;
  if (rank == 0) {
    output[0] = input[offset];
    return;
  }
  int inner = shape[rank - 1], step = strides[rank - 1];
  long rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= shape[d];
  const uint32_t *src = input + offset;
  for (long row = 0; row < rows; row++) {
    if (step == 1) {
      __builtin_memcpy(output, src, (unsigned long)inner * 4);
    } else {
      for (int i = 0; i < inner; i++) output[i] = src[i * step];
    }
    output += inner;
    for (int d = rank - 2; d >= 0; d--) {
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
