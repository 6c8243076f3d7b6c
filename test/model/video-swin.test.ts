import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { crossEntropy } from '../../core/engine/ops.ts';
import { Random } from '../../core/engine/random.ts';
import { tf } from '../../core/engine/tf.ts';
import { complexity } from '../../core/model/complexity.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { recognizerKeys } from '../../core/model/keys.ts';
import { VARIANTS } from '../../core/model/variants.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';

const clip = (seed: number, shape = [2, 3, 4, 32, 32]) => {
  const random = new Random(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal()),
    shape,
  );
};

describe('variants', () => {
  it('have the official parameter counts (fact sheet table 1)', () => {
    const count = (name: string) => {
      let total = 0;
      for (const spec of recognizerKeys(parseModelConfig(VARIANTS[name].config)).values())
        if (spec.kind === 'param') total += spec.shape.reduce((a, b) => a * b, 1);
      return total;
    };
    expect((count('swin_t') / 1e6).toFixed(2)).toBe('28.16');
    expect((count('swin_s') / 1e6).toFixed(2)).toBe('49.82');
    expect((count('swin_b') / 1e6).toFixed(2)).toBe('88.05');
    expect((count('swin_b_ssv2') / 1e6).toFixed(2)).toBe('88.83');
  });

  it('have the README FLOPs per 32x224x224 view within 0.5 % (LayerNorm/softmax elementwise work is not counted)', () => {
    const readme: Record<string, number> = { swin_t: 87.9, swin_s: 165.9, swin_b: 281.6, swin_b_ssv2: 320.6 };
    for (const [name, gflops] of Object.entries(readme)) {
      const ours =
        complexity(parseModelConfig(VARIANTS[name].config), { frames: 32, height: 224, width: 224 }).flopsPerView / 1e9;
      expect(Math.abs(ours - gflops) / gflops, name).toBeLessThan(0.005);
    }
  });

  it('reject inconsistent configs with the field, value and rule', () => {
    expect(() => createVideoSwin('swin_x')).toThrow(/unknown model variant "swin_x"; expected one of swin_t/);
    expect(() =>
      parseModelConfig({ backbone: { ...VARIANTS.micro.config.backbone, num_heads: [3, 2, 4, 8] }, num_classes: 4 }),
    ).toThrow(/num_heads.0: stage 0 has dim 16, which 3 heads do not divide \(received 3\)/);
    expect(() =>
      parseModelConfig({ backbone: { ...VARIANTS.micro.config.backbone, window_size: [2, 0, 4] }, num_classes: 4 }),
    ).toThrow(/window_size.1/);
  });
});

describe.each(['wasm', 'cpu'] as const)('VideoSwin on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('initialises officially: LayerNorm 1/0, zero biases, small linear weights, seeded', () => {
    const a = createVideoSwin('micro', { seed: 3 });
    const b = createVideoSwin('micro', { seed: 3 });
    expect(Array.from(a.params.get('backbone.norm.weight')!.dataSync()).every((v) => v === 1)).toBe(true);
    expect(Array.from(a.params.get('backbone.layers.0.blocks.0.mlp.fc1.bias')!.dataSync()).every((v) => v === 0)).toBe(true);
    const qkv = Array.from(a.params.get('backbone.layers.0.blocks.0.attn.qkv.weight')!.dataSync());
    const std = Math.sqrt(qkv.reduce((s, v) => s + v * v, 0) / qkv.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    expect(Array.from(b.params.get('cls_head.fc_cls.weight')!.dataSync())).toEqual(
      Array.from(a.params.get('cls_head.fc_cls.weight')!.dataSync()),
    );
    a.dispose();
    b.dispose();
  });

  it('returns logits, backbone output and attention with its window geometry', () => {
    const model = createVideoSwin('micro');
    const x = clip(1);
    const result = model.forward(x, { attention: [{ stage: 0, block: 1 }] });
    expect(result.logits.shape).toEqual([2, 4]);
    expect(result.backboneOut.shape).toEqual([2, 128, 2, 1, 1]);
    expect(result.attention).toHaveLength(1);
    const capture = result.attention[0];
    expect(capture.geometry).toMatchObject({ grid: [2, 8, 8], window: [2, 4, 4], shift: [0, 2, 2], windowsPerClip: 4 });
    expect(capture.shifted).toBe(true);
    expect(capture.probs.shape).toEqual([2 * 4, 1, 32, 32]);
    const rowSums = tf.tidy(() => tf.sum(capture.probs, -1).dataSync());
    expect(Math.max(...Array.from(rowSums, (v) => Math.abs(v - 1)))).toBeLessThan(1e-5);
    tf.dispose([x, result.logits, result.backboneOut, capture.probs]);
    model.dispose();
  });

  it('train mode: drop path and dropout follow the seeded source; eval is deterministic', () => {
    const model = createVideoSwin('micro', { backbone: { drop_path_rate: 0.5 } });
    const x = clip(2);
    const run = (seed: number) =>
      tf.tidy(() => Array.from(model.forward(x, { training: true, random: new Random(seed).uniform }).logits.dataSync()));
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
    expect(() => model.forward(x, { training: true })).toThrow(/needs options.random/);
    const evalA = tf.tidy(() => Array.from(model.predict(x).dataSync()));
    expect(tf.tidy(() => Array.from(model.predict(x).dataSync()))).toEqual(evalA);
    x.dispose();
    model.dispose();
  });

  it('a training step leaks no tensor', () => {
    const model = createVideoSwin('micro', { backbone: { drop_path_rate: 0.2 } });
    const x = clip(4);
    const random = new Random(5);
    const step = () => {
      const { value, grads } = model.gradients(() =>
        crossEntropy(model.forward(x, { training: true, random: random.uniform }).logits, [0, 3]),
      );
      expect(grads.size).toBe(model.params.size);
      tf.dispose([value, ...grads.values()]);
    };
    step(); // warm-up: the stage masks are cached on first use
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    tf.tidy(() => {
      model.forward(x, { attention: 'all', capture: { blocks: true, stages: true, patchEmbed: true } });
    });
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  it('inference keeps only what it returns (per-block scopes), with or without captures', () => {
    const model = createVideoSwin('micro');
    const x = clip(6);
    tf.tidy(() => {
      model.forward(x);
    }); // warm-up: masks are cached on first use
    const before = tf.memory().numTensors;
    const plain = model.forward(x);
    expect(tf.memory().numTensors - before).toBe(2); // logits + backboneOut
    const captured = model.forward(x, { attention: [{ stage: 1, block: 1 }], capture: { blocks: true } });
    expect(tf.memory().numTensors - before).toBe(2 + 2 + 1 + 8); // + logits, backboneOut, probs, 8 block outputs
    tf.dispose([
      plain.logits,
      plain.backboneOut,
      captured.logits,
      captured.backboneOut,
      captured.attention[0].probs,
      ...captured.blocks!.flat(),
    ]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  it('round-trips its state dict and explains what does not fit', () => {
    const a = createVideoSwin('micro', { seed: 1 });
    const b = createVideoSwin('micro', { seed: 2 });
    const state = a.stateDict();
    expect(state.get('backbone.layers.0.blocks.0.attn.relative_position_index')!.shape).toEqual([32, 32]);
    const report = b.loadStateDict(state, { strict: true });
    expect(report.loaded).toHaveLength(b.params.size);
    expect(Array.from(b.params.get('cls_head.fc_cls.weight')!.dataSync())).toEqual(
      Array.from(a.params.get('cls_head.fc_cls.weight')!.dataSync()),
    );

    const other = createVideoSwin('micro', { numClasses: 7 });
    expect(() => other.loadStateDict(state)).toThrow(
      /cls_head.fc_cls.weight: the model expects \[7,128\], the file has \[4,128\]/,
    );
    const partial = other.loadStateDict(state, { skipMismatched: true });
    expect(partial.mismatched.map((m) => m.key)).toEqual(['cls_head.fc_cls.weight', 'cls_head.fc_cls.bias']);
    state.delete('backbone.norm.bias');
    expect(() => b.loadStateDict(state, { strict: true })).toThrow(/missing in the file: backbone.norm.bias/);
    tf.dispose([...a.params.values(), ...b.params.values(), ...other.params.values()]);
    a.dispose();
  });
});
