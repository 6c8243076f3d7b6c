/* Standalone correctness check of the native SGEMM (native/src/gemm.c) against a naive
 * double-precision triple loop, without Node: it links gemm.c and pool.c only. Written to test
 * the aarch64 NEON micro-kernel under qemu-user from an x86-64 machine (native/test/neon-check.mjs
 * builds and runs it), it checks any instruction set the build and CPU have.
 *
 *   gemm-check [isa ...]   isa: neon, avx512, avx2, portable (default: every one available here)
 *
 * For each instruction set it forces that micro-kernel and runs: every m, n in 1..40 (k, the
 * transposes and serial/threaded entry points cycling), k from 0 to 40 and across the KC = 256
 * block boundary, batches with a broadcast operand, padded leading dimensions, row and column
 * bias, every activation, and a few shapes that cross the MC, NC and KC blocking. C is filled
 * with NaN before each product (so every element must be written) and guarded on both sides
 * (so nothing outside it may be). Exits 1 on the first mismatching product, 2 on a usage error. */
#include "../src/vswin.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64
#define GUARD_VALUE 12345.0f

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float random_float(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static void *checked_malloc(size_t bytes) {
  void *memory = malloc(bytes > 0 ? bytes : 1);
  if (!memory) {
    fprintf(stderr, "gemm-check: out of memory allocating %zu bytes\n", bytes);
    exit(2);
  }
  return memory;
}

typedef struct {
  long batch, m, n, k;
  int trans_a, trans_b;
  long pad;           /* extra elements per leading dimension of A and B */
  int broadcast_b;    /* B shared by every batch (b_batch = 0) */
  int bias;           /* 0 none, 1 row vector [n], 2 column vector [m], 3 full [batch, m, n] */
  int activation;
  int serial;         /* vswin_gemm_serial instead of the threaded vswin_gemm */
} gemm_case;

static const char *activation_names[] = {"linear", "relu", "relu6", "leaky_relu", "sigmoid", "elu"};

static void describe(const gemm_case *t, char *out, size_t size) {
  static const char *bias_names[] = {"none", "row", "column", "full"};
  snprintf(out, size, "batch %ld, m %ld, n %ld, k %ld, %c%c, pad %ld, %s B, bias %s, %s, %s", t->batch, t->m, t->n,
           t->k, t->trans_a ? 'T' : 'N', t->trans_b ? 'T' : 'N', t->pad, t->broadcast_b ? "broadcast" : "per-batch",
           bias_names[t->bias], activation_names[t->activation], t->serial ? "serial" : "threaded");
}

static double activate_reference(double x, int activation, double alpha) {
  switch (activation) {
    case VSWIN_RELU: return x > 0 ? x : 0;
    case VSWIN_RELU6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case VSWIN_LEAKY_RELU: return x < 0 ? alpha * x : x;
    case VSWIN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case VSWIN_ELU: return x > 0 ? x : exp(x) - 1.0;
    default: return x;
  }
}

typedef struct {
  long products;
  double max_relative; /* |c - reference| / sum_p |a b| (+ |bias|), without activation */
  double max_absolute;
  double max_of_bound; /* the largest share of the allowed error any element used */
} tally;

/* Runs one product and compares it element by element; returns 0 when it matches. When corrupt
 * is set, one output element is changed after the product to prove the comparison catches it. */
static int run_case(const gemm_case *t, tally *totals, int corrupt) {
  const long m = t->m, n = t->n, k = t->k, batch = t->batch;
  /* A is stored [batch][m][k + pad] (NN) or [batch][k][m + pad] (transposed), B likewise. */
  const long a_ld = (t->trans_a ? m : k) + t->pad, a_lines = t->trans_a ? k : m;
  const long b_ld = (t->trans_b ? k : n) + t->pad, b_lines = t->trans_b ? n : k;
  const long a_size = a_ld * a_lines, b_size = b_ld * b_lines;
  const long b_batches = t->broadcast_b ? 1 : batch;
  float *a = k > 0 ? checked_malloc(sizeof(float) * (size_t)(a_size * batch)) : NULL;
  float *b = k > 0 ? checked_malloc(sizeof(float) * (size_t)(b_size * b_batches)) : NULL;
  for (long i = 0; k > 0 && i < a_size * batch; i++) a[i] = random_float();
  for (long i = 0; k > 0 && i < b_size * b_batches; i++) b[i] = random_float();

  long bias_size = t->bias == 1 ? n : t->bias == 2 ? m : t->bias == 3 ? batch * m * n : 0;
  float *bias = bias_size ? checked_malloc(sizeof(float) * (size_t)bias_size) : NULL;
  for (long i = 0; i < bias_size; i++) bias[i] = random_float();

  const long c_size = batch * m * n;
  float *c_area = checked_malloc(sizeof(float) * (size_t)(c_size + 2 * GUARD));
  float *c = c_area + GUARD;
  for (long i = 0; i < c_size + 2 * GUARD; i++) c_area[i] = GUARD_VALUE;
  for (long i = 0; i < c_size; i++) c[i] = NAN;

  vswin_gemm_args args;
  memset(&args, 0, sizeof args);
  args.batch = batch;
  args.m = m;
  args.n = n;
  args.k = k;
  args.a = a;
  args.a_batch = k > 0 ? a_size : 0;
  args.a_row = t->trans_a ? 1 : a_ld;
  args.a_col = t->trans_a ? a_ld : 1;
  args.b = b;
  args.b_batch = t->broadcast_b || k == 0 ? 0 : b_size;
  args.b_row = t->trans_b ? 1 : b_ld;
  args.b_col = t->trans_b ? b_ld : 1;
  args.c = c;
  args.bias = bias;
  if (t->bias == 1) { args.bias_batch = 0; args.bias_row = 0; args.bias_col = 1; }
  if (t->bias == 2) { args.bias_batch = 0; args.bias_row = 1; args.bias_col = 0; }
  if (t->bias == 3) { args.bias_batch = m * n; args.bias_row = n; args.bias_col = 1; }
  args.activation = t->activation;
  args.alpha = 0.2f;

  int status = t->serial ? vswin_gemm_serial(&args) : vswin_gemm(&args);
  if (corrupt && c_size > 0) c[c_size / 2] += 0.01f;

  char text[256];
  int failed = 0;
  if (status != 0) {
    describe(t, text, sizeof text);
    printf("FAIL %s: vswin_gemm returned %d (pack buffers could not be allocated)\n", text, status);
    failed = 1;
  }
  for (long i = 0; !failed && i < GUARD; i++) {
    if (c_area[i] != GUARD_VALUE || c[c_size + i] != GUARD_VALUE) {
      describe(t, text, sizeof text);
      printf("FAIL %s: wrote outside C (%s guard, element %ld)\n", text, c_area[i] != GUARD_VALUE ? "leading" : "trailing", i);
      failed = 1;
    }
  }
  for (long s = 0; !failed && s < batch; s++) {
    const float *as = a ? a + s * a_size : NULL;
    const float *bs = b ? b + (t->broadcast_b ? 0 : s) * b_size : NULL;
    for (long i = 0; !failed && i < m; i++) {
      for (long j = 0; !failed && j < n; j++) {
        double sum = 0, scale = 0;
        for (long p = 0; p < k; p++) {
          double x = as[t->trans_a ? p * a_ld + i : i * a_ld + p];
          double y = bs[t->trans_b ? j * b_ld + p : p * b_ld + j];
          sum += x * y;
          scale += fabs(x * y);
        }
        if (t->bias) {
          double add = t->bias == 1 ? bias[j] : t->bias == 2 ? bias[i] : bias[(s * m + i) * n + j];
          sum += add;
          scale += fabs(add);
        }
        double expected = activate_reference(sum, t->activation, 0.2);
        double got = c[(s * m + i) * n + j];
        double error = fabs(got - expected);
        /* Float32 sums of k products with blocking and FMA: each of the k + 1 additions may round
         * by FLT_EPSILON / 2 of the running |a b| sum; the activation adds a few ulp of its result. */
        double bound = (double)(k + 2) * FLT_EPSILON * scale + 8 * FLT_EPSILON * (1 + fabs(expected));
        if (!(error <= bound)) { /* also catches NaN: an element never written */
          if (!corrupt) {
            describe(t, text, sizeof text);
            printf("FAIL %s: c[%ld][%ld][%ld] = %.9g, expected %.9g (error %.3g, allowed %.3g)\n", text, s, i, j, got,
                   expected, error, bound);
          }
          failed = 1;
        }
        if (t->activation == VSWIN_LINEAR && scale > 0 && error / scale > totals->max_relative)
          totals->max_relative = error / scale;
        if (error / bound > totals->max_of_bound) totals->max_of_bound = error / bound;
        if (error > totals->max_absolute) totals->max_absolute = error;
      }
    }
  }
  totals->products++;
  free(a);
  free(b);
  free(bias);
  free(c_area);
  return failed;
}

static int check_isa(const char *isa) {
  if (!vswin_gemm_force_isa(isa)) {
    printf("FAIL %s: vswin_gemm_force_isa refused it (not built for this architecture or missing on this CPU)\n", isa);
    return 1;
  }
  if (strcmp(vswin_gemm_isa(), isa) != 0) {
    printf("FAIL %s: forced, but vswin_gemm_isa() reports %s\n", isa, vswin_gemm_isa());
    return 1;
  }
  tally totals = {0, 0, 0, 0};
  static const long depths[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 31, 32, 33, 0};
  gemm_case t;

  /* The comparison itself must see a wrong element. */
  t = (gemm_case){1, 13, 9, 5, 0, 0, 0, 0, 0, VSWIN_LINEAR, 1};
  if (!run_case(&t, &(tally){0, 0, 0, 0}, 1)) {
    printf("FAIL %s: the checker did not notice a corrupted output element\n", isa);
    return 1;
  }

  long counter = 0;
  /* Every edge: m, n in 1..40. */
  for (long m = 1; m <= 40; m++) {
    for (long n = 1; n <= 40; n++, counter++) {
      t = (gemm_case){1, m, n, depths[counter % 16], (int)(counter & 1), (int)((counter >> 1) & 1), 0, 0, 0, VSWIN_LINEAR,
                      (int)((counter / 4) & 1)};
      if (run_case(&t, &totals, 0)) return 1;
    }
  }
  long edge_products = totals.products;

  /* Every depth 0..40 and across the KC = 256 block, each transpose combination. */
  static const long deep[] = {255, 256, 257, 511, 513};
  for (int variant = 0; variant < 4; variant++) {
    for (long k = 0; k <= 40 + 5; k++) {
      long depth = k <= 40 ? k : deep[k - 41];
      t = (gemm_case){1, 7 + 6 * variant, 5 + 4 * variant, depth, variant & 1, variant >> 1, 0, 0, 0, VSWIN_LINEAR, 0};
      if (run_case(&t, &totals, 0)) return 1;
    }
  }

  /* Batches, broadcast B, padded leading dimensions, bias layouts and activations. */
  for (int activation = VSWIN_LINEAR; activation <= VSWIN_ELU; activation++) {
    for (int bias = 0; bias <= 3; bias++) {
      for (int variant = 0; variant < 4; variant++, counter++) {
        t = (gemm_case){1 + (counter % 4), 5 + (counter * 7) % 30, 3 + (counter * 11) % 37, (counter * 5) % 45,
                        variant & 1, variant >> 1, counter % 3, (int)(counter & 1), bias, activation, (int)((counter >> 1) & 1)};
        if (run_case(&t, &totals, 0)) return 1;
      }
    }
  }
  /* k = 0 with a bias and an activation: only the epilogue. */
  t = (gemm_case){3, 17, 23, 0, 0, 0, 0, 0, 3, VSWIN_SIGMOID, 0};
  if (run_case(&t, &totals, 0)) return 1;

  /* Larger shapes crossing MC (up to 168 rows), NC (2048 columns) and KC (256), and the thread
   * split by rows, by columns and by batch. */
  static const gemm_case large[] = {
      {1, 200, 2060, 300, 0, 0, 0, 0, 1, VSWIN_LINEAR, 0},
      {1, 173, 149, 530, 1, 1, 3, 0, 2, VSWIN_RELU, 0},
      {1, 1, 3000, 40, 0, 1, 0, 0, 0, VSWIN_LINEAR, 0},
      {1, 3001, 1, 40, 1, 0, 0, 0, 0, VSWIN_LINEAR, 0},
      {6, 49, 32, 49, 0, 0, 0, 0, 3, VSWIN_LINEAR, 0},
      {5, 98, 98, 32, 0, 1, 0, 1, 0, VSWIN_LINEAR, 0},
      {1, 392, 96, 288, 0, 1, 0, 0, 1, VSWIN_ELU, 0},
  };
  for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
    if (run_case(&large[i], &totals, 0)) return 1;

  printf("ok %s: %ld products (%ld edge shapes m, n = 1..40; k = 0..40, 255..257, 511, 513; NN/NT/TN/TT; batch 1..6, "
         "broadcast B, padded strides; bias none/row/column/full; 6 activations; up to 200x2060x300), "
         "max error %.3g of sum|a*b| (linear), max absolute error %.3g, worst element at %.1f%% of its bound\n",
         isa, totals.products, edge_products, totals.max_relative, totals.max_absolute, 100 * totals.max_of_bound);
  return 0;
}

int main(int argc, char **argv) {
  static const char *all[] = {"neon", "avx512", "avx2", "portable"};
  int failures = 0, checked = 0;
  const char *override = getenv("VSWIN_ISA");
  printf("automatic choice: %s%s%s\n", vswin_gemm_isa(), override ? ", as VSWIN_ISA asks: " : "", override ? override : "");
  if (argc > 1) {
    for (int i = 1; i < argc; i++) {
      if (strcmp(argv[i], "--help") == 0) {
        puts("usage: gemm-check [neon|avx512|avx2|portable ...]   (default: every instruction set available here)");
        return 2;
      }
      failures += check_isa(argv[i]);
      checked++;
    }
  } else {
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
      if (!vswin_gemm_force_isa(all[i])) {
        printf("skip %s: not available in this build or on this CPU\n", all[i]);
        continue;
      }
      failures += check_isa(all[i]);
      checked++;
    }
  }
  printf("%s: %d instruction set(s) checked, %d failed (%d threads)\n", failures ? "FAILED" : "passed", checked, failures,
         vswin_thread_count());
  return failures ? 1 : 0;
}
