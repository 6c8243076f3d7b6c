// Tiny in-memory datasets and configs for the training tests: fast, deterministic, learnable.
import { Random } from '../../core/engine/random.ts';
import type { BatchSource, TrainBatch } from '../../core/train/trainer.ts';
import { parseRunConfig, type RunConfig, type RunConfigInput } from '../../core/train/run-config.ts';

export const CLIP: [number, number, number] = [4, 16, 16]; // T, H, W

/**
 * `count` clips of `classes` classes: noise plus a class-specific brightness per channel, so a
 * tiny model separates them within a few epochs. Shuffled per epoch from (seed, epoch) only.
 */
export function memorySource(options: {
  count: number;
  classes: number;
  batchSize: number;
  seed: number;
  shuffle?: boolean;
  poison?: boolean;
}): BatchSource {
  const [t, h, w] = CLIP;
  const size = 3 * t * h * w;
  const random = new Random(options.seed);
  const clips: { data: Float32Array; label: number }[] = [];
  for (let i = 0; i < options.count; i++) {
    const label = i % options.classes;
    const data = new Float32Array(size);
    for (let c = 0; c < 3; c++) {
      const offset = ((label + c) % options.classes) / Math.max(1, options.classes - 1) - 0.5;
      for (let k = 0; k < t * h * w; k++) data[c * t * h * w + k] = offset * 2 + random.normal() * 0.5;
    }
    if (options.poison && i === 0) data[0] = Number.NaN;
    clips.push({ data, label });
  }
  const batchesPerEpoch = Math.ceil(options.count / options.batchSize);
  return {
    batchesPerEpoch,
    async *batches(epoch: number): AsyncIterable<TrainBatch> {
      const order = clips.map((_, i) => i);
      if (options.shuffle !== false) {
        const shuffler = new Random(options.seed * 7919 + epoch);
        for (let i = order.length - 1; i > 0; i--) {
          const j = shuffler.int(i + 1);
          [order[i], order[j]] = [order[j], order[i]];
        }
      }
      for (let b = 0; b < batchesPerEpoch; b++) {
        const members = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
        const input = new Float32Array(members.length * size);
        members.forEach((m, i) => input.set(clips[m].data, i * size));
        yield { input, shape: [members.length, 3, t, h, w], labels: Int32Array.from(members.map((m) => clips[m].label)) };
      }
    },
  };
}

export function tinyConfig(overrides: Partial<RunConfigInput> = {}): RunConfig {
  return parseRunConfig({
    model: { variant: 'micro', num_classes: 3, drop_path_rate: 0.1, head_dropout: 0.2 },
    data: { train_ann: '/unused/train.txt', root: '/unused', pipeline: { preset: 'small' } },
    optimizer: { lr: 2e-3, weight_decay: 0.02, paramwise: 'none' },
    schedule: { warmup_epochs: 0.5 },
    epochs: 2,
    batch_size: 4,
    update_interval: 1,
    seed: 3,
    ...overrides,
  });
}
