// The demo's motion dataset, built from the data engine's synthetic-video pieces with one change:
// the square moves 1 pixel per frame instead of generateSyntheticDataset's fixed 2. The square is a
// checkerboard of 2-pixel cells (period 4), so at 2 px/frame its inside flips phase in place, which
// looks the same for every direction (temporal aliasing) and leaves only the 2-px border to carry
// the motion; at 1 px/frame the whole square moves coherently and a small model learns it quickly.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Random } from '../engine/random.ts';
import { writeAnnotationFile, writeLabelMap, type AnnotationEntry } from '../data/annotations.ts';
import { directionNames, encodeVideo, syntheticFrames } from '../data/synth.ts';

export interface DemoDataOptions {
  outDir: string;
  classes: number;
  perClass: number;
  seed: number;
  frames: number;
  size: number;
  /** Pixels per frame. */
  speed: number;
  /**
   * 'checker': the data engine's square (black/white 2-px cells); 'solid': a plain white square,
   * whose fixed contrast lets a linear spatio-temporal filter (the patch embedding) see direction.
   */
  square: 'checker' | 'solid';
  /** Texture contrast of the solid-square scenes: cell values are drawn from [128 - c, 128 + c). */
  textureContrast?: number;
  valFraction: number;
  concurrency?: number;
}

export interface DemoData {
  root: string;
  classes: string[];
  annotations: { train: string; val: string; labelMap: string };
}

export async function generateDemoData(options: DemoDataOptions): Promise<DemoData> {
  const root = join(options.outDir, 'videos');
  const classes = directionNames(options.classes);
  const jobs: { path: string; label: number; split: 'train' | 'val'; seed: number }[] = [];
  const valCount = Math.round(options.perClass * options.valFraction);
  for (const [label, name] of classes.entries()) {
    await mkdir(join(root, name), { recursive: true });
    for (let k = 0; k < options.perClass; k++) {
      jobs.push({ path: `${name}/${name}-${String(k).padStart(3, '0')}.mp4`, label, split: k < options.perClass - valCount ? 'train' : 'val', seed: (options.seed * 1_000_003 + label * 10_007 + k) >>> 0 });
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const direction = (2 * Math.PI * job.label) / options.classes;
      const random = new Random(job.seed);
      const frames = options.square === 'checker' ? syntheticFrames(direction, options.frames, options.size, options.size, random, options.speed) : solidSquareFrames(direction, { ...options, textureContrast: options.textureContrast ?? 88 }, random);
      await encodeVideo(frames, options.size, options.size, join(root, job.path), { codec: 'h264' });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  const entries = (split: 'train' | 'val'): AnnotationEntry[] => jobs.filter((j) => j.split === split).map((j) => ({ path: j.path, labels: [j.label] }));
  const annotations = { train: join(options.outDir, 'train.txt'), val: join(options.outDir, 'val.txt'), labelMap: join(options.outDir, 'classes.txt') };
  await writeAnnotationFile(annotations.train, entries('train'), 'video');
  await writeAnnotationFile(annotations.val, entries('val'), 'video');
  await writeLabelMap(annotations.labelMap, classes);
  return { root, classes, annotations };
}

/**
 * A white square (side = size / 4) crossing a blocky random texture with wrap-around, one
 * direction per class; the same scene as the data engine's generator with a solid square.
 */
export function solidSquareFrames(direction: number, options: { frames: number; size: number; speed: number; textureContrast: number }, random: Random): Uint8Array[] {
  const { size, speed } = options;
  const low = 128 - options.textureContrast;
  const span = Math.max(1, 2 * options.textureContrast);
  const background = new Uint8Array(size * size * 3);
  const cell = 4;
  for (let y = 0; y < size; y += cell) {
    for (let x = 0; x < size; x += cell) {
      const color = [low + random.int(span), low + random.int(span), low + random.int(span)];
      for (let yy = y; yy < Math.min(y + cell, size); yy++) {
        for (let xx = x; xx < Math.min(x + cell, size); xx++) background.set(color, (yy * size + xx) * 3);
      }
    }
  }
  const side = Math.max(4, Math.round(size / 4));
  const startX = random.next() * size;
  const startY = random.next() * size;
  const wrap = (value: number) => ((Math.round(value) % size) + size) % size;
  return Array.from({ length: options.frames }, (_, t) => {
    const frame = background.slice();
    const left = startX + Math.cos(direction) * speed * t;
    const top = startY - Math.sin(direction) * speed * t;
    for (let dy = 0; dy < side; dy++) {
      for (let dx = 0; dx < side; dx++) frame.fill(250, (wrap(top + dy) * size + wrap(left + dx)) * 3, (wrap(top + dy) * size + wrap(left + dx)) * 3 + 3);
    }
    return frame;
  });
}
