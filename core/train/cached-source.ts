// A training/validation source that decodes every video ONCE and keeps its frames in memory, then
// samples and augments from there each epoch. For small datasets (the demo, quick experiments) the
// ffmpeg decode otherwise costs several times the training step on 2 cores. Sampling follows the
// data engine's loader exactly: order from epochOrder(seed, epoch) and one generator per
// (seed, epoch, index) for frame offsets and augmentation, so results match an uncached loader.
import { Random } from '../engine/random.ts';
import { loadAnnotations, resolveDataPath } from '../data/dataset.ts';
import { DecodeError, decodeVideoFrames, probeVideo } from '../data/decode.ts';
import { epochOrder, mixSeed } from '../data/loader.ts';
import { applyPipeline, planFrames, sampleShape, viewsPerSample, type PipelineSpec } from '../data/pipeline.ts';
import type { Clip } from '../data/transforms.ts';
import type { EvalBatch } from '../eval/evaluate.ts';
import type { BatchSource, TrainBatch } from './trainer.ts';

/** File errors that make one video unreadable (the others still train). */
const skippableFsCodes = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'EISDIR', 'EPERM']);

/** Refuse to cache more than this many bytes of decoded frames. */
export const MAX_CACHE_BYTES = 2 * 2 ** 30;

export interface CachedSource extends BatchSource {
  readonly size: number;
  /** Entries skipped at decode time: annotation index -> reason. */
  readonly skippedAtLoad: ReadonlyMap<number, string>;
  /** Video path (relative to root) of an annotation index. */
  videoName(index: number): string;
  /** Batches with their annotation indices and views (for evaluation). */
  evalBatches(epoch: number): AsyncIterable<EvalBatch>;
}

export async function cachedSource(options: {
  annFile: string;
  root: string;
  spec: PipelineSpec;
  batchSize: number;
  shuffle: boolean;
  seed: number;
  workers: number;
  onProgress?: (done: number, total: number) => void;
}): Promise<CachedSource> {
  const loaded = await loadAnnotations(options.annFile, options.root);
  if (loaded.format !== 'video')
    throw new Error(`${options.annFile}: the in-memory cache reads video files; this file lists ${loaded.format}`);
  const entries = loaded.entries;
  if (entries.length === 0)
    throw new Error(`${options.annFile}: no usable samples${loaded.problems.length ? ` (${loaded.problems[0].message})` : ''}`);
  const clips: (Clip | null)[] = new Array(entries.length).fill(null);
  // A bad video (unreadable, corrupt, no frames) is skipped and counted in every epoch, as the
  // streaming loader does, instead of ending the run at start-up.
  const bad = new Map<number, string>();
  let bytes = 0;
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < entries.length) {
      const index = next++;
      const path = resolveDataPath(options.root, entries[index].path);
      try {
        const probe = await probeVideo(path);
        if (probe.kind === 'error') {
          bad.set(index, probe.reason);
        } else if (probe.totalFrames < 1) {
          bad.set(index, 'no decodable frames');
        } else {
          bytes += probe.totalFrames * probe.width * probe.height * 3;
          if (bytes > MAX_CACHE_BYTES)
            throw new Error(
              `${options.annFile}: decoded frames would exceed ${MAX_CACHE_BYTES / 2 ** 30} GiB; the in-memory cache is for small datasets`,
            );
          const clip = await decodeVideoFrames(
            path,
            Array.from({ length: probe.totalFrames }, (_, i) => i),
            probe,
          );
          if (clip.frames.length === 0) bad.set(index, 'no decodable frames');
          else clips[index] = clip;
        }
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (error instanceof DecodeError) bad.set(index, error.message);
        else if (code && skippableFsCodes.has(code)) bad.set(index, `${code}: ${(error as Error).message}`);
        else throw error;
      }
      options.onProgress?.(++done, entries.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.workers) }, worker));
  const usable = entries.length - bad.size;
  if (usable === 0) {
    const [index, reason] = [...bad][0];
    throw new Error(
      `${options.annFile}: no usable samples; all ${entries.length} videos were skipped (first: ${entries[index].path}: ${reason})`,
    );
  }
  const pendingSkips: { path: string; reason: string }[] = [];

  const spec = options.spec;
  const views = viewsPerSample(spec);
  const shape = sampleShape(spec);
  const sampleSize = shape.reduce((a, b) => a * b, 1);
  const batchesPerEpoch = Math.ceil(usable / options.batchSize);

  function* batchesOf(epoch: number): Generator<EvalBatch> {
    // The same order as the streaming loader: the epoch's permutation of every entry, bad ones left out.
    const order = epochOrder(entries.length, options.shuffle, options.seed, epoch).filter((index) => clips[index] !== null);
    for (const [index, reason] of bad) pendingSkips.push({ path: entries[index].path, reason });
    for (let b = 0; b < batchesPerEpoch; b++) {
      const members = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
      const input = new Float32Array(members.length * sampleSize);
      members.forEach((index, position) => {
        const clip = clips[index]!;
        const random = new Random(mixSeed(options.seed, epoch, index));
        const frames = planFrames(spec, clip.frames.length, 0, random).map(
          (f) => clip.frames[Math.min(f, clip.frames.length - 1)],
        );
        applyPipeline(spec, { width: clip.width, height: clip.height, frames }, random, input, position * sampleSize);
      });
      yield {
        input,
        shape: [members.length * views, ...shape.slice(1)],
        labels: Int32Array.from(members.map((m) => entries[m].labels[0])),
        indices: members,
        views,
      };
    }
  }

  return {
    size: entries.length,
    skippedAtLoad: bad,
    batchesPerEpoch,
    videoName: (index) => entries[index].path,
    async *batches(epoch: number): AsyncIterable<TrainBatch> {
      for (const batch of batchesOf(epoch)) yield { input: batch.input, shape: batch.shape, labels: batch.labels };
    },
    async *evalBatches(epoch: number): AsyncIterable<EvalBatch> {
      yield* batchesOf(epoch);
    },
    takeSkips: () => pendingSkips.splice(0),
  };
}
