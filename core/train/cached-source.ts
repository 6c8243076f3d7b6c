// A training/validation source that decodes every video ONCE and keeps its frames in memory, then
// samples and augments from there each epoch. For small datasets (the demo, quick experiments) the
// ffmpeg decode otherwise costs several times the training step on 2 cores. Sampling follows the
// data engine's loader exactly: order from epochOrder(seed, epoch) and one generator per
// (seed, epoch, index) for frame offsets and augmentation, so results match an uncached loader.
import { Random } from '../engine/random.ts';
import { loadAnnotations, resolveDataPath } from '../data/dataset.ts';
import { decodeVideoFrames, probeVideo } from '../data/decode.ts';
import { epochOrder, mixSeed } from '../data/loader.ts';
import { applyPipeline, planFrames, sampleShape, viewsPerSample, type PipelineSpec } from '../data/pipeline.ts';
import type { Clip } from '../data/transforms.ts';
import type { EvalBatch } from '../eval/evaluate.ts';
import type { BatchSource, TrainBatch } from './trainer.ts';

/** Refuse to cache more than this many bytes of decoded frames. */
export const MAX_CACHE_BYTES = 2 * 2 ** 30;

export interface CachedSource extends BatchSource {
  readonly size: number;
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
  const clips: Clip[] = new Array(entries.length);
  let bytes = 0;
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < entries.length) {
      const index = next++;
      const path = resolveDataPath(options.root, entries[index].path);
      const probe = await probeVideo(path);
      if (probe.kind === 'error') throw new Error(`${path}: ${probe.reason}`);
      bytes += probe.totalFrames * probe.width * probe.height * 3;
      if (bytes > MAX_CACHE_BYTES)
        throw new Error(
          `${options.annFile}: decoded frames would exceed ${MAX_CACHE_BYTES / 2 ** 30} GiB; the in-memory cache is for small datasets`,
        );
      clips[index] = await decodeVideoFrames(
        path,
        Array.from({ length: probe.totalFrames }, (_, i) => i),
        probe,
      );
      options.onProgress?.(++done, entries.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.workers) }, worker));

  const spec = options.spec;
  const views = viewsPerSample(spec);
  const shape = sampleShape(spec);
  const sampleSize = shape.reduce((a, b) => a * b, 1);
  const batchesPerEpoch = Math.ceil(entries.length / options.batchSize);

  function* batchesOf(epoch: number): Generator<EvalBatch> {
    const order = epochOrder(entries.length, options.shuffle, options.seed, epoch);
    for (let b = 0; b < batchesPerEpoch; b++) {
      const members = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
      const input = new Float32Array(members.length * sampleSize);
      members.forEach((index, position) => {
        const clip = clips[index];
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
    batchesPerEpoch,
    videoName: (index) => entries[index].path,
    async *batches(epoch: number): AsyncIterable<TrainBatch> {
      for (const batch of batchesOf(epoch)) yield { input: batch.input, shape: batch.shape, labels: batch.labels };
    },
    async *evalBatches(epoch: number): AsyncIterable<EvalBatch> {
      yield* batchesOf(epoch);
    },
  };
}
