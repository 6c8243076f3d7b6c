import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastKernelStatus, fusedAdamWUpdate, uninstallFastKernels, type AdamWStep } from '../../../core/engine/kernels/index.ts';
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

/** PyTorch's AdamW written out independently (decoupled decay, bias corrections). */
function reference(param: tf.Tensor, grad: tf.Tensor, m0: tf.Tensor | null, v0: tf.Tensor | null, s: AdamWStep): tf.Tensor[] {
  const m = (m0 ?? tf.zerosLike(param)).mul(s.beta1).add(grad.mul(1 - s.beta1));
  const v = (v0 ?? tf.zerosLike(param)).mul(s.beta2).add(grad.square().mul(1 - s.beta2));
  const p = param.mul(1 - s.lr * s.weightDecay).sub(
    m
      .div(s.correction1)
      .div(
        v
          .div(s.correction2Sqrt ** 2)
          .sqrt()
          .add(s.eps),
      )
      .mul(s.lr),
  );
  return [p, m, v];
}

describe.each(TIERS)('fused AdamW update on the %s tier against the cpu backend', (tier) => {
  beforeAll(async () => {
    if (!tierMissing(tier)) await useTier(tier);
  });
  afterAll(() => uninstallFastKernels());

  const settings = (step: number, weightDecay: number): AdamWStep => ({
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay,
    correction1: 1 - 0.9 ** step,
    correction2Sqrt: Math.sqrt(1 - 0.999 ** step),
  });

  it.skipIf(tierMissing(tier))('first step (no moments) and a later step, with and without weight decay', async () => {
    expect(fastKernelStatus().kernels.includes('VswinAdamW')).toBe(true);
    for (const [step, decay, shape] of [
      [1, 0.05, [40000]],
      [7, 0, [3, 5, 7]],
      [3, 0.02, [1]],
    ] as const) {
      const inputs = () =>
        [
          tensor([...shape], 1),
          tensor([...shape], 2, 0.1),
          step > 1 ? tensor([...shape], 3, 0.01) : null,
          step > 1 ? tensor([...shape], 4, 0.001).abs() : null,
        ] as const;
      await expectSameOnBoth(
        () => reference(...inputs(), settings(step, decay)),
        { atol: 1e-7, rtol: 1e-5 },
        `adamw step ${step} decay ${decay}`,
        () => {
          const next = fusedAdamWUpdate(...inputs(), settings(step, decay));
          return [next.param, next.expAvg, next.expAvgSq];
        },
      );
    }
  });

  it.skipIf(tierMissing(tier))('refuses mismatched shapes or a single moment', async () => {
    await tf.setBackend('wasm');
    const p = tf.zeros([4]);
    expect(() => fusedAdamWUpdate(p, tf.zeros([5]), null, null, settings(1, 0))).toThrow(
      "fusedAdamWUpdate: grad [5] and both moments (or neither) must have the parameter's shape [4]",
    );
    expect(() => fusedAdamWUpdate(p, p, p, null, settings(1, 0))).toThrow(/both moments \(or neither\)/);
  });
});
