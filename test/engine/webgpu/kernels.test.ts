// The fused WGSL kernels of the webgpu backend against the cpu backend (which runs the composed
// versions of the same ops): window attention with and without a shift mask (and its gradient
// through the fused forward), LayerNorm and GELU with their gradients, AdamW's first and later steps.
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../core/engine/backend.ts';
import { fusedAdamWUpdate, fusedGelu, fusedLayerNorm, fusedWindowAttention } from '../../../core/engine/kernels/index.ts';
import { Random } from '../../../core/engine/random.ts';
import { tf } from '../../../core/engine/tf.ts';
import { WEBGPU_KERNELS } from '../../../core/engine/webgpu/kernels.ts';
import { takeWebGpuErrors, webGpuMemory } from '../../../core/engine/webgpu/backend.ts';
import { webGpuSkipReason } from './available.ts';

const skip = webGpuSkipReason('test/engine/webgpu/kernels.test.ts');
afterAll(async () => {
  await initBackend('wasm');
});

function normal(shape: number[], seed: number, scale = 1): tf.Tensor {
  const random = new Random(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal() * scale),
    shape,
  );
}

/** Mask like the shifted windows': 0 or -100 per (window, query, key). */
function shiftMask(windows: number, n: number, seed: number): tf.Tensor {
  const random = new Random(seed);
  return tf.tensor(
    Float32Array.from({ length: windows * n * n }, () => (random.next() < 0.3 ? -100 : 0)),
    [windows, n, n],
  );
}

type Results = Map<string, { shape: number[]; data: Float32Array }>;

/** Runs every fused op (forward and backward) on the current backend; host copies by name. */
async function runAll(): Promise<Results> {
  // In a tidy as the model calls them (LayerNorm's saved statistics are released with the scope).
  const out = tf.tidy(() => compute());
  const results: Results = new Map();
  for (const [name, t] of Object.entries(out)) results.set(name, { shape: [...t.shape], data: (await t.data()) as Float32Array });
  tf.dispose(Object.values(out));
  return results;
}

function compute(): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  const [windows, batch, heads, n, dim] = [4, 2, 2, 18, 8];
  const q = normal([windows * batch, heads, n, dim], 1, 0.5);
  const k = normal([windows * batch, heads, n, dim], 2, 0.5);
  const v = normal([windows * batch, heads, n, dim], 3);
  const bias = normal([heads, n, n], 4, 0.2);
  const mask = shiftMask(windows, n, 5);
  const dy = normal([windows * batch, heads, n, dim], 6);
  out.attention = fusedWindowAttention(q, k, v, bias, null);
  out.attentionMasked = fusedWindowAttention(q, k, v, bias, mask);
  const attentionGrads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
    fusedWindowAttention(a, b, c, d, mask),
  )([q, k, v, bias], dy);
  attentionGrads.forEach((g, i) => (out[`attentionGrad${i}`] = g));

  const x = normal([5, 7, 24], 7, 2);
  const gamma = normal([24], 8);
  const beta = normal([24], 9);
  const dyNorm = normal([5, 7, 24], 10);
  out.layerNorm = fusedLayerNorm(x, gamma, beta, 1e-5);
  tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => fusedLayerNorm(a, b, c, 1e-5))([x, gamma, beta], dyNorm).forEach(
    (g, i) => (out[`layerNormGrad${i}`] = g),
  );
  out.gelu = fusedGelu(x);
  out.geluGrad = tf.grad((a: tf.Tensor) => fusedGelu(a))(x, dyNorm);

  const param = normal([6, 10], 11);
  const grad = normal([6, 10], 12, 0.1);
  const step = {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.05,
    correction1: 0.1,
    correction2Sqrt: Math.sqrt(0.001),
  };
  const first = fusedAdamWUpdate(param, grad, null, null, step);
  const second = fusedAdamWUpdate(first.param, grad, first.expAvg, first.expAvgSq, {
    ...step,
    weightDecay: 0,
    correction1: 0.19,
    correction2Sqrt: Math.sqrt(0.001999),
  });
  Object.assign(out, { adamParam: second.param, adamM: second.expAvg, adamV: second.expAvgSq, adamFirst: first.param });
  return out;
}

describe.skipIf(skip !== null)('fused WGSL kernels on webgpu', () => {
  it('are registered by name and equal the cpu backend, forward and backward, without leaking', async () => {
    await initBackend('cpu');
    const reference = await runAll();
    await initBackend('webgpu');
    for (const name of WEBGPU_KERNELS) expect(tf.getKernel(name, 'webgpu'), name).toBeDefined();
    await runAll(); // warm-up: compiles the pipelines
    const tensors = tf.memory().numTensors;
    const buffers = webGpuMemory().buffers;
    const got = await runAll();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(webGpuMemory().buffers).toBe(buffers);
    expect(takeWebGpuErrors(), 'WebGPU device errors').toEqual([]);
    for (const [name, ref] of reference) {
      const mine = got.get(name)!;
      expect(mine.shape, name).toEqual(ref.shape);
      let worst = 0;
      for (let i = 0; i < ref.data.length; i++) {
        worst = Math.max(worst, Math.abs(mine.data[i] - ref.data[i]) / (1e-5 + 1e-4 * Math.abs(ref.data[i])));
      }
      expect(worst, `${name}: worst error / (1e-5 + 1e-4 |ref|)`).toBeLessThanOrEqual(1);
    }
  });
});
