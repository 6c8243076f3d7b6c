// A synthetic dataset of small real encoded videos whose classes differ only in time: a textured
// square slides over a static random texture, one direction of motion per class. The square starts
// anywhere and wraps around the frame edges, so every frame of every class has the same statistics
// and only the order of frames tells the classes apart.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { Random } from '../engine/random.ts';
import { writeAnnotationFile, writeLabelMap, type AnnotationEntry } from './annotations.ts';
import { resolveTools, runProcess } from './decode.ts';
import { writeFileAtomic } from './files.ts';

export type VideoCodec = 'h264' | 'vp8' | 'vp9' | 'mjpeg' | 'mpeg4' | 'ffv1';

const codecArguments: Record<VideoCodec, string[]> = {
  h264: ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-pix_fmt', 'yuv420p'],
  vp8: ['-c:v', 'libvpx', '-b:v', '1M', '-pix_fmt', 'yuv420p'],
  vp9: ['-c:v', 'libvpx-vp9', '-b:v', '1M', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p'],
  mjpeg: ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj420p'],
  mpeg4: ['-c:v', 'mpeg4', '-q:v', '3', '-pix_fmt', 'yuv420p'],
  ffv1: ['-c:v', 'ffv1', '-pix_fmt', 'yuv420p'],
};

/** Encodes RGB frames (width * height * 3 bytes each) to a video file; the container follows the extension. */
export async function encodeVideo(
  frames: Uint8Array[],
  width: number,
  height: number,
  outPath: string,
  options: { codec?: VideoCodec; fps?: number; keyframeInterval?: number } = {},
): Promise<void> {
  const codec = options.codec ?? 'h264';
  const expected = width * height * 3;
  const bad = frames.findIndex((frame) => frame.length !== expected);
  if (bad >= 0)
    throw new Error(
      `encode ${outPath}: frame ${bad} has ${frames[bad].length} bytes, expected ${expected} (${width}x${height} RGB)`,
    );
  const temporary = join(
    dirname(outPath),
    `.${basename(outPath, extname(outPath))}.${process.pid}.${randomBytes(4).toString('hex')}.tmp${extname(outPath)}`,
  );
  const input = new Uint8Array(expected * frames.length);
  frames.forEach((frame, index) => input.set(frame, index * expected));
  const args = [
    '-v',
    'error',
    '-y',
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    '-s',
    `${width}x${height}`,
    '-r',
    String(options.fps ?? 25),
    '-i',
    'pipe:0',
    ...codecArguments[codec],
    '-threads',
    '1',
    ...(options.keyframeInterval ? ['-g', String(options.keyframeInterval)] : []),
    // Index first, so a file cut short still says how many frames it should have had.
    ...(/\.(mp4|mov|m4v)$/i.test(outPath) ? ['-movflags', '+faststart'] : []),
    // Written next to the target and renamed, so an interrupted run leaves no half video; the
    // temporary name keeps the extension because ffmpeg picks the container from it.
    temporary,
  ];
  try {
    const result = await runProcess(resolveTools().ffmpeg.path, args, { input, timeoutMs: 120_000 });
    if (result.code !== 0)
      throw new Error(`encode ${outPath} with ${codec} failed (exit ${result.code}): ${result.stderr.trim()}`);
    await rename(temporary, outPath);
  } finally {
    await rm(temporary, { force: true });
  }
}

/** Class names for n evenly spaced directions (angle 0 = moving right, counter-clockwise). */
export function directionNames(count: number): string[] {
  const compass: Record<number, string> = {
    0: 'right',
    45: 'up-right',
    90: 'up',
    135: 'up-left',
    180: 'left',
    225: 'down-left',
    270: 'down',
    315: 'down-right',
  };
  return Array.from({ length: count }, (_, k) => {
    const degrees = (360 * k) / count;
    const text = Number.isInteger(degrees) ? String(degrees).padStart(3, '0') : degrees.toFixed(1).replace('.', '_');
    return compass[degrees] ?? `angle-${text}`;
  });
}

/**
 * How the moving square looks: 'checker' (black/white 2-px cells, the same look in every class) or
 * 'solid' (plain white). At 2 px/frame the checker's inside flips phase in place, which looks the
 * same for every direction (temporal aliasing); a solid square at 1 px/frame moves coherently and a
 * small model learns the direction quickly (the demo's recipe).
 */
export type SquareStyle = 'checker' | 'solid';

/** Frames of one synthetic video (RGB, width * height * 3 bytes each). */
export function syntheticFrames(
  direction: number,
  frames: number,
  width: number,
  height: number,
  random: Random,
  speed = 2,
  square: SquareStyle = 'checker',
): Uint8Array[] {
  const background = new Uint8Array(width * height * 3);
  // Blocky texture: smooth enough to survive H.264, busy enough that the square is not trivially found.
  const cell = 4;
  for (let y = 0; y < height; y += cell) {
    for (let x = 0; x < width; x += cell) {
      const r = 40 + random.int(176);
      const g = 40 + random.int(176);
      const b = 40 + random.int(176);
      for (let yy = y; yy < Math.min(y + cell, height); yy++) {
        for (let xx = x; xx < Math.min(x + cell, width); xx++) {
          const i = (yy * width + xx) * 3;
          background[i] = r;
          background[i + 1] = g;
          background[i + 2] = b;
        }
      }
    }
  }
  const side = Math.max(4, Math.round(Math.min(width, height) / 4));
  const startX = random.next() * width;
  const startY = random.next() * height;
  const velocityX = Math.cos(direction) * speed;
  const velocityY = -Math.sin(direction) * speed;
  const wrap = (value: number, size: number) => ((Math.round(value) % size) + size) % size;
  return Array.from({ length: frames }, (_, t) => {
    const frame = background.slice();
    const left = startX + velocityX * t;
    const top = startY + velocityY * t;
    for (let dy = 0; dy < side; dy++) {
      for (let dx = 0; dx < side; dx++) {
        const x = wrap(left + dx, width);
        const y = wrap(top + dy, height);
        const i = (y * width + x) * 3;
        // A checkered white/black square or a plain white one: the same look in every class.
        const value = square === 'solid' || ((dx >> 1) + (dy >> 1)) % 2 === 0 ? 250 : 10;
        frame[i] = value;
        frame[i + 1] = value;
        frame[i + 2] = value;
      }
    }
    return frame;
  });
}

export interface SyntheticOptions {
  outDir: string;
  classes: number;
  perClass: number;
  seed: number;
  frames?: number;
  size?: number;
  codec?: VideoCodec;
  /** Fraction of each class written to val.txt (stratified); the rest goes to train.txt. */
  valFraction?: number;
  concurrency?: number;
  /** Pixels per frame (default 2). */
  speed?: number;
  /** Look of the moving square (default 'checker'). */
  square?: SquareStyle;
}

export interface SyntheticFile {
  /** Relative to `root`, forward slashes. */
  path: string;
  label: number;
  className: string;
  split: 'train' | 'val';
}

export interface SyntheticDataset {
  /** Folder of class subfolders (the data root of the annotation files). */
  root: string;
  classes: string[];
  files: SyntheticFile[];
  /** outDir/train.txt, outDir/val.txt (video lists relative to root) and outDir/classes.txt. */
  annotations: { train: string; val: string; labelMap: string };
}

const extensionOf: Record<VideoCodec, string> = {
  h264: 'mp4',
  vp8: 'webm',
  vp9: 'webm',
  mjpeg: 'avi',
  mpeg4: 'avi',
  ffv1: 'mkv',
};

export async function generateSyntheticDataset(options: SyntheticOptions): Promise<SyntheticDataset> {
  const { outDir, classes: classCount, perClass, seed } = options;
  if (!Number.isInteger(classCount) || classCount < 2)
    throw new Error(`synth: classes must be an integer >= 2, received ${classCount}`);
  if (!Number.isInteger(perClass) || perClass < 1)
    throw new Error(`synth: per-class must be an integer >= 1, received ${perClass}`);
  const frameCount = options.frames ?? 40;
  const size = options.size ?? 64;
  if (size % 2 !== 0 || size < 16) throw new Error(`synth: size must be an even number >= 16 (4:2:0 video), received ${size}`);
  const codec = options.codec ?? 'h264';
  const valFraction = options.valFraction ?? 0.2;
  const root = join(outDir, 'videos');
  const classes = directionNames(classCount);
  const jobs: { file: SyntheticFile; frames: () => Uint8Array[] }[] = [];
  for (const [label, className] of classes.entries()) {
    await mkdir(join(root, className), { recursive: true });
    const valCount = Math.round(perClass * valFraction);
    for (let k = 0; k < perClass; k++) {
      // One generator per video, so any video can be regenerated alone and the order of work is free.
      const random = new Random((seed * 1_000_003 + label * 10_007 + k) >>> 0);
      const direction = (2 * Math.PI * label) / classCount;
      const path = `${className}/${className}-${String(k).padStart(3, '0')}.${extensionOf[codec]}`;
      jobs.push({
        file: { path, label, className, split: k < perClass - valCount ? 'train' : 'val' },
        frames: () => syntheticFrames(direction, frameCount, size, size, random, options.speed ?? 2, options.square ?? 'checker'),
      });
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      await encodeVideo(job.frames(), size, size, join(root, job.file.path), { codec });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 2) }, worker));
  const files = jobs.map((job) => job.file);
  const entries = (split: 'train' | 'val'): AnnotationEntry[] =>
    files.filter((file) => file.split === split).map((file) => ({ path: file.path, labels: [file.label] }));
  const annotations = { train: join(outDir, 'train.txt'), val: join(outDir, 'val.txt'), labelMap: join(outDir, 'classes.txt') };
  await writeAnnotationFile(annotations.train, entries('train'), 'video');
  await writeAnnotationFile(annotations.val, entries('val'), 'video');
  await writeLabelMap(annotations.labelMap, classes);
  await writeFileAtomic(
    join(outDir, 'README.txt'),
    `Synthetic motion dataset: ${classCount} classes x ${perClass} videos, ${frameCount} frames of ${size}x${size}, ${codec}, seed ${seed}, ${options.square ?? 'checker'} square at ${options.speed ?? 2} px/frame.\n` +
      'Each class is one direction of motion of the same square over a random texture; a single frame cannot tell them apart.\n' +
      'Do not train with horizontal flips: a flip swaps left and right.\n',
  );
  return { root, classes, files, annotations };
}
