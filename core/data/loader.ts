// Batches from an annotation file through a pipeline. Decoding runs in ffmpeg child processes,
// `workers` at a time, ahead of the consumer by `prefetchBatches` batches; memory is bounded by that
// window. Host arrays only: the trainer turns batches into tensors.
//
// Determinism: the epoch's order comes from (seed, epoch) and every sample draws from its own
// generator seeded by (seed, epoch, sample index), so the output of an epoch does not depend on the
// number of workers or on which decode finishes first, and a resumed run can ask for epoch e again.
import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { Random } from '../engine/random.ts';
import type { AnnotationEntry, AnnotationFormat } from './annotations.ts';
import { loadAnnotations, resolveDataPath } from './dataset.ts';
import {
  countDecodedFrames,
  DecodeError,
  decodeVideoFrames,
  indexFrames,
  listFrameFiles,
  probeVideo,
  readFrameFolder,
  type FrameIndex,
} from './decode.ts';
import { applyPipeline, planFrames, sampleShape, viewsPerSample, type PipelineSpec } from './pipeline.ts';
import type { Clip } from './transforms.ts';

export interface LoaderOptions {
  /** mmaction2 video or rawframe list, or a Create ML .csv/.json (trims honoured). */
  annFile?: string;
  /** Class order for Create ML files (their labels are names); sorted names when absent. */
  classes?: string[];
  /**
   * Known frame counts and sizes by annotation path (e.g. `videoInfoFromReport` on a scan's
   * report.json), so large datasets are not probed again by every run.
   */
  videoInfo?: Record<string, KnownVideo>;
  samples?: AnnotationEntry[];
  /** Format of `samples` or of annFile ('auto' for files by default). */
  format?: AnnotationFormat | 'auto';
  withOffset?: boolean;
  multiLabel?: boolean;
  root: string;
  pipeline: PipelineSpec;
  batchSize: number;
  shuffle: boolean;
  seed: number;
  /** Decodes running at the same time (one ffmpeg process each). */
  workers: number;
  dropLast?: boolean;
  /** Seek to a keyframe before the first sampled frame of long videos (default true). */
  seek?: boolean;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetchBatches?: number;
  /**
   * Number of the first frame file in rawframe folders (mmaction2's dataset start_index, 1 by
   * default): frame k is the (k - rawframeStartIndex)-th image. Lines with an offset column give the
   * first frame of their clip; the others start here.
   */
  rawframeStartIndex?: number;
  /**
   * Worker threads for the spatial transforms (default 0: on this thread). With 1 or more the thread
   * that consumes batches (the engine's) only copies finished samples; results are identical.
   */
  transformThreads?: number;
}

export interface Batch {
  /** [B * views, 3, T, H, W], NCTHW, normalised; views of one sample are consecutive. */
  input: Float32Array;
  shape: number[];
  /** First label of every sample (the label for single-label data). */
  labels: Int32Array;
  /** All labels of every sample (multi-label lines). */
  labelSets: number[][];
  /** Positions of the samples in the annotation list. */
  indices: number[];
  views: number;
  epoch: number;
}

export interface SkippedSample {
  epoch: number;
  index: number;
  path: string;
  reason: string;
}

export interface LoaderStats {
  samples: number;
  batches: number;
  skipped: number;
  skips: SkippedSample[];
  /** Milliseconds, summed over samples: decode (child processes, overlapping) and transforms (this thread). */
  decodeMs: number;
  transformMs: number;
  /** Milliseconds the consumer waited for data. */
  waitMs: number;
  /** Most samples started but not yet handed to the consumer at any time: the memory bound. */
  peakInFlight: number;
}

export interface Loader {
  readonly size: number;
  readonly batchesPerEpoch: number;
  readonly sampleShape: number[];
  readonly stats: LoaderStats;
  /** Annotation problems found while reading the file (malformed lines are left out). */
  readonly problems: string[];
  epoch(epoch: number): AsyncIterable<Batch>;
  [Symbol.asyncIterator](): AsyncIterator<Batch>;
  /** Stops the transform threads (a no-op without them). */
  close(): Promise<void>;
}

interface TransformJob {
  id: number;
  message: Record<string, unknown>;
  transfer: ArrayBuffer[];
  resolve: (data: Float32Array) => void;
  reject: (error: Error) => void;
}

/** A fixed set of worker threads running applyPipeline; a worker is referenced only while busy. */
class TransformPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: TransformJob[] = [];
  private readonly running = new Map<Worker, TransformJob>();
  private nextId = 0;
  private failure: Error | undefined;
  private readonly ready: Promise<void>;

  constructor(size: number) {
    const url = new URL('./transform-worker.mjs', import.meta.url);
    const starts: Promise<void>[] = [];
    for (let k = 0; k < size; k++) {
      const worker = new Worker(url);
      this.all.push(worker);
      starts.push(
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
        }),
      );
      worker.on('message', (message: { id?: number; data?: Float32Array; error?: string }) => {
        const job = this.running.get(worker);
        if (!job || message.id !== job.id) return;
        this.running.delete(worker);
        if (message.error !== undefined) job.reject(new Error(`transform thread: ${message.error}`));
        else job.resolve(message.data!);
        this.release(worker);
      });
      worker.on('error', (error) => {
        // A thread that died takes the pool with it: later jobs fail at once instead of waiting forever.
        this.failure = new Error(`transform thread failed: ${error.message}`);
        const job = this.running.get(worker);
        this.running.delete(worker);
        job?.reject(this.failure);
        for (const queued of this.queue.splice(0)) queued.reject(this.failure);
      });
    }
    this.ready = Promise.all(starts).then(() => {
      for (const worker of this.all) this.release(worker);
    });
  }

  private release(worker: Worker): void {
    const job = this.queue.shift();
    if (job) this.start(worker, job);
    else {
      worker.unref();
      this.idle.push(worker);
    }
  }

  private start(worker: Worker, job: TransformJob): void {
    worker.ref();
    this.running.set(worker, job);
    worker.postMessage({ id: job.id, ...job.message }, job.transfer);
  }

  async run(spec: PipelineSpec, clip: Clip, random: Random): Promise<Float32Array> {
    await this.ready;
    if (this.failure) throw this.failure;
    const frameBytes = clip.width * clip.height * 3;
    const pixels = new Uint8Array(frameBytes * clip.frames.length);
    clip.frames.forEach((frame, index) => pixels.set(frame, index * frameBytes));
    return new Promise<Float32Array>((resolve, reject) => {
      const job: TransformJob = {
        id: this.nextId++,
        message: {
          spec,
          width: clip.width,
          height: clip.height,
          frameCount: clip.frames.length,
          pixels,
          randomState: random.getState(),
        },
        transfer: [pixels.buffer],
        resolve,
        reject,
      };
      const worker = this.idle.pop();
      if (worker) this.start(worker, job);
      else this.queue.push(job);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((worker) => worker.terminate()));
  }
}

/** murmur3's finaliser over several integers: well-spread seeds for neighbouring inputs. */
export function mixSeed(...parts: number[]): number {
  let hash = 0x9e3779b9;
  for (const part of parts) {
    hash = Math.imul(hash ^ (part >>> 0), 0x85ebca6b);
    hash ^= hash >>> 13;
    hash = Math.imul(hash, 0xc2b2ae35);
    hash ^= hash >>> 16;
  }
  return hash >>> 0;
}

export function epochOrder(size: number, shuffle: boolean, seed: number, epoch: number): number[] {
  const order = Array.from({ length: size }, (_, index) => index);
  if (!shuffle) return order;
  const random = new Random(mixSeed(seed, epoch, 0x5eed));
  for (let i = size - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export interface KnownVideo {
  totalFrames: number;
  width: number;
  height: number;
  fps?: number;
}

interface SourceInfo {
  totalFrames: number;
  /** Added to sampled indices: the rawframe start index, or the first frame of a trimmed video. */
  offset: number;
  width: number;
  height: number;
  frameFiles?: string[];
  /** True once the frame count comes from a full decode rather than the container header. */
  counted?: boolean;
  /** Frame times and keyframes of long videos, so decodes can seek instead of starting at frame 0. */
  frameIndex?: FrameIndex;
}

/** Videos longer than this (in frames, counting a trim's start) get a frame index for seeking. */
const indexAbove = 256;

type SampleOutcome = { kind: 'ok'; data: Float32Array } | { kind: 'skip'; reason: string };

const expectedFsCodes = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'EISDIR', 'EPERM']);

export async function createLoader(options: LoaderOptions): Promise<Loader> {
  for (const [name, value, min] of [
    ['batchSize', options.batchSize, 1],
    ['workers', options.workers, 1],
    ['seed', options.seed, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min)
      throw new Error(`loader.${name}: expected an integer >= ${min}, received ${String(value)}`);
  }
  let entries: AnnotationEntry[];
  let format: AnnotationFormat;
  const problems: string[] = [];
  if (options.samples) {
    entries = options.samples;
    format = options.format === 'rawframes' ? 'rawframes' : 'video';
  } else if (options.annFile) {
    const loaded = await loadAnnotations(options.annFile, options.root, {
      format: options.format ?? 'auto',
      multiLabel: options.multiLabel ?? false,
      ...(options.withOffset !== undefined ? { withOffset: options.withOffset } : {}),
      ...(options.classes ? { classes: options.classes } : {}),
    });
    entries = loaded.entries;
    format = loaded.format;
    for (const problem of loaded.problems)
      problems.push(`${problem.file}:${problem.line}: ${problem.severity}: ${problem.message}`);
  } else {
    throw new Error('loader: expected annFile or samples, received neither');
  }
  const spec = options.pipeline;
  const views = viewsPerSample(spec);
  const shape = sampleShape(spec);
  const sampleSize = shape.reduce((a, b) => a * b, 1);
  const prefetch = Math.max(0, options.prefetchBatches ?? 2);
  const rawStart = options.rawframeStartIndex ?? 1;
  const stats: LoaderStats = {
    samples: 0,
    batches: 0,
    skipped: 0,
    skips: [],
    decodeMs: 0,
    transformMs: 0,
    waitMs: 0,
    peakInFlight: 0,
  };
  const sources = new Map<number, Promise<SourceInfo | { error: string }>>();
  const threads = options.transformThreads ?? 0;
  if (!Number.isInteger(threads) || threads < 0)
    throw new Error(`loader.transformThreads: expected an integer >= 0, received ${String(threads)}`);
  const pool = threads > 0 ? new TransformPool(threads) : undefined;

  const describeSource = (index: number): Promise<SourceInfo | { error: string }> => {
    let pending = sources.get(index);
    if (!pending) {
      pending = inspect(entries[index]);
      sources.set(index, pending);
    }
    return pending;
  };

  const inspect = async (entry: AnnotationEntry, decodedCount?: number): Promise<SourceInfo | { error: string }> => {
    const full = resolveDataPath(options.root, entry.path);
    if (format === 'rawframes') {
      const files = await listFrameFiles(full);
      if (files.length === 0) return { error: 'no image files in the frame folder' };
      const start = entry.startIndex ?? rawStart;
      const total = entry.totalFrames ?? files.length;
      // Size comes from the first decoded frame; the folder listing is all that is needed here.
      return { totalFrames: total, offset: start, width: 0, height: 0, frameFiles: files };
    }
    const known = options.videoInfo?.[entry.path];
    let probe: { totalFrames: number; width: number; height: number; fps: number };
    if (known && decodedCount === undefined) {
      probe = { totalFrames: known.totalFrames, width: known.width, height: known.height, fps: known.fps ?? 0 };
    } else {
      const info = await stat(full);
      if (info.size === 0) return { error: 'empty file (0 bytes)' };
      const probed = await probeVideo(full, { verify: false });
      if (probed.kind === 'error') return { error: probed.reason };
      probe = probed;
    }
    if ((entry.startTime !== undefined || entry.endTime !== undefined) && !(probe.fps > 0))
      return { error: 'a trimmed entry needs the frame rate, which is unknown' };
    let offset = 0;
    let total = decodedCount ?? probe.totalFrames;
    if (total === 0) return { error: 'no decodable frames' };
    if (entry.startTime !== undefined || entry.endTime !== undefined) {
      const first = Math.min(total - 1, Math.round((entry.startTime ?? 0) * probe.fps));
      const end = entry.endTime !== undefined ? Math.min(total, Math.round(entry.endTime * probe.fps)) : total;
      offset = first;
      total = Math.max(1, end - first);
    }
    const source: SourceInfo = {
      totalFrames: total,
      offset,
      width: probe.width,
      height: probe.height,
      counted: decodedCount !== undefined,
    };
    if (options.seek !== false && offset + total > indexAbove) {
      const index = await indexFrames(full);
      // One packet per frame is what makes packet times frame times; otherwise decode from the start.
      if (index && index.times.length === (decodedCount ?? probe.totalFrames)) source.frameIndex = index;
    }
    return source;
  };

  const processSample = async (epoch: number, index: number, retried = false): Promise<SampleOutcome> => {
    const entry = entries[index];
    try {
      const source = await describeSource(index);
      if ('error' in source) return { kind: 'skip', reason: source.error };
      const random = new Random(mixSeed(options.seed, epoch, index));
      const frameIndices = planFrames(spec, source.totalFrames, 0, random).map((frame) => frame + source.offset);
      const decodeStart = performance.now();
      const full = resolveDataPath(options.root, entry.path);
      const clip: Clip =
        format === 'rawframes'
          ? await readFrameFolder(full, frameIndices, rawStart, source.frameFiles)
          : await decodeVideoFrames(full, frameIndices, source, undefined, source.frameIndex);
      stats.decodeMs += performance.now() - decodeStart;
      const transformStart = performance.now();
      const data = pool
        ? await pool.run(spec, clip, random)
        : applyPipeline(spec, clip, random, new Float32Array(sampleSize)).data;
      stats.transformMs += performance.now() - transformStart;
      return { kind: 'ok', data };
    } catch (error) {
      if (error instanceof DecodeError && format === 'video' && !retried) {
        // Some containers declare more frames than decode (edit lists, a damaged tail): count the
        // decodable frames once, sample again with the same generator seed, and retry.
        const source = await describeSource(index);
        if (!('error' in source) && !source.counted) {
          const count = await countDecodedFrames(resolveDataPath(options.root, entry.path));
          const declared = source.totalFrames + source.offset;
          if (count < declared) {
            // A frame or two is a header quirk; more is a damaged file, skipped in every epoch.
            if (count > 0 && declared - count <= Math.max(2, Math.ceil(declared * 0.02))) {
              sources.set(index, inspect(entry, count));
              return processSample(epoch, index, true);
            }
            const reason = `truncated or corrupt: the header declares ${declared} frames, ${count} decode`;
            sources.set(index, Promise.resolve({ error: reason }));
            return { kind: 'skip', reason };
          }
        }
      }
      if (error instanceof DecodeError) return { kind: 'skip', reason: error.message };
      const code = (error as NodeJS.ErrnoException).code;
      if (code && expectedFsCodes.has(code)) return { kind: 'skip', reason: `${code}: ${(error as Error).message}` };
      throw error;
    }
  };

  async function* iterate(epoch: number): AsyncGenerator<Batch> {
    if (!Number.isInteger(epoch) || epoch < 0)
      throw new Error(`loader.epoch: expected an integer >= 0, received ${String(epoch)}`);
    const order = epochOrder(entries.length, options.shuffle, options.seed, epoch);
    const window = options.batchSize * (prefetch + 1);
    const pending: (Promise<SampleOutcome> | undefined)[] = new Array(order.length);
    let started = 0;
    let consumed = 0;
    let active = 0;
    let stopped = false;
    const queue: (() => void)[] = [];
    const acquire = () =>
      active < options.workers
        ? (active++, Promise.resolve())
        : new Promise<void>((resolve) => queue.push(() => (active++, resolve())));
    const release = () => {
      active--;
      queue.shift()?.();
    };
    const pump = () => {
      while (!stopped && started < order.length && started < consumed + window) {
        const position = started++;
        pending[position] = acquire().then(async () => {
          try {
            return stopped ? ({ kind: 'skip', reason: 'stopped' } as const) : await processSample(epoch, order[position]);
          } finally {
            release();
          }
        });
        // Errors surface when the consumer awaits this position; avoid an unhandled rejection meanwhile.
        pending[position]!.catch(() => undefined);
      }
      stats.peakInFlight = Math.max(stats.peakInFlight, started - consumed);
    };
    let batch: { data: Float32Array; index: number }[] = [];
    const emit = (): Batch => {
      // A batch of one is handed over as is: at K400 sizes a copy is 19 MB per clip.
      const input = batch.length === 1 ? batch[0].data : new Float32Array(batch.length * sampleSize);
      if (batch.length > 1) batch.forEach((item, position) => input.set(item.data, position * sampleSize));
      const labelSets = batch.map((item) => entries[item.index].labels);
      stats.batches++;
      const result: Batch = {
        input,
        shape: [batch.length * views, ...shape.slice(1)],
        labels: Int32Array.from(labelSets.map((labels) => labels[0])),
        labelSets,
        indices: batch.map((item) => item.index),
        views,
        epoch,
      };
      batch = [];
      return result;
    };
    try {
      pump();
      for (let position = 0; position < order.length; position++) {
        const waitStart = performance.now();
        const outcome = await pending[position]!;
        stats.waitMs += performance.now() - waitStart;
        pending[position] = undefined;
        consumed++;
        pump();
        if (outcome.kind === 'skip') {
          stats.skipped++;
          stats.skips.push({ epoch, index: order[position], path: entries[order[position]].path, reason: outcome.reason });
          continue;
        }
        stats.samples++;
        batch.push({ data: outcome.data, index: order[position] });
        if (batch.length === options.batchSize) yield emit();
      }
      if (batch.length > 0 && !options.dropLast) yield emit();
    } finally {
      stopped = true;
    }
  }

  const batchesPerEpoch = options.dropLast
    ? Math.floor(entries.length / options.batchSize)
    : Math.ceil(entries.length / options.batchSize);
  return {
    size: entries.length,
    batchesPerEpoch,
    sampleShape: shape,
    stats,
    problems,
    epoch: (epoch: number) => ({ [Symbol.asyncIterator]: () => iterate(epoch) }),
    [Symbol.asyncIterator]: () => iterate(0),
    close: async () => {
      await pool?.close();
    },
  };
}
