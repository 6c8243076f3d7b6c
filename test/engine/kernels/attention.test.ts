import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fastKernelStatus,
  fusedWindowAttention,
  uninstallFastKernels,
  WINDOW_ATTENTION,
} from '../../../core/engine/kernels/index.ts';
import { tf } from '../../../core/engine/tf.ts';
import { expectSameOnBoth, seeded, tierMissing, TIERS, useTier } from './compare.ts';

function tensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf
    .tensor(
      seeded(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
      shape,
    )
    .mul(scale);
}

/** The unfused reference, written out independently of attention.ts. */
function reference(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, mask: tf.Tensor | null): tf.Tensor {
  const [batch, heads, n] = q.shape;
  let scores = tf.matMul(q, k, false, true).add(bias); // [B_, nH, N, N]
  if (mask) {
    const windows = mask.shape[0];
    scores = scores
      .reshape([batch / windows, windows, heads, n, n])
      .add(mask.reshape([1, windows, 1, n, n]))
      .reshape([batch, heads, n, n]);
  }
  return tf.matMul(tf.softmax(scores), v);
}

function shiftMask(windows: number, n: number, seed: number): tf.Tensor {
  return tf
    .tensor(seeded(windows * n * n, seed), [windows, n, n])
    .greater(0.3)
    .toFloat()
    .mul(-100);
}

describe.each(TIERS)('fused window attention on the %s tier against the cpu backend', (tier) => {
  beforeAll(async () => {
    if (!tierMissing(tier)) await useTier(tier);
  });
  afterAll(() => uninstallFastKernels());

  // [batch*windows, heads, n, dim, windows]: the stage-1 shape of the visible config, ragged tiles,
  // a single window with no mask, one token.
  const cases: [number, number, number, number, number][] = [
    [8, 3, 49, 16, 4],
    [6, 2, 37, 20, 3],
    [2, 4, 50, 8, 0],
    [3, 1, 1, 5, 3],
  ];

  it.skipIf(tierMissing(tier))('forward matches the composition, with and without the shift mask', async () => {
    expect(fastKernelStatus().kernels.includes(WINDOW_ATTENTION)).toBe(true);
    for (const [batch, heads, n, dim, windows] of cases) {
      const inputs = () =>
        [
          tensor([batch, heads, n, dim], 1, 0.5),
          tensor([batch, heads, n, dim], 2),
          tensor([batch, heads, n, dim], 3),
          tensor([heads, n, n], 4),
          windows ? shiftMask(windows, n, 5) : null,
        ] as const;
      await expectSameOnBoth(
        () => reference(...inputs()),
        { atol: 2e-6, rtol: 2e-5 },
        `forward ${batch}x${heads}x${n}x${dim} w${windows}`,
        () => fusedWindowAttention(...inputs()),
      );
    }
  });

  it.skipIf(tierMissing(tier))('gradients in q, k, v and bias match autodiff of the composition', async () => {
    for (const [batch, heads, n, dim, windows] of cases.slice(0, 3)) {
      const weight = () => tensor([batch, heads, n, dim], 6);
      const mask = () => (windows ? shiftMask(windows, n, 7) : null);
      const grads = (attention: typeof reference) => () =>
        tf.grads((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor) =>
          attention(q, k, v, bias, mask()).mul(weight()).sum(),
        )([
          tensor([batch, heads, n, dim], 8, 0.5),
          tensor([batch, heads, n, dim], 9),
          tensor([batch, heads, n, dim], 10),
          tensor([heads, n, n], 11),
        ]);
      await expectSameOnBoth(
        grads(reference),
        { atol: 1e-5, rtol: 1e-4 },
        `grads ${batch}x${heads}x${n}x${dim} w${windows}`,
        grads(fusedWindowAttention),
      );
    }
  });

  it.skipIf(tierMissing(tier))('bad shapes are refused with what was received and expected', async () => {
    await tf.setBackend('wasm');
    const q = tf.zeros([4, 2, 5, 3]);
    expect(() => fusedWindowAttention(q, q, q, tf.zeros([2, 5, 4]), null)).toThrow(
      'fusedWindowAttention: bias has shape [2,5,4], expected [2, 5, 5] (dim 3)',
    );
    expect(() => fusedWindowAttention(q, q, q, tf.zeros([2, 5, 5]), tf.zeros([3, 5, 5]))).toThrow(
      'mask has shape [3,5,5], expected [windows, 5, 5] with windows dividing 4',
    );
  });

  it.skipIf(tierMissing(tier))('leaks no tensor, forward and backward', async () => {
    await tf.setBackend('wasm');
    const q = tensor([4, 2, 10, 4], 12);
    const bias = tensor([2, 10, 10], 13);
    const mask = shiftMask(2, 10, 14);
    const step = () =>
      tf.tidy(() => tf.grads((x: tf.Tensor, b: tf.Tensor) => fusedWindowAttention(x, x, x, b, mask).sum())([q, bias]));
    tf.dispose(step());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, bias, mask]);
  });
});
