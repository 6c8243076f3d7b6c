import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeProvider, uninstallFastKernels } from '../../../core/engine/kernels/index.ts';
import { tf } from '../../../core/engine/tf.ts';
import { expectSameOnBoth, NATIVE_ISAS, seeded, tierMissing, TIERS, useTier } from './compare.ts';
const exact = { atol: 0, rtol: 0 };

function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    seeded(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );
}

function permutations(items: number[]): number[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

describe.each(TIERS)('%s Transpose, Slice, StridedSlice against the cpu backend', (tier) => {
  beforeAll(async () => {
    if (!tierMissing(tier)) await useTier(tier);
  });
  afterAll(() => uninstallFastKernels());

  it.skipIf(tierMissing(tier))('every permutation of a rank-4 tensor with a size-1 dim, float32 and int32', async () => {
    for (const perm of permutations([0, 1, 2, 3])) {
      await expectSameOnBoth(
        () => [tensor([3, 1, 20, 17], 1).transpose(perm), tensor([3, 1, 20, 17], 1).mul(1000).toInt().transpose(perm)],
        exact,
        `perm ${perm}`,
      );
    }
  });

  it.skipIf(tierMissing(tier))("the model's rank-6 window transposes, large enough to run on the pool", async () => {
    // [B, D/wd, wd, H/wh, wh, C] window partition and its reverse; qkv split [B, N, 3, heads, dh] -> [3, B, heads, N, dh]
    await expectSameOnBoth(
      () => {
        const x = tensor([2, 4, 2, 7, 7, 24], 2);
        return [
          x.transpose([0, 1, 3, 2, 4, 5]),
          x.transpose([5, 4, 3, 2, 1, 0]),
          tensor([6, 49, 3, 4, 8], 3).transpose([2, 0, 3, 1, 4]),
          tensor([64, 300, 70], 4).transpose([0, 2, 1]),
        ];
      },
      exact,
      'rank 6',
    );
  });

  it.skipIf(tierMissing(tier))('rank 7 transposes work (stock wasm aborts there)', async () => {
    await expectSameOnBoth(() => tensor([2, 3, 2, 3, 2, 3, 2], 5).transpose([6, 0, 5, 1, 4, 2, 3]), exact, 'rank 7');
  });

  it.skipIf(tierMissing(tier))('transpose gradient', async () => {
    await expectSameOnBoth(
      () =>
        tf.grad((x: tf.Tensor) =>
          x
            .transpose([2, 0, 1])
            .mul(tensor([5, 3, 4], 6))
            .sum(),
        )(tensor([3, 4, 5], 7)),
      exact,
      'transpose grad',
    );
  });

  it.skipIf(tierMissing(tier))('identity (clone) shares data safely: disposing either side keeps the other intact', async () => {
    await expectSameOnBoth(
      () => {
        const x = tensor([4, 5], 42);
        const copy = x.clone();
        const variable = tf.variable(x.clone());
        variable.assign(tf.zeros([4, 5]));
        const kept = copy.add(1);
        x.dispose();
        const result = [kept, copy.mul(2), variable.add(0)];
        variable.dispose();
        return result;
      },
      exact,
      'identity',
    );
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    tf.tidy(() => {
      tensor([100], 43).clone().clone();
    });
    expect([tf.memory().numTensors, tf.memory().numBytes]).toEqual([before, bytes]);
  });

  it.skipIf(tierMissing(tier))('slices of rank 1 to 6: offsets, non-contiguous blocks, size -1, empty', async () => {
    await expectSameOnBoth(
      () => [
        tensor([50], 8).slice(3, 20),
        tensor([6, 7], 9).slice([1, 2], [3, -1]),
        tensor([4, 5, 6, 7, 8], 10).slice([1, 0, 2, 0, 3], [2, 5, 3, 7, 2]),
        tensor([2, 3, 4, 5, 6, 7], 11).slice([1, 1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 6]),
        tensor([3, 4], 12).slice([1, 1], [0, 2]),
        tensor([8, 9, 10], 13).mul(100).toInt().slice([2, 3, 4], [3, 3, 3]),
      ],
      exact,
      'slice',
    );
  });

  it.skipIf(tierMissing(tier))('pad (constant, both sides, int32, empty input, rank 6) and split', async () => {
    await expectSameOnBoth(
      () => [
        tf.pad(tensor([3, 4, 5], 44), [
          [0, 0],
          [2, 1],
          [0, 0],
        ]),
        tf.pad(
          tensor([3, 4, 5], 45),
          [
            [1, 0],
            [0, 0],
            [0, 3],
          ],
          1.5,
        ),
        tf.pad(tensor([6], 46).mul(10).toInt(), [[2, 2]], 7),
        tf.pad(
          tf.zeros([0, 3]),
          [
            [1, 1],
            [0, 2],
          ],
          2,
        ),
        tf.pad(tensor([2, 1, 3, 1, 2, 2], 47), [
          [0, 1],
          [1, 0],
          [0, 0],
          [2, 0],
          [0, 0],
          [1, 1],
        ]),
        ...tf.split(tensor([4, 9, 6], 48), [2, 3, 4], 1),
        ...tf.split(tensor([6, 5], 49), 3, 0),
        ...tf.split(tensor([2, 3, 8], 50).mul(9).toInt(), 2, -1),
      ],
      exact,
      'pad/split',
    );
  });

  it.skipIf(tierMissing(tier))('slice gradient', async () => {
    await expectSameOnBoth(
      () => tf.grad((x: tf.Tensor) => x.slice([1, 2, 0], [2, 3, 4]).square().sum())(tensor([4, 6, 4], 14)),
      { atol: 1e-6, rtol: 1e-6 },
      'slice grad',
    );
  });

  it.skipIf(tierMissing(tier))('strided slices: steps, negative steps, masks, shrink and new axes', async () => {
    await expectSameOnBoth(
      () => {
        const x = tensor([6, 8, 10], 15);
        return [
          tf.stridedSlice(x, [0, 1, 2], [6, 8, 10], [2, 3, 2]),
          tf.stridedSlice(x, [5, 7, 9], [0, 0, 0], [-1, -2, -3]),
          tf.stridedSlice(x, [1, 0, 0], [4, 0, 0], [1, 1, 1], 0, 6),
          tf.stridedSlice(x, [2, 1], [3, 7], [1, 1], 0, 0, 0, 0, 1),
          tf.stridedSlice(x, [2, 1, 0], [5, 2, 9], [2, 1, 3], 0, 0, 0, 0, 2),
          tf.stridedSlice(x, [0, 0, 0, 0], [1, 6, 8, 5], [1, 1, 1, 1], 0, 0, 0, 1),
          tf.stridedSlice(x, [1, 2], [5, 6], [1, 1]),
          tf.stridedSlice(x, [4], [1], [-1]),
        ];
      },
      exact,
      'stridedSlice',
    );
  });
});

describe.each(TIERS)('%s GatherV2 against the cpu backend', (tier) => {
  beforeAll(async () => {
    if (!tierMissing(tier)) await useTier(tier);
  });
  afterAll(() => uninstallFastKernels());

  function indices(count: number, limit: number, seed: number, shape = [count]): tf.Tensor {
    return tf.tensor(
      Int32Array.from(seeded(count, seed), (value) => Math.floor(((value + 1) / 2) * limit)),
      shape,
      'int32',
    );
  }

  it.skipIf(tierMissing(tier))(
    'the relative position bias gather, other axes, batch dims, int32 tables and empty index lists',
    async () => {
      await expectSameOnBoth(
        () => [
          tf.gather(tensor([2535, 3], 31), indices(392 * 392, 2535, 32)),
          tf.gather(tensor([4, 9, 5], 33), indices(7, 9, 34), 1),
          tf.gather(tensor([4, 9, 5], 35), indices(6, 5, 36, [2, 3]), 2),
          tf.gather(tensor([3, 8, 2], 37), indices(12, 8, 38, [3, 4]), 1, 1),
          tf.gather(tensor([10, 4], 39).mul(50).toInt(), indices(25, 10, 40)),
          tf.gather(tensor([10, 4], 41), tf.tensor([], [0], 'int32')),
        ],
        exact,
        'gather',
      );
    },
  );

  it.skipIf(tierMissing(tier))('an out-of-range index is refused with its value and the valid range', async () => {
    await tf.setBackend('wasm');
    const table = tf.ones([5, 2]);
    const bad = tf.tensor([1, 7, 2], [3], 'int32');
    const before = tf.memory().numTensors;
    expect(() => tf.gather(table, bad)).toThrow('GatherV2: the index value 7 is not in [0, 4]');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([table, bad]);
  });
});

describe.each(TIERS)(
  '%s Add, Sub, Multiply, RealDiv, Erf, Softmax against the cpu backend (stock kernels where the tier has none)',
  (tier) => {
    beforeAll(async () => {
      if (!tierMissing(tier)) await useTier(tier);
    });
    afterAll(() => uninstallFastKernels());

    // [a, b] pairs: same shape, the model's [..., 1] and bias broadcasts, the attention mask
    // broadcast, scalars on either side, rank 6 and rank 7.
    const pairs: [number[], number[]][] = [
      [
        [40, 33],
        [40, 33],
      ],
      [[40, 33], [33]],
      [
        [40, 33],
        [40, 1],
      ],
      [
        [1, 33],
        [40, 1],
      ],
      [[], [7, 5]],
      [[7, 5], []],
      [
        [4, 3, 2, 49, 49],
        [1, 3, 1, 49, 49],
      ],
      [
        [2, 3, 1, 4, 5, 6],
        [1, 1, 2, 4, 1, 6],
      ],
      [
        [2, 2, 3, 2, 2, 3, 2],
        [2, 1, 3, 1, 2, 1, 2],
      ],
      [
        [300, 400],
        [300, 400],
      ],
      [[100000], [1]],
    ];
    const ops = [
      ['add', tf.add],
      ['sub', tf.sub],
      ['mul', tf.mul],
      ['div', tf.div],
    ] as const;

    it.skipIf(tierMissing(tier))('binary ops forward with every broadcast the model uses, both operand orders', async () => {
      for (const [name, op] of ops) {
        for (const [shapeA, shapeB] of pairs) {
          await expectSameOnBoth(
            () => [
              op(tensor(shapeA, 16), tensor(shapeB, 17).add(name === 'div' ? 3 : 0)),
              op(tensor(shapeB, 18).add(name === 'div' ? 3 : 0), tensor(shapeA, 19)),
            ],
            { atol: 1e-7, rtol: 1e-6 },
            `${name} [${shapeA}] [${shapeB}]`,
          );
        }
      }
    });

    it.skipIf(tierMissing(tier))('binary op gradients through broadcasts', async () => {
      for (const [name, op] of ops) {
        await expectSameOnBoth(
          () =>
            tf.grads((x: tf.Tensor, y: tf.Tensor) => op(x, y).square().sum())([tensor([5, 6, 7], 20), tensor([6, 1], 21).add(2)]),
          { atol: 1e-5, rtol: 1e-5 },
          `${name} grad`,
        );
      }
    });

    it.skipIf(tierMissing(tier))('int32 arithmetic falls back to the original kernels', async () => {
      await expectSameOnBoth(
        () => [
          tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4], [1], 'int32')),
          tf.mul(tf.tensor([[1, 2]], [1, 2], 'int32'), tf.tensor([[3], [4]], [2, 1], 'int32')),
        ],
        exact,
        'int32',
      );
    });

    it.skipIf(tierMissing(tier))('erf and an exact GELU with its gradient', async () => {
      const specials = tf.tensor([0, -0, 1e-30, -5, 5, 10, -10, Infinity, -Infinity, NaN, 0.5, -0.5]);
      await expectSameOnBoth(() => [tensor([70000], 22).mul(4).erf(), specials.erf()], { atol: 2e-7, rtol: 1e-6 }, 'erf');
      await expectSameOnBoth(
        () => {
          const gelu = (x: tf.Tensor) => x.mul(0.5).mul(tf.erf(x.div(Math.SQRT2)).add(1));
          const x = tensor([64, 50], 23).mul(3);
          return [gelu(x), tf.grad((input: tf.Tensor) => gelu(input).sum())(x)];
        },
        { atol: 1e-6, rtol: 1e-5 },
        'gelu',
      );
      specials.dispose();
    });

    it.skipIf(tier !== 'native' || tierMissing(tier))('erf and softmax on each instruction set the CPU has', async () => {
      const provider = activeProvider()!;
      for (const isa of NATIVE_ISAS) {
        if (!provider.setIsa?.(isa)) continue;
        try {
          await expectSameOnBoth(
            () => [
              tensor([3, 1000], 40).mul(4).erf(),
              tensor([7, 37], 41).mul(8).softmax(),
              tf.tensor([[1, NaN, 2]]).softmax(),
              tf.tensor([NaN, Infinity, -Infinity, 0.1]).erf(),
            ],
            { atol: 2e-7, rtol: 2e-6 },
            `erf/softmax ${isa}`,
          );
        } finally {
          provider.setIsa('auto');
        }
      }
    });

    it.skipIf(tierMissing(tier))('softmax over rows of several lengths, with the -100 shift mask, and its gradient', async () => {
      await expectSameOnBoth(
        () => {
          const masked = tensor([8, 49, 49], 24)
            .mul(5)
            .add(
              tf
                .tensor(seeded(49 * 49, 25))
                .reshape([49, 49])
                .greater(0)
                .toFloat()
                .mul(-100),
            );
          return [
            tensor([3, 1], 26).softmax(),
            tensor([5, 17], 27).mul(10).softmax(),
            masked.softmax(),
            tensor([2, 3, 1000], 28).softmax(),
            tf.grad((x: tf.Tensor) =>
              x
                .softmax()
                .mul(tensor([6, 40], 29))
                .sum(),
            )(tensor([6, 40], 30)),
          ];
        },
        { atol: 1e-7, rtol: 2e-6 },
        'softmax',
      );
      await expectSameOnBoth(
        () =>
          tf
            .tensor([
              [0, NaN, 1],
              [-Infinity, 0, 1],
            ])
            .softmax(),
        { atol: 1e-7, rtol: 2e-6 },
        'softmax specials',
      );
    });
  },
);
