import { PARITY_DIR } from '../../shared-fixtures.ts';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backboneConfigSchema, type BackboneConfig } from '../../../core/model/config.ts';
import { loadCheckpoint } from '../../../core/model/weights/checkpoint.ts';
import { bicubicResize, inflate2dTo3d } from '../../../core/model/weights/inflate.ts';
import { readSafetensors } from '../../../core/model/weights/safetensors.ts';
import { maxAbsDifference } from './compare.ts';

const fixtures = PARITY_DIR;
interface InflationCase {
  case: { window_3d: number[]; patch_3d: number[]; embed_dim: number; depths: number[]; num_heads: number[]; window_2d: number };
  files: { checkpoint_2d: string; expected_3d: string };
}
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as {
  inflation: Record<'same' | 'bicubic', InflationCase>;
};

function configOf(entry: InflationCase): BackboneConfig {
  const { patch_3d, embed_dim, depths, num_heads, window_3d } = entry.case;
  return backboneConfigSchema.parse({ patch_size: patch_3d, embed_dim, depths, num_heads, window_size: window_3d });
}

// Tolerances from the manifest's suggested_tolerances.inflation: exact repeat/divide 1e-7, bicubic 1e-5.
describe.each([
  ['same', 1e-7],
  ['bicubic', 1e-5],
] as const)('inflating the %s-window 2-D fixture', (name, tolerance) => {
  const entry = manifest.inflation[name];
  const source = loadCheckpoint(join(fixtures, entry.files.checkpoint_2d));
  const expected = readSafetensors(join(fixtures, entry.files.expected_3d)).tensors;
  const { stateDict, report } = inflate2dTo3d(source.stateDict, configOf(entry));

  it('produces exactly the keys and shapes the official inflate_weights produced', () => {
    expect(source.layout).toBe('swin2d');
    expect([...stateDict.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, tensor] of expected) expect(stateDict.get(key)!.shape, key).toEqual(tensor.shape);
  });

  it(`matches every tensor within ${tolerance}`, () => {
    for (const [key, tensor] of expected) {
      const limit = key.endsWith('relative_position_bias_table') ? tolerance : 1e-7;
      expect(maxAbsDifference(stateDict.get(key)!, tensor), key).toBeLessThanOrEqual(limit);
    }
  });

  it('reports what it did as the official log does (index buffers dropped, head ignored)', () => {
    expect(report.inflated).toEqual(['patch_embed.proj.weight']);
    expect(report.tiled).toHaveLength(4);
    expect(report.resized).toHaveLength(name === 'bicubic' ? 4 : 0);
    if (name === 'bicubic') expect(report.resized[0]).toMatchObject({ from: [7, 7], to: [11, 11] });
    expect(report.ignored.map((entry) => entry.key)).toEqual(['head.weight', 'head.bias']);
    expect(report.dropped.filter((key) => key.includes('relative_position_index'))).toHaveLength(4);
    expect(report.dropped.filter((key) => key.includes('attn_mask')).length).toBeGreaterThan(0);
    expect(report.missing).toEqual([]);
    expect(report.mismatched).toEqual([]);
  });
});

describe('bicubic resize (PyTorch align_corners=False semantics)', () => {
  it('is the identity when the size does not change', () => {
    const plane = Float32Array.from({ length: 20 }, (_, i) => Math.sin(i));
    expect([...bicubicResize(plane, 4, 5, 4, 5)]).toEqual([...plane]);
  });

  it('keeps constants constant and weights the taps with the A = -0.75 kernel (worked by hand)', () => {
    const constant = bicubicResize(new Float32Array(9).fill(2.5), 3, 3, 7, 5);
    for (const value of constant) expect(value).toBeCloseTo(2.5, 6);
    // Ramp 0..3 upsampled to 8: output 3 sits at source 1.25 (taps 0..3, t = 0.25), whose kernel
    // weights are -0.10546875, 0.87890625, 0.26171875, -0.03515625, so the value is 1.296875 (not
    // 1.25: A = -0.75 does not reproduce linear functions, which is why a resize must match torch's A).
    const out = bicubicResize(Float32Array.from([0, 1, 2, 3]), 1, 4, 1, 8);
    expect(out[3]).toBeCloseTo(1.296875, 6);
    // Output 0 sits at source -0.25 (not clamped): taps -2..1 clamp to values [0, 0, 0, 1], t = 0.75,
    // so only the last weight (-0.10546875 by symmetry of the kernel) survives.
    expect(out[0]).toBeCloseTo(-0.10546875, 6);
  });
});

describe('inflation problems are reported, not thrown', () => {
  const entry = manifest.inflation.same;
  const source = loadCheckpoint(join(fixtures, entry.files.checkpoint_2d)).stateDict;

  it('flags a head-count mismatch (the official code would fail to load) and a wrong patch size', () => {
    const config = backboneConfigSchema.parse({ ...configOf(entry), num_heads: [4, 4], patch_size: [2, 2, 2] });
    const { report } = inflate2dTo3d(source, config);
    const keys = report.mismatched.map((item) => item.key);
    expect(keys).toContain('layers.0.blocks.0.attn.relative_position_bias_table');
    expect(keys).toContain('patch_embed.proj.weight');
    expect(report.mismatched.find((item) => item.key === 'layers.0.blocks.0.attn.relative_position_bias_table')!.reason).toMatch(
      /2 heads but the configured stage has 4/,
    );
  });

  it('lists parameters the 2-D file lacks and accepts "backbone."-prefixed 2-D keys', () => {
    const prefixed = new Map(
      [...source].filter(([key]) => key !== 'norm.weight').map(([key, tensor]) => [`backbone.${key}`, tensor]),
    );
    const { report, stateDict } = inflate2dTo3d(prefixed, configOf(entry));
    expect(report.missing).toEqual(['norm.weight']);
    expect(report.notes[0]).toMatch(/removed the "backbone\." prefix/);
    expect(stateDict.has('patch_embed.proj.weight')).toBe(true);
  });
});
