import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Random } from '../../core/engine/random.ts';
import { parseAnnotationText, parseLabelMap } from '../../core/data/annotations.ts';
import { probeVideo } from '../../core/data/decode.ts';
import { directionNames, generateSyntheticDataset, syntheticFrames } from '../../core/data/synth.ts';
import { temporaryFolder } from './fixtures.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** Pixels of the checkered square: pure black/white, which the coloured texture never uses. */
function squareMask(frame: Uint8Array): Uint8Array {
  const mask = new Uint8Array(frame.length / 3);
  for (let p = 0; p < mask.length; p++) {
    const [r, g, b] = [frame[p * 3], frame[p * 3 + 1], frame[p * 3 + 2]];
    mask[p] = r === g && g === b && (r === 250 || r === 10) ? 1 : 0;
  }
  return mask;
}

function roll(mask: Uint8Array, size: number, dx: number, dy: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      out[((((y + dy) % size) + size) % size) * size + ((((x + dx) % size) + size) % size)] = mask[y * size + x];
  return out;
}

describe('synthetic motion videos', () => {
  it('moves the same square in the class direction, wrapping around, over a static texture', () => {
    const size = 32;
    const steps: Record<string, [number, number]> = { right: [2, 0], up: [0, -2], left: [-2, 0], down: [0, 2] };
    expect(directionNames(4)).toEqual(['right', 'up', 'left', 'down']);
    const squareSizes = new Set<number>();
    directionNames(4).forEach((name, label) => {
      const frames = syntheticFrames((2 * Math.PI * label) / 4, 12, size, size, new Random(label + 100));
      const masks = frames.map(squareMask);
      for (let t = 0; t + 1 < frames.length; t++) {
        expect(roll(masks[t], size, ...steps[name])).toEqual(masks[t + 1]);
        squareSizes.add(masks[t].reduce((a, b) => a + b, 0));
      }
      // Outside the square the background never changes.
      const first = frames[0];
      const last = frames[frames.length - 1];
      const union = masks[0].map((value, p) => value | masks[masks.length - 1][p]);
      for (let p = 0; p < union.length; p++)
        if (!union[p]) expect(last.subarray(p * 3, p * 3 + 3)).toEqual(first.subarray(p * 3, p * 3 + 3));
    });
    // Same square (8x8 = 64 pixels) in every frame of every class: one frame cannot tell the class.
    expect([...squareSizes]).toEqual([64]);
  });

  it('writes decodable videos, stratified lists and a label map', async () => {
    const folder = await temporaryFolder('synth');
    cleanups.push(folder.remove);
    const dataset = await generateSyntheticDataset({
      outDir: folder.path,
      classes: 3,
      perClass: 5,
      seed: 4,
      frames: 16,
      size: 32,
    });
    expect(dataset.classes).toEqual(['right', 'angle-120', 'angle-240']);
    expect(dataset.files).toHaveLength(15);
    const info = await probeVideo(join(dataset.root, dataset.files[0].path));
    expect(info).toMatchObject({ kind: 'video', codec: 'h264', width: 32, height: 32, totalFrames: 16 });
    const train = parseAnnotationText(await readFile(dataset.annotations.train, 'utf8'), { format: 'video' });
    const val = parseAnnotationText(await readFile(dataset.annotations.val, 'utf8'), { format: 'video' });
    // round(5 * 0.2) = 1 validation video per class
    expect(train.entries).toHaveLength(12);
    expect(val.entries.map((entry) => entry.labels[0])).toEqual([0, 1, 2]);
    expect(parseLabelMap(await readFile(dataset.annotations.labelMap, 'utf8')).classes).toEqual(dataset.classes);
    const again = await temporaryFolder('synth-again');
    cleanups.push(again.remove);
    const second = await generateSyntheticDataset({
      outDir: again.path,
      classes: 3,
      perClass: 5,
      seed: 4,
      frames: 16,
      size: 32,
      codec: 'vp8',
    });
    expect(second.files[0].path).toMatch(/\.webm$/);
    await expect(generateSyntheticDataset({ outDir: again.path, classes: 1, perClass: 1, seed: 0 })).rejects.toThrow(
      /classes must be an integer >= 2, received 1/,
    );
  });
});
