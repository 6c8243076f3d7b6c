import { describe, expect, it } from 'vitest';
import {
  clippedIndex,
  dropPathRates,
  effectiveWindow,
  modelGeometry,
  relativePositionIndex,
  shiftMask,
  stageGeometry,
} from '../../core/model/geometry.ts';
import { fixtureTensor, manifest } from './fixtures.ts';

describe('window geometry', () => {
  it('matches every stage of the official geometry for the visible config', () => {
    const cfg = manifest.config.backbone;
    const input = manifest.config.input_shape.slice(2);
    const stages = modelGeometry(input, cfg.patch_size, cfg.window_size, cfg.depths.length);
    stages.forEach((g, i) => {
      const ref = manifest.stage_geometry[i];
      expect(g.grid).toEqual(ref.tokens_DHW);
      expect(g.window).toEqual(ref.window);
      expect(g.shift).toEqual(ref.shift_for_odd_blocks);
      expect(g.padded).toEqual(ref.padded_DHW);
      expect(g.windowsPerClip).toBe(ref.windows_per_clip);
      expect(g.tokensPerWindow).toBe(ref.tokens_per_window);
      expect(g.shifted).toBe(ref.shifted_blocks_use_mask);
    });
  });

  it('clips with <= and keeps the shift of unclipped axes (Swin-T 32x224x224, SSv2 16x7x7)', () => {
    const swinT = modelGeometry([32, 224, 224], [2, 4, 4], [8, 7, 7], 4);
    expect(swinT.map((g) => g.windowsPerClip)).toEqual([128, 32, 8, 2]);
    expect(swinT[3].shift).toEqual([4, 0, 0]);
    expect(swinT.every((g) => g.tokensPerWindow === 392)).toBe(true);
    const ssv2 = modelGeometry([32, 224, 224], [2, 4, 4], [16, 7, 7], 4);
    expect(ssv2.slice(0, 3).map((g) => g.shift)).toEqual([
      [0, 3, 3],
      [0, 3, 3],
      [0, 3, 3],
    ]);
    expect(ssv2[3].shifted).toBe(false);
    expect(effectiveWindow([7, 7, 7], [8, 7, 7])).toEqual({ window: [7, 7, 7], shift: [0, 0, 0] });
    expect(stageGeometry([9, 8, 7], [8, 7, 7]).padded).toEqual([16, 14, 7]);
  });

  it('reproduces the relative position index of stage 0', () => {
    const ref = fixtureTensor('io.safetensors', 'relative_position_index_stage0');
    const index = relativePositionIndex(manifest.config.backbone.window_size);
    expect(Array.from(index)).toEqual(Array.from(ref.data));
  });

  it('takes index[:N, :N] of the full window for clipped windows', () => {
    const full = relativePositionIndex([2, 3, 3]);
    const clipped = clippedIndex(full, 18, 4);
    expect(Array.from(clipped)).toEqual([0, 1, 2, 3].flatMap((i) => [0, 1, 2, 3].map((j) => full[i * 18 + j])));
  });

  it('reproduces the 0/-100 shift masks of the official code', () => {
    const cfg = manifest.config.backbone;
    const stages = modelGeometry(manifest.config.input_shape.slice(2), cfg.patch_size, cfg.window_size, cfg.depths.length);
    for (const s of [0, 1, 2]) {
      const g = stages[s];
      const ref = fixtureTensor('masks.safetensors', `stage${s}_shift_mask`);
      expect(ref.shape).toEqual([g.windowsPerClip, g.tokensPerWindow, g.tokensPerWindow]);
      expect(Array.from(shiftMask(g.padded, g.window, g.shift))).toEqual(Array.from(ref.data));
    }
  });

  it('spreads drop path rates linearly over all blocks', () => {
    const rates = dropPathRates(0.1, [2, 2, 6, 2]);
    expect(rates.flat()).toHaveLength(12);
    expect(rates[0][0]).toBe(0);
    expect(rates[3][1]).toBeCloseTo(0.1, 12);
    expect(rates[2][0]).toBeCloseTo((0.1 * 4) / 11, 12);
  });
});
