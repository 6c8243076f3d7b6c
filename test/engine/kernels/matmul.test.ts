import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeProvider, uninstallFastKernels } from '../../../core/engine/kernels/index.ts';
import { tf } from '../../../core/engine/tf.ts';
import { expectSameOnBoth, NATIVE_ISAS, seeded, tierMissing, TIERS, useTier } from './compare.ts';
const matmulTolerance = { atol: 2e-5, rtol: 2e-5 };

function operand(batch: number[], rows: number, cols: number, transposed: boolean, seed: number): tf.Tensor {
  const shape = transposed ? [...batch, cols, rows] : [...batch, rows, cols];
  return tf.tensor(
    seeded(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );
}

const transposes: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
// [batch of a, batch of b, m, k, n]: ragged tiles, K beyond one 256 block, size-1 dims, K = 0,
// broadcast batches and a rank-5 product.
const shapes: [number[], number[], number, number, number][] = [
  [[], [], 17, 45, 300],
  [[], [], 1, 7, 1],
  [[3], [3], 29, 33, 40],
  [[3], [], 16, 8, 33],
  [[1], [4], 5, 9, 6],
  [[2, 3, 2], [2, 3, 2], 4, 3, 5],
  [[2], [2], 6, 0, 7],
  [[], [], 70, 300, 90],
  [[], [], 9, 300, 1000], // a ragged last panel in a full-width, full-depth block
];

describe.each(TIERS)('%s BatchMatMul and _FusedMatMul against the cpu backend', (tier) => {
  beforeAll(async () => {
    if (!tierMissing(tier)) await useTier(tier);
  });
  afterAll(() => uninstallFastKernels());

  const isas = tier === 'native' ? [...NATIVE_ISAS] : ['wasm-simd128'];
  it.skipIf(tierMissing(tier)).each(isas)(
    'matMul forward, every transpose combination and shape, %s micro-kernel',
    async (isa) => {
      const provider = activeProvider()!;
      const detected = provider.info().isa;
      if (provider.setIsa && !provider.setIsa(isa)) return expect(isas.indexOf(isa)).toBeLessThan(isas.indexOf(detected)); // CPU lacks it
      try {
        for (const [batchA, batchB, m, k, n] of shapes) {
          for (const [transposeA, transposeB] of transposes) {
            await expectSameOnBoth(
              () => tf.matMul(operand(batchA, m, k, transposeA, 1), operand(batchB, k, n, transposeB, 2), transposeA, transposeB),
              matmulTolerance,
              `${isa} [${batchA}] ${m}x${k} * [${batchB}] ${k}x${n} tA=${transposeA} tB=${transposeB}`,
            );
          }
        }
      } finally {
        provider.setIsa?.('auto');
      }
    },
  );

  it.skipIf(tierMissing(tier))('K = 0 gives zeros (stock wasm returns uninitialised memory)', async () => {
    await tf.setBackend('wasm');
    const product = tf.matMul(tf.zeros([3, 4, 0]), tf.zeros([3, 0, 5]));
    expect(Array.from(await product.data())).toEqual(new Array(60).fill(0));
    product.dispose();
  });

  it.skipIf(tierMissing(tier))(
    'a mixed broadcast batch ([2,1] x [1,3]) falls back to the original kernel and stays right',
    async () => {
      await expectSameOnBoth(
        () => tf.matMul(operand([2, 1], 4, 5, false, 3), operand([1, 3], 5, 6, false, 4)),
        matmulTolerance,
        'mixed broadcast',
      );
    },
  );

  it.skipIf(tierMissing(tier))('matMul gradients for every transpose combination, batched', async () => {
    for (const [transposeA, transposeB] of transposes) {
      await expectSameOnBoth(
        () => {
          const a = operand([2], 9, 20, transposeA, 5);
          const b = operand([2], 20, 11, transposeB, 6);
          const weight = tf.tensor(seeded(2 * 9 * 11, 7), [2, 9, 11]);
          return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, transposeA, transposeB).mul(weight).sum())([a, b]);
        },
        matmulTolerance,
        `grad tA=${transposeA} tB=${transposeB}`,
      );
    }
  });

  const activations = ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu', 'prelu'] as const;
  it.skipIf(tierMissing(tier))(
    'fused matMul: bias [n], [m, n] and per-batch, every activation, transposed and batched',
    async () => {
      const biasShapes = [[13], [1, 13], [7, 13], [3, 7, 13], [3, 1, 13], [7, 1]];
      for (const biasShape of biasShapes) {
        for (const activation of activations) {
          for (const [transposeA, transposeB] of transposes) {
            await expectSameOnBoth(
              () =>
                tf.fused.matMul({
                  a: operand([3], 7, 10, transposeA, 8).mul(3),
                  b: operand([3], 10, 13, transposeB, 9),
                  transposeA,
                  transposeB,
                  bias: tf.tensor(
                    seeded(
                      biasShape.reduce((x, y) => x * y, 1),
                      10,
                    ),
                    biasShape,
                  ),
                  activation,
                  preluActivationWeights: activation === 'prelu' ? tf.tensor(seeded(13, 11), [13]) : undefined,
                  leakyreluAlpha: 0.3,
                }),
              matmulTolerance,
              `bias [${biasShape}] ${activation} tA=${transposeA} tB=${transposeB}`,
            );
          }
        }
      }
    },
  );

  it.skipIf(tierMissing(tier))('fused matMul gradients with bias and relu, transposed and batched', async () => {
    for (const [transposeA, transposeB] of transposes) {
      await expectSameOnBoth(
        () => {
          const a = operand([2], 6, 12, transposeA, 12);
          const b = operand([2], 12, 5, transposeB, 13);
          const bias = tf.tensor(seeded(5, 14), [5]);
          return tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.fused.matMul({ a: x, b: y, bias: z, transposeA, transposeB, activation: 'relu' }).square().sum(),
          )([a, b, bias]);
        },
        matmulTolerance,
        `fused grad tA=${transposeA} tB=${transposeB}`,
      );
    }
  });

  it.skipIf(tierMissing(tier))(
    'denormal inputs: products match the cpu backend; denormals read as zero; JavaScript keeps its own',
    async () => {
      await expectSameOnBoth(
        () => {
          const tiny = tf
            .tensor(seeded(40 * 50, 15))
            .mul(1e-39)
            .reshape([40, 50]);
          const weights = tf.tensor(seeded(50 * 30, 16), [50, 30]);
          return [tf.matMul(tiny, weights), tf.matMul(weights.transpose(), tiny.transpose())];
        },
        { atol: 1e-36, rtol: 1e-4 },
        'denormals',
      );
      // Native: denormals-are-zero is the documented price of full speed, a denormal input scaled up
      // stays 0. WebAssembly has no such mode, so the wasm tier keeps IEEE results.
      await tf.setBackend('wasm');
      const scaled = tf.tidy(() => tf.matMul(tf.fill([2, 3], 1e-40), tf.fill([3, 2], 1e30)));
      const expected = tier === 'native' ? 0 : Math.fround(Math.fround(1e-40) * 1e30) * 3;
      (await scaled.data()).forEach((value) => expect(value).toBeCloseTo(expected, 15));
      scaled.dispose();
      // FTZ/DAZ are set only during native calls; V8's doubles share MXCSR, so a leak would flush these.
      const smallest = Number.MIN_VALUE * (1 + 0 * Math.random());
      expect(smallest).toBeGreaterThan(0);
      expect(Math.fround(1e-40 * (1 + 0 * Math.random()))).toBeGreaterThan(0);
    },
  );

  it.skipIf(tierMissing(tier))(
    'a bias that cannot broadcast onto the flattened batch is refused with the shapes in the message',
    async () => {
      await tf.setBackend('wasm');
      const backend = tf.backend();
      const a = tf.ones([6, 2, 3]);
      const b = tf.ones([6, 3, 4]);
      const bias = tf.ones([2, 1, 4]);
      expect(() =>
        tf.engine().runKernel('_FusedMatMul', { a, b, bias }, { transposeA: false, transposeB: false, activation: 'linear' }),
      ).toThrow(/bias of shape \[2,1,4\] cannot be broadcast onto the \[6, 2, 4\] product/);
      expect(tf.backend()).toBe(backend);
      tf.dispose([a, b, bias]);
    },
  );

  it.skipIf(tierMissing(tier))('the gemm refuses strides that reach outside its arrays', () => {
    const small = new Float32Array(4);
    expect(() =>
      activeProvider()!.gemm(small, small, small, null, Int32Array.from([1, 2, 2, 3, 0, 3, 1, 0, 2, 1, 0, 0, 0, 0]), 0),
    ).toThrow(/a is smaller than its strides say/);
  });
});
