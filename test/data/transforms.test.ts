import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Random } from '../../core/engine/random.ts';
import {
  centerCropBox,
  cropClip,
  flipClip,
  normalizeToNCTHW,
  randomErasing,
  randomResizedCropBox,
  resizeClip,
  shortSideSize,
  threeCropBoxes,
  type Clip,
} from '../../core/data/transforms.ts';
import {
  applyPipeline,
  k400Test,
  k400Train,
  k400Val,
  presetPipeline,
  sampleShape,
  smallClip,
  ssv2Train,
} from '../../core/data/pipeline.ts';

/** A clip whose pixel (x, y) of frame t holds (x, y, t) in its three channels. */
function coordinateClip(width: number, height: number, frames: number): Clip {
  return {
    width,
    height,
    frames: Array.from({ length: frames }, (_, t) => {
      const frame = new Uint8Array(width * height * 3);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) frame.set([x, y, t], (y * width + x) * 3);
      return frame;
    }),
  };
}

const gray = (values: number[][]): Clip => ({
  width: values[0].length,
  height: values.length,
  frames: [Uint8Array.from(values.flat().flatMap((value) => [value, value, value]))],
});
const firstChannel = (clip: Clip, frame = 0) => Array.from(clip.frames[frame].filter((_, i) => i % 3 === 0));

describe('Resize', () => {
  it('short-side sizes round half up as mmcv does', () => {
    // 454 * 256 / 340 = 341.835 -> int(342.335) = 342; 340 * (256/340) = 256
    expect(shortSideSize(454, 340, 256)).toEqual({ width: 342, height: 256 });
    expect(shortSideSize(320, 240, 256)).toEqual({ width: 341, height: 256 }); // 341.33
    // 513 * 0.5 = 256.5 -> int(257.0) = 257 (numpy's half-to-even would give 256)
    expect(shortSideSize(513, 512, 256)).toEqual({ width: 257, height: 256 });
    expect(shortSideSize(240, 427, 224)).toEqual({ width: 224, height: 399 }); // 427 * 224/240 = 398.53
  });

  it('matches OpenCV INTER_LINEAR on small hand-computed cases', () => {
    // 2 -> 4: x = (d + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    expect(firstChannel(resizeClip(gray([[0, 100]]), 4, 1))).toEqual([0, 25, 75, 100]);
    // 2 -> 3: the middle sample sits at 0.5: weights 1024/1024 -> (255 * 1024 * 2048 + 2^21) >> 22 = 128
    expect(firstChannel(resizeClip(gray([[0, 255]]), 3, 1))).toEqual([0, 128, 255]);
    // 4 -> 2 (no anti-aliasing): x = 2d + 0.5 samples midway between pixel pairs
    expect(
      firstChannel(
        resizeClip(
          gray([
            [0, 10, 20, 30],
            [40, 50, 60, 70],
          ]),
          2,
          1,
        ),
      ),
    ).toEqual([25, 45]);
  });

  it('rounds like OpenCV in every byte of a row, the tail included', () => {
    // 2 rows (gray 1 over gray 5) -> 5 rows, 6 pixels wide (18 bytes).
    // Row 3: y = 3.5 * 2/5 - 0.5 = 0.9 (float32) -> weights round(0.1 * 2048) = 205 and 1843.
    // Horizontal pass is the identity: S0 = 1 * 2048, S1 = 5 * 2048.
    // OpenCV: ((2048 >> 4) * 205 >> 16) + ((10240 >> 4) * 1843 >> 16) = 0 + 17; (17 + 2) >> 2 = 4
    // (not round(4.6) = 5): cv2.resize of OpenCV 4.6 gives 4 in all 18 bytes, and in all 1800 of
    // a 600-pixel row.
    const source: Clip = { width: 6, height: 2, frames: [Uint8Array.from({ length: 36 }, (_, i) => (i < 18 ? 1 : 5))] };
    const row3 = resizeClip(source, 6, 5).frames[0].subarray(3 * 18, 4 * 18);
    expect(Array.from(row3)).toEqual(new Array(18).fill(4));
    expect(Array.from(resizeClip(source, 6, 5, { left: 4, top: 3, width: 2, height: 1 }).frames[0])).toEqual([4, 4, 4, 4, 4, 4]);
  });

  it('equals cv2.resize (OpenCV 4.6, INTER_LINEAR) byte for byte', () => {
    // Written by test/data/golden/make-resize-golden.py with Debian's python3-opencv.
    const golden = JSON.parse(gunzipSync(readFileSync(new URL('./golden/resize.json.gz', import.meta.url))).toString()) as {
      cases: {
        name: string;
        width: number;
        height: number;
        targetWidth: number;
        targetHeight: number;
        input: string;
        output: string;
      }[];
    };
    const mismatches: string[] = [];
    for (const c of golden.cases) {
      const expected = Buffer.from(c.output, 'base64');
      const actual = resizeClip(
        { width: c.width, height: c.height, frames: [new Uint8Array(Buffer.from(c.input, 'base64'))] },
        c.targetWidth,
        c.targetHeight,
      ).frames[0];
      let differing = 0;
      for (let i = 0; i < expected.length; i++) if (expected[i] !== actual[i]) differing++;
      if (differing > 0 || expected.length !== actual.length)
        mismatches.push(`${c.name} ${c.width}x${c.height} -> ${c.targetWidth}x${c.targetHeight}: ${differing} bytes differ`);
    }
    expect(golden.cases.length).toBeGreaterThanOrEqual(40);
    expect(mismatches).toEqual([]);
  });

  it('keeps a constant image constant and a same-size resize unchanged', () => {
    const clip = coordinateClip(13, 7, 2);
    expect(resizeClip(clip, 13, 7).frames).toEqual(clip.frames);
    const flat: Clip = { width: 9, height: 5, frames: [new Uint8Array(9 * 5 * 3).fill(77)] };
    expect(resizeClip(flat, 31, 17).frames[0].every((value) => value === 77)).toBe(true);
  });

  it('computing only a region equals resizing fully and cropping', () => {
    const random = new Random(4);
    const clip: Clip = { width: 37, height: 23, frames: [Uint8Array.from({ length: 37 * 23 * 3 }, () => random.int(256))] };
    const box = { left: 5, top: 3, width: 20, height: 17 };
    expect(resizeClip(clip, 50, 31, box).frames).toEqual(cropClip(resizeClip(clip, 50, 31), box).frames);
  });
});

describe('crops and flip', () => {
  it('CenterCrop uses floor division offsets', () => {
    // (342 - 224) // 2 = 59, (256 - 224) // 2 = 16
    expect(centerCropBox(342, 256, 224, 224)).toEqual({ left: 59, top: 16, width: 224, height: 224 });
    expect(() => centerCropBox(100, 100, 224, 224)).toThrow(/224x224 does not fit a 100x100 frame/);
  });

  it('ThreeCrop gives start, end, middle along the long side', () => {
    // step = (398 - 224) // 2 = 87: offsets 0, 174, 87
    expect(threeCropBoxes(398, 224, 224, 224).map((box) => box.left)).toEqual([0, 174, 87]);
    expect(threeCropBoxes(224, 300, 224, 224).map((box) => box.top)).toEqual([0, 76, 38]);
    expect(() => threeCropBoxes(300, 300, 224, 224)).toThrow(/needs one side equal/);
  });

  it('crop copies the right pixels and flip mirrors every frame', () => {
    const clip = coordinateClip(6, 4, 2);
    const cropped = cropClip(clip, { left: 2, top: 1, width: 3, height: 2 });
    expect(Array.from(cropped.frames[1].slice(0, 3))).toEqual([2, 1, 1]);
    expect(Array.from(cropped.frames[1].slice(-3))).toEqual([4, 2, 1]);
    const flipped = flipClip(clip);
    expect(Array.from(flipped.frames[0].slice(0, 3))).toEqual([5, 0, 0]);
    expect(flipClip(flipped).frames).toEqual(clip.frames);
    expect(() => cropClip(clip, { left: 4, top: 0, width: 3, height: 1 })).toThrow(/does not fit a 6x4 frame/);
  });

  it('RandomResizedCrop boxes fit, repeat with the seed, and fall back to the centred square', () => {
    for (let seed = 0; seed < 200; seed++) {
      const box = randomResizedCropBox(342, 256, new Random(seed));
      expect(box.left + box.width).toBeLessThanOrEqual(342);
      expect(box.top + box.height).toBeLessThanOrEqual(256);
      expect(box.width * box.height).toBeGreaterThanOrEqual(Math.floor(0.08 * 342 * 256 * 0.9));
      expect(box.width / box.height).toBeGreaterThan(0.7);
      expect(box.width / box.height).toBeLessThan(1.4);
      expect(randomResizedCropBox(342, 256, new Random(seed))).toEqual(box);
    }
    // An area range above the frame never fits: centred square of side 256, left = (342 - 256) // 2 = 43
    expect(randomResizedCropBox(342, 256, new Random(1), [2, 3])).toEqual({ left: 43, top: 0, width: 256, height: 256 });
  });
});

describe('Normalize and FormatShape', () => {
  it('computes (x - mean) / std in float32 into NCTHW', () => {
    const clip = coordinateClip(3, 2, 4);
    const { data, shape } = normalizeToNCTHW(clip, 2);
    expect(shape).toEqual([2, 3, 2, 2, 3]);
    // view 1, channel 2 (holds t), time 1 -> frame 3, pixel (x=2, y=1): (3 - 103.53) / 57.375
    const index = (((1 * 3 + 2) * 2 + 1) * 2 + 1) * 3 + 2;
    expect(data[index]).toBeCloseTo((3 - 103.53) / 57.375, 6);
    // channel 0 holds x: (2 - 123.675) / 58.395
    expect(data[(((1 * 3 + 0) * 2 + 1) * 2 + 1) * 3 + 2]).toBeCloseTo((2 - 123.675) / 58.395, 6);
    expect(() => normalizeToNCTHW(clip, 3)).toThrow(/4 frames is not a multiple of clip length 3/);
    // The mirrored pass equals flipping first.
    expect(normalizeToNCTHW(clip, 2, undefined, undefined, undefined, 0, true).data).toEqual(
      normalizeToNCTHW(flipClip(clip), 2).data,
    );
  });

  it('random erasing zeroes one box, the same on every frame', () => {
    const data = new Float32Array(1 * 3 * 4 * 20 * 20).fill(1);
    let box;
    for (let seed = 0; !box; seed++) box = randomErasing(data, [1, 3, 4, 20, 20], new Random(seed), 1);
    const zeros = data.reduce((count, value) => count + (value === 0 ? 1 : 0), 0);
    expect(zeros).toBe(box.width * box.height * 3 * 4);
    expect(data[box.top * 20 + box.left]).toBe(0);
    expect(data[3 * 400 + box.top * 20 + box.left]).toBe(0);
  });
});

describe('pipelines', () => {
  it('presets have the recipe shapes and take overrides', () => {
    expect(sampleShape(k400Train())).toEqual([1, 3, 32, 224, 224]);
    expect(sampleShape(k400Test())).toEqual([12, 3, 32, 224, 224]);
    expect(sampleShape(k400Val({ clipLen: 8, cropSize: 112 }))).toEqual([1, 3, 8, 112, 112]);
    expect(sampleShape(smallClip('train', { cropSize: 32 }))).toEqual([1, 3, 8, 32, 32]);
    expect(ssv2Train().flipRatio).toBe(0);
    expect(sampleShape(presetPipeline('ssv2', 'test', { clipLen: 16 }))).toEqual([3, 3, 16, 224, 224]);
    expect(() => presetPipeline('k400', 'train', { cropSize: 0 })).toThrow(
      /pipeline.cropSize: expected an integer >= 1, received 0/,
    );
    expect(() => presetPipeline('small', 'val', { shortSide: 20, cropSize: 32 })).toThrow(
      /pipeline.shortSide: must be at least the crop size 32, received 20/,
    );
    expect(ssv2Train().randAugment).toEqual({ n: 4, m: 7, cval: 128, flipRatio: 0.5 });
    expect(k400Train().randAugment).toBeUndefined();
    expect(presetPipeline('ssv2', 'train', { randAugment: null }).randAugment).toBeUndefined();
    expect(() => presetPipeline('ssv2', 'val', { randAugment: { n: 2, m: 9, cval: 128, flipRatio: 0 } })).toThrow(
      /pipeline.randAugment: only train pipelines augment, received it for a val pipeline/,
    );
    expect(() => presetPipeline('k400', 'train', { randAugment: { n: 19, m: 9, cval: 128, flipRatio: 0 } })).toThrow(
      /pipeline.randAugment.n: expected an integer in \[0, 18\], received 19/,
    );
  });

  it('test views are ordered crops outermost, then clips, then time', () => {
    // 2 clips of 2 frames on a 6x4 video; three crops of 4 along the width: left 0, 2, 1
    const spec = k400Test({ clipLen: 2, numClips: 2, shortSide: 4, cropSize: 4 });
    const clip = coordinateClip(6, 4, 4);
    const { data, shape, trace } = applyPipeline(spec, clip, new Random(0));
    expect(shape).toEqual([6, 3, 2, 4, 4]);
    expect(trace.boxes.map((box) => box.left)).toEqual([0, 2, 1]);
    const plane = 16;
    const pixel = (view: number, channel: number, t: number) => data[((view * 3 + channel) * 2 + t) * plane];
    const bytes = (value: number, channel: number) =>
      0 + Math.round(value * [58.395, 57.12, 57.375][channel] + [123.675, 116.28, 103.53][channel]);
    // view = crop * 2 + clip: x of the top-left pixel is the crop's left, t is clip * 2 + time
    const seen = Array.from({ length: 6 }, (_, view) => [
      bytes(pixel(view, 0, 0), 0),
      bytes(pixel(view, 2, 0), 2),
      bytes(pixel(view, 2, 1), 2),
    ]);
    expect(seen).toEqual([
      [0, 0, 1],
      [0, 2, 3],
      [2, 0, 1],
      [2, 2, 3],
      [1, 0, 1],
      [1, 2, 3],
    ]);
  });

  it('train pipeline is deterministic for a seed and flips about half the time', () => {
    const spec = k400Train({ clipLen: 2, shortSide: 16, cropSize: 8 });
    const clip = coordinateClip(24, 18, 2);
    const a = applyPipeline(spec, clip, new Random(5));
    const b = applyPipeline(spec, clip, new Random(5));
    expect(a.data).toEqual(b.data);
    expect(a.trace).toEqual(b.trace);
    let flips = 0;
    for (let seed = 0; seed < 200; seed++) flips += applyPipeline(spec, clip, new Random(seed)).trace.flipped ? 1 : 0;
    expect(flips).toBeGreaterThan(70);
    expect(flips).toBeLessThan(130);
  });
});
