import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastKernelStatus, fusedGelu, fusedLayerNorm, uninstallFastKernels } from '../../../core/engine/kernels/index.ts';
import { tf } from '../../../core/engine/tf.ts';
import { expectSameOnBoth, seeded, tierMissing, TIERS, useTier } from './compare.ts';

function tensor(shape: number[], seed: number, scale = 1, shift = 0): tf.Tensor {
  return tf
    .tensor(
      seeded(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
      shape,
    )
    .mul(scale)
    .add(shift);
}

/** References written out with plain ops and differentiated by tfjs's autodiff. */
function layerNormReference(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).div(variance.add(eps).sqrt()).mul(gamma).add(beta);
}
function geluReference(x: tf.Tensor): tf.Tensor {
  return x.mul(0.5).mul(tf.erf(x.div(Math.SQRT2)).add(1));
}

describe.each(TIERS)('fused LayerNorm and GELU on the %s tier against the cpu backend', (tier) => {
  beforeAll(async () => {
    if (!tierMissing(tier)) await useTier(tier);
  });
  afterAll(() => uninstallFastKernels());

  const shapes = [
    [7, 96],
    [2, 3, 5, 33],
    [1, 1],
    [300, 768],
  ];

  it.skipIf(tierMissing(tier))('layer norm forward and gradients in x, gamma and beta (offset inputs, odd widths)', async () => {
    expect(fastKernelStatus().kernels).toEqual(
      expect.arrayContaining(['VswinLayerNorm', 'VswinLayerNormGrad', 'VswinGelu', 'VswinGeluGrad']),
    );
    for (const shape of shapes) {
      const c = shape[shape.length - 1];
      const inputs = () => [tensor(shape, 1, 3, 5), tensor([c], 2, 1, 1), tensor([c], 3)] as const;
      const weight = () => tensor(shape, 4);
      await expectSameOnBoth(
        () => layerNormReference(...inputs()),
        { atol: 2e-5, rtol: 1e-4 },
        `layer norm [${shape}]`,
        () => fusedLayerNorm(...inputs()),
      );
      const grads = (op: typeof layerNormReference) => () =>
        tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => op(x, g, b).mul(weight()).sum())([...inputs()]);
      await expectSameOnBoth(
        grads(layerNormReference),
        { atol: 5e-5, rtol: 1e-3 },
        `layer norm grads [${shape}]`,
        grads(fusedLayerNorm),
      );
    }
  });

  it.skipIf(tierMissing(tier))('gelu forward and gradient', async () => {
    for (const shape of [[70000], [3, 17], [1]]) {
      const x = () => tensor(shape, 5, 6);
      await expectSameOnBoth(
        () => geluReference(x()),
        { atol: 1e-6, rtol: 1e-5 },
        `gelu [${shape}]`,
        () => fusedGelu(x()),
      );
      const grads = (op: typeof geluReference) => () => tf.grad((input: tf.Tensor) => op(input).mul(tensor(shape, 6)).sum())(x());
      await expectSameOnBoth(grads(geluReference), { atol: 1e-6, rtol: 1e-5 }, `gelu grad [${shape}]`, grads(fusedGelu));
    }
  });

  it.skipIf(tierMissing(tier))('refuses mismatched gamma/beta and non-float input, and leaks nothing', async () => {
    await tf.setBackend('wasm');
    expect(() => fusedLayerNorm(tf.zeros([2, 4]), tf.zeros([3]), tf.zeros([4]))).toThrow(
      'fusedLayerNorm: gamma [3] and beta [4] must both have shape [4] (the last axis of x [2,4])',
    );
    expect(() => fusedGelu(tf.zeros([2], 'int32'))).toThrow('fusedGelu: x must be float32, got int32');
    const x = tensor([6, 8], 7);
    const gamma = tensor([8], 8);
    const beta = tensor([8], 9);
    const step = () =>
      tf.tidy(() => [
        fusedGelu(fusedLayerNorm(x, gamma, beta)),
        ...tf.grads((a: tf.Tensor, g: tf.Tensor) => fusedGelu(fusedLayerNorm(a, g, beta)).sum())([x, gamma]),
      ]);
    tf.dispose(step());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(step());
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, gamma, beta]);
  });
});
