import { describe, expect, it } from 'vitest';
import { cosineEpochLr, learningRate, type ScheduleConfig } from '../../core/train/schedule.ts';
import { customKeyOrder, OFFICIAL_CUSTOM_KEYS, paramGroup } from '../../core/train/param-groups.ts';
import { manifest } from '../model/fixtures.ts';

// Fact sheet 6.4 worked example: Swin-T, base 1e-3, 30 epochs, 1000 iterations per epoch.
const swinT: ScheduleConfig = { epochs: 30, iterationsPerEpoch: 1000, minLr: 0, warmupEpochs: 2.5, warmupRatio: 0.1 };

describe('cosine schedule with linear warm-up (mmcv)', () => {
  it('reproduces the worked example of the fact sheet', () => {
    const cases: [number, number][] = [
      [0, 1.0e-4],
      [500, 2.8e-4],
      [1000, 4.59e-4],
      [2499, 9.89e-4],
      [3000, 9.76e-4],
      [15_000, 5.0e-4],
      [29_000, 2.74e-6],
    ];
    for (const [iteration, expected] of cases) {
      const lr = learningRate(1e-3, iteration, swinT);
      // The sheet rounds to three significant digits.
      expect(Math.abs(lr - expected) / expected, `iteration ${iteration}: ${lr}`).toBeLessThan(0.006);
    }
  });

  it('is constant within an epoch after warm-up and scales every group proportionally', () => {
    expect(learningRate(1e-3, 3000, swinT)).toBe(learningRate(1e-3, 3999, swinT));
    expect(learningRate(1e-3, 4000, swinT)).toBeLessThan(learningRate(1e-3, 3999, swinT));
    expect(learningRate(1e-4, 1234, swinT) / learningRate(1e-3, 1234, swinT)).toBeCloseTo(0.1, 12);
  });

  it('keeps a fractional warm-up length as mmcv does', () => {
    const short: ScheduleConfig = { epochs: 4, iterationsPerEpoch: 3, minLr: 0, warmupEpochs: 2.5, warmupRatio: 0.1 };
    // warm-up is 7.5 iterations: iteration 7 is still warming up, 8 is not.
    expect(learningRate(1, 7, short)).toBeCloseTo(cosineEpochLr(1, 2, 4) * (1 - (1 - 7 / 7.5) * 0.9), 12);
    expect(learningRate(1, 8, short)).toBe(cosineEpochLr(1, 2, 4));
  });

  it('honours an absolute min_lr', () => {
    expect(cosineEpochLr(1e-3, 0, 10, 1e-5)).toBeCloseTo(1e-3, 15);
    expect(cosineEpochLr(1e-3, 10, 10, 1e-5)).toBeCloseTo(1e-5, 15);
  });
});

describe('official parameter groups (first match wins)', () => {
  it('tries the longest key first, alphabetical among equals', () => {
    expect(customKeyOrder({ norm: {}, backbone: {}, relative_position_bias_table: {}, absolute_pos_embed: {} })).toEqual([
      'relative_position_bias_table',
      'absolute_pos_embed',
      'backbone',
      'norm',
    ]);
  });

  it('matches every parameter group of the parity manifest', () => {
    const groups = manifest.adamw.param_groups as Record<
      string,
      { matched_key: string | null; lr: number; weight_decay: number }
    >;
    const names = Object.keys(groups);
    expect(names.length).toBeGreaterThan(100);
    for (const name of names) {
      const group = paramGroup(name, manifest.adamw.lr, manifest.adamw.weight_decay, OFFICIAL_CUSTOM_KEYS);
      expect(group.matchedKey, name).toBe(groups[name].matched_key);
      expect(group.lr, name).toBeCloseTo(groups[name].lr, 15);
      expect(group.weightDecay, name).toBeCloseTo(groups[name].weight_decay, 15);
    }
  });
});
