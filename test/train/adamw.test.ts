import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../core/engine/tf.ts';
import { initBackend } from '../../core/engine/backend.ts';
import { AdamW, clipGradNorm } from '../../core/train/adamw.ts';
import { OFFICIAL_CUSTOM_KEYS, paramGroups } from '../../core/train/param-groups.ts';
import { fixture, manifest, toleranceRatio } from '../model/fixtures.ts';
import { webGpuSkipReason } from '../engine/webgpu/available.ts';
import { takeWebGpuErrors } from '../../core/engine/webgpu/backend.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

function variablesFrom(names: string[]): Map<string, tf.Variable> {
  const weights = fixture('weights.safetensors');
  const params = new Map<string, tf.Variable>();
  for (const name of names) {
    const host = weights.get(name);
    if (!host) throw new Error(`weights.safetensors lacks ${name}`);
    params.set(name, tf.variable(tf.tensor(host.data as Float32Array, host.shape, 'float32'), true, `adamw-test.${name}`));
  }
  return params;
}

const webgpuSkip = webGpuSkipReason('test/train/adamw.test.ts');
const backends = (['wasm', 'cpu', 'webgpu'] as const).filter((name) => name !== 'webgpu' || webgpuSkip === null);

describe.each(backends)('AdamW with the official groups on %s', (backend) => {
  let params: Map<string, tf.Variable>;
  beforeAll(async () => {
    await initBackend(backend);
  });
  afterAll(async () => {
    params?.forEach((p) => p.dispose());
    await initBackend('wasm');
  });

  it('matches torch.optim.AdamW after one step (adamw_step.safetensors, atol 1e-6)', async () => {
    const expected = fixture('adamw_step.safetensors');
    const names = [...expected.keys()];
    expect(names.length).toBeGreaterThan(5);
    params = variablesFrom(names);
    const groups = paramGroups(names, manifest.adamw.lr, manifest.adamw.weight_decay, OFFICIAL_CUSTOM_KEYS);
    const optimizer = new AdamW(params, groups, { betas: manifest.adamw.betas, eps: manifest.adamw.eps });
    const gradHosts = fixture('grads.safetensors');
    const grads = new Map(names.map((n) => [n, tf.tensor(gradHosts.get(n)!.data as Float32Array, gradHosts.get(n)!.shape)]));
    const before = tf.memory().numTensors;
    optimizer.step(grads, (group) => group.lr);
    // Only the two moments per parameter remain; every temporary was released.
    expect(tf.memory().numTensors - before).toBe(2 * names.length);
    for (const name of names) {
      const got = await params.get(name)!.data();
      const ratio = toleranceRatio(got, expected.get(name)!.data as Float32Array, 1e-6, 0);
      expect(ratio, name).toBeLessThanOrEqual(1);
    }
    grads.forEach((g) => g.dispose());
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(before - names.length);
  });

  it('round-trips its state so a restored optimizer continues identically', async () => {
    const make = (tag: string) => {
      const p = new Map([
        [
          'cls_head.fc_cls.weight',
          tf.variable(
            tf.tensor2d([
              [0.5, -1],
              [2, 0.25],
            ]),
            true,
            `${tag}.w`,
          ),
        ],
      ]);
      return { p, o: new AdamW(p, paramGroups(p.keys(), 0.1, 0.01, {}), { betas: [0.9, 0.999], eps: 1e-8 }) };
    };
    const a = make('state-a');
    const b = make('state-b');
    const grad = new Map([
      [
        'cls_head.fc_cls.weight',
        tf.tensor2d([
          [0.1, 0.2],
          [-0.3, 0.4],
        ]),
      ],
    ]);
    a.o.step(grad, (g) => g.lr);
    const saved = await a.o.state();
    b.p.get('cls_head.fc_cls.weight')!.assign(a.p.get('cls_head.fc_cls.weight')!);
    b.o.loadState(saved.steps, saved.tensors);
    a.o.step(grad, (g) => g.lr);
    b.o.step(grad, (g) => g.lr);
    expect(Array.from(await b.p.get('cls_head.fc_cls.weight')!.data())).toEqual(
      Array.from(await a.p.get('cls_head.fc_cls.weight')!.data()),
    );
    expect(b.o.steps).toBe(2);
    expect(() =>
      b.o.loadState(1, new Map([['exp_avg.cls_head.fc_cls.weight', saved.tensors.get('exp_avg.cls_head.fc_cls.weight')!]])),
    ).toThrow(/only one of/);
    for (const x of [a, b]) {
      x.o.dispose();
      x.p.forEach((v) => v.dispose());
    }
    grad.forEach((g) => g.dispose());
  });

  it('clips the global gradient norm like clip_grad_norm_, on the device', async () => {
    const grads = new Map([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor1d([0, 4])],
    ]);
    const before = tf.memory().numTensors;
    const clipped = clipGradNorm(grads, 1);
    expect((await clipped.norm.data())[0]).toBeCloseTo(5, 5);
    expect((await clipped.grads.get('a')!.data())[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    clipped.norm.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // Below the limit the factor is exactly 1 (PyTorch's clamp), so the values are unchanged.
    const values = await clipped.grads.get('b')!.data();
    const untouched = clipGradNorm(clipped.grads, 10);
    expect(Array.from(await untouched.grads.get('b')!.data())).toEqual(Array.from(values));
    untouched.norm.dispose();
    untouched.grads.forEach((g) => g.dispose());
    expect(tf.memory().numTensors).toBe(before - 2);
    // As many gradients as a model has (more than a WebGPU shader can bind at once).
    const many = clipGradNorm(new Map(Array.from({ length: 40 }, (_, i) => [`p${i}`, tf.tensor1d([1, 2])])), 100);
    expect((await many.norm.data())[0]).toBeCloseTo(Math.sqrt(200), 4);
    many.norm.dispose();
    many.grads.forEach((g) => g.dispose());
    if (backend === 'webgpu') expect(takeWebGpuErrors()).toEqual([]);
  });
});
