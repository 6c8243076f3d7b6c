import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Random } from '../../core/engine/random.ts';
import { applyPipeline, ssv2Train } from '../../core/data/pipeline.ts';
import {
  applyRandAugment,
  applyRandAugmentOp,
  drawRandAugment,
  randAugmentOps,
  ssv2RandAugment,
  type RandAugmentDraw,
  type RandAugmentOp,
} from '../../core/data/randaugment.ts';
import type { Clip } from '../../core/data/transforms.ts';

interface Golden {
  pillow: string;
  cval: number;
  frames: { name: string; width: number; height: number; input: string; cases: (RandAugmentOp & { data: string })[] }[];
}

// Written by test/data/golden/make-randaugment-golden.py with Pillow 9.4 (Debian's python3-pil).
const golden = JSON.parse(
  gunzipSync(readFileSync(new URL('./golden/randaugment.json.gz', import.meta.url))).toString(),
) as Golden;
const bytes = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));

function noiseFrame(width: number, height: number, seed: number): Uint8Array {
  const random = new Random(seed);
  return Uint8Array.from({ length: width * height * 3 }, () => random.int(256));
}

describe('RandAugment operations equal Pillow byte for byte', () => {
  for (const frame of golden.frames) {
    it(`${frame.name} ${frame.width}x${frame.height}: every operation of imgaug's list`, () => {
      const input = bytes(frame.input);
      const mismatches: string[] = [];
      for (const { data, ...op } of frame.cases) {
        const expected = bytes(data);
        const actual = applyRandAugmentOp(input, frame.width, frame.height, op, golden.cval);
        let differing = 0;
        for (let i = 0; i < expected.length; i++) if (expected[i] !== actual[i]) differing++;
        if (differing > 0 || actual.length !== expected.length)
          mismatches.push(`${JSON.stringify(op)}: ${differing} of ${expected.length} bytes differ`);
      }
      expect(mismatches).toEqual([]);
      expect(frame.cases.length).toBeGreaterThanOrEqual(38);
    });
  }

  it('covers every operation that Pillow defines (cutout and identity are checked below)', () => {
    const covered = new Set(golden.frames[0].cases.map((c) => c.op));
    expect(randAugmentOps.filter((op) => !covered.has(op))).toEqual(['identity', 'cutout']);
  });
});

describe('RandAugment draws (imgaug n=4, m=7)', () => {
  const draws = Array.from({ length: 400 }, (_, seed) => drawRandAugment(ssv2RandAugment, new Random(seed)));

  it('picks n distinct operations and covers all 18', () => {
    for (const draw of draws) {
      expect(draw.ops).toHaveLength(4);
      expect(new Set(draw.ops.map((o) => o.op)).size).toBe(4);
    }
    expect(new Set(draws.flatMap((d) => d.ops.map((o) => o.op))).size).toBe(18);
  });

  it('gives each operation the magnitude imgaug computes from m = 7', () => {
    const seen = new Map<string, Set<string>>();
    for (const op of draws.flatMap((d) => d.ops)) {
      const { op: name, ...params } = op;
      if (name === 'cutout') {
        const cut = op as Extract<RandAugmentOp, { op: 'cutout' }>;
        expect(cut.size).toBeCloseTo((7 * 20) / 32 / 30, 12);
        expect(cut.centerX).toBeGreaterThanOrEqual(0);
        expect(cut.centerX).toBeLessThan(1);
        continue;
      }
      const key = JSON.stringify(params, (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(6)) : v));
      seen.set(name, (seen.get(name) ?? new Set()).add(key));
    }
    const values = (name: string) => [...(seen.get(name) ?? [])].sort();
    expect(values('rotate')).toEqual(['{"degrees":-7}', '{"degrees":7}']);
    expect(values('posterize')).toEqual(['{"bits":7}']); // 8 - int(7 * 6 / 30)
    expect(values('solarize')).toEqual(['{"threshold":197}']); // 256 - int(7 * 256 / 30)
    for (const name of ['color', 'contrast', 'brightness', 'sharpness'])
      expect(values(name)).toEqual(['{"factor":0.79}', '{"factor":1.21}']);
    expect(values('shear-x')).toEqual(['{"degrees":-4.010705}', '{"degrees":4.010705}']);
    expect(values('translate-y')).toEqual(['{"fraction":-0.077}', '{"fraction":0.077}']);
    expect(values('equalize')).toEqual(['{}']);
  });

  it('flips half of the clips and crops each side by U(0, 7)/224', () => {
    const flips = draws.filter((d) => d.flip).length;
    expect(flips).toBeGreaterThan(160);
    expect(flips).toBeLessThan(240);
    const sides = draws.flatMap((d) => Object.values(d.crop));
    expect(Math.min(...sides)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...sides)).toBeLessThan(7 / 224);
    expect(Math.max(...sides)).toBeGreaterThan(6.5 / 224);
  });

  it('is deterministic given the seed', () => {
    expect(drawRandAugment(ssv2RandAugment, new Random(11))).toEqual(drawRandAugment(ssv2RandAugment, new Random(11)));
    expect(drawRandAugment(ssv2RandAugment, new Random(11))).not.toEqual(drawRandAugment(ssv2RandAugment, new Random(12)));
  });
});

describe('applying a draw to a clip', () => {
  const frame = noiseFrame(24, 16, 3);
  const clip: Clip = { width: 24, height: 16, frames: [frame, Uint8Array.from(frame), Uint8Array.from(frame)] };

  it('applies one draw to every frame alike and keeps the frame size', () => {
    for (let seed = 0; seed < 20; seed++) {
      const out = applyRandAugment(clip, drawRandAugment(ssv2RandAugment, new Random(seed)));
      expect([out.width, out.height, out.frames.length]).toEqual([24, 16, 3]);
      expect(out.frames[1]).toEqual(out.frames[0]);
      expect(out.frames[2]).toEqual(out.frames[0]);
    }
  });

  it('does nothing with no operations, no crop and no flip; flips first when drawn', () => {
    const none: RandAugmentDraw = { flip: false, crop: { top: 0, right: 0, bottom: 0, left: 0 }, ops: [], cval: 128 };
    expect(applyRandAugment(clip, none).frames[0]).toEqual(frame);
    const flipped = applyRandAugment(clip, { ...none, flip: true }).frames[0];
    expect(Array.from(flipped.subarray(0, 3))).toEqual(Array.from(frame.subarray(23 * 3, 24 * 3)));
  });

  it('cuts out a square of side size * height from truncated corners', () => {
    const grey = new Uint8Array(10 * 10 * 3).fill(7);
    const out = applyRandAugmentOp(grey, 10, 10, { op: 'cutout', centerX: 0.5, centerY: 0.25, size: 0.45 }, 128);
    const filled: string[] = [];
    for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) if (out[(y * 10 + x) * 3] === 128) filled.push(`${x},${y}`);
    // half side 2.25: x from int(2.75) = 2 to int(7.25) = 7, y from int(0.25) = 0 to int(4.75) = 4
    expect(filled).toHaveLength(5 * 4);
    expect([filled[0], filled.at(-1)]).toEqual(['2,0', '6,3']);
    expect(applyRandAugmentOp(grey, 10, 10, { op: 'identity' }, 128)).toBe(grey);
  });

  it('crops by the drawn fractions and resizes back', () => {
    const draw: RandAugmentDraw = { flip: false, crop: { top: 0.25, right: 0, bottom: 0, left: 0 }, ops: [], cval: 128 };
    const out = applyRandAugment(clip, draw);
    expect([out.width, out.height]).toEqual([24, 16]);
    expect(out.frames[0]).not.toEqual(frame);
  });
});

describe('the SSv2 train pipeline', () => {
  it('runs RandAugment after the crop and before normalisation, and traces the draw', () => {
    const video: Clip = { width: 40, height: 32, frames: Array.from({ length: 4 }, (_, i) => noiseFrame(40, 32, i)) };
    const spec = { ...ssv2Train({ clipLen: 4, shortSide: 32, cropSize: 24 }), randomErasing: undefined };
    const withAugment = applyPipeline(spec, video, new Random(5));
    expect(withAugment.trace.randAugment?.ops).toHaveLength(4);
    expect(withAugment.shape).toEqual([1, 3, 4, 24, 24]);
    const plain = applyPipeline({ ...spec, randAugment: undefined }, video, new Random(5));
    expect(plain.trace.randAugment).toBeUndefined();
    // Same crop box (drawn before RandAugment), different pixels.
    expect(plain.trace.boxes).toEqual(withAugment.trace.boxes);
    expect(Array.from(plain.data)).not.toEqual(Array.from(withAugment.data));
  });
});
