// What the attention explorer and "Try a video" ask of a checkpoint: the attention of one block over
// its windows, and the predictions for one video. The input is the checkpoint's own pipeline
// (core/app/checkpoints.ts) under the single-clip evaluation protocol, as everywhere else.
// The model of the last checkpoint used is kept loaded (the service's model-call worker lives on
// between calls), and so is the last attention capture.
import { statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import sharp from 'sharp';
import { tf } from '../engine/tf.ts';
import { createLoader, type Batch } from '../data/loader.ts';
import type { PipelineSpec } from '../data/pipeline.ts';
import { denormalizeToBytes } from '../data/transforms.ts';
import { softmaxRows, topK } from '../eval/metrics.ts';
import type { VideoSwin } from '../model/video-swin.ts';
import { stageGeometry, patchGrid, mergedGrid, type Triple } from '../model/geometry.ts';
import type { AttentionView, AttentionWindow, Prediction } from '../protocol/workbench.ts';
import { evaluationSpec } from '../train/data-source.ts';
import { modelOf, openCheckpoint, type CheckpointInfo } from './checkpoints.ts';

/** A checkpoint as kept with its model: everything but the weights (the model holds those). */
export type KeptCheckpoint = Omit<CheckpointInfo, 'stateDict'>;

/**
 * The model of a checkpoint, kept loaded for the next call (the model-call worker lives on between
 * calls): the same file (path, size, modification time) is read and built once; another one
 * replaces it. Callers must not dispose the model.
 */
let loaded: { key: string; info: KeptCheckpoint; model: VideoSwin } | null = null;

/** A file's identity for the kept model and attention: path, size and modification time. */
function fileKey(path: string): string {
  const stat = statSync(path);
  return `${resolve(path)}|${stat.size}|${stat.mtimeMs}`;
}

export function loadedModel(path: string): { key: string; info: KeptCheckpoint; model: VideoSwin } {
  const key = fileKey(path);
  if (loaded?.key === key) return loaded;
  loaded?.model.dispose();
  loaded = null;
  // The kept attention belongs to the model being replaced.
  forgetAttentionCapture();
  const { stateDict, ...info } = openCheckpoint(path);
  const model = modelOf({ model: info.model, stateDict });
  loaded = { key, info, model };
  return loaded;
}

/** Frees the kept model and the kept attention capture (tests; the worker's end frees them too). */
export function forgetLoadedModel(): void {
  forgetAttentionCapture();
  loaded?.model.dispose();
  loaded = null;
}

async function oneClip(info: Pick<CheckpointInfo, 'pipeline'>, video: string): Promise<{ batch: Batch; spec: PipelineSpec }> {
  const spec = evaluationSpec(info.pipeline);
  const loader = await createLoader({
    samples: [{ path: basename(video), labels: [0] }],
    format: 'video',
    root: dirname(video),
    pipeline: spec,
    batchSize: 1,
    shuffle: false,
    seed: 0,
    workers: 1,
  });
  for await (const batch of loader.epoch(0)) return { batch, spec };
  throw new Error(`${video}: could not be decoded: ${loader.stats.skips[0]?.reason ?? 'unknown reason'}`);
}

async function framePngs(input: Float32Array, shape: number[], spec: PipelineSpec): Promise<string[]> {
  // [1, 3, T, H, W] of the first view, back to bytes for the frame strip.
  const [, , frames, height, width] = shape;
  const plane = height * width;
  const out: string[] = [];
  for (let t = 0; t < frames; t++) {
    const pixels = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      const base = (c * frames + t) * plane;
      for (let i = 0; i < plane; i++) pixels[i * 3 + c] = denormalizeToBytes(input[base + i], c, spec.mean, spec.std);
    }
    const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer();
    out.push(`data:image/png;base64,${png.toString('base64')}`);
  }
  return out;
}

function topFive(probabilities: ArrayLike<number>, classes: string[]): { label: string; score: number }[] {
  return topK(probabilities, 0, classes.length, 5).map((c) => ({ label: classes[c] ?? `class ${c}`, score: probabilities[c] }));
}

/**
 * Largest attention capture kept in the model-call worker (floats; 160M = 640 MB). It covers the
 * first stage of real models: Swin-T at 32x224 (128 windows x 3 heads x 392^2 = 59M) and Swin-B
 * (4 heads, 79M). The UI fetches one window of it at a time (`attentionWindow`).
 */
export const MAX_ATTENTION_CAPTURE_VALUES = 160_000_000;

/** The view of a capture without its frame images (those are made once, for `attentionView`). */
type CaptureMeta = Omit<AttentionView, 'frames'>;

/**
 * The last attention capture: probs[window][head][query][key] of one block for one clip, as host
 * memory (the tensors are disposed). Keyed by the checkpoint file (as the kept model), the video
 * file, the stage and the block; a new capture replaces it.
 */
let captured: { key: string; meta: CaptureMeta; probs: Float32Array } | null = null;

/** Frees the kept attention capture. */
export function forgetAttentionCapture(): void {
  captured = null;
}

/** What the worker keeps (tests): the capture's block and size, or null. */
export function keptAttentionCapture(): {
  checkpoint: string;
  video: string;
  stage: number;
  block: number;
  values: number;
} | null {
  if (!captured) return null;
  return {
    checkpoint: captured.meta.checkpoint,
    video: captured.meta.video,
    stage: captured.meta.stage,
    block: captured.meta.block,
    values: captured.probs.length,
  };
}

function captureKey(modelKey: string, video: string, stage: number, block: number): string {
  let videoKey: string;
  try {
    videoKey = fileKey(video);
  } catch {
    // A missing video is reported by the decoder with its own words.
    videoKey = resolve(video);
  }
  return `${modelKey}#${videoKey}#${stage}.${block}`;
}

function checkStageBlock(info: KeptCheckpoint, stage: number, block: number): void {
  const depths = info.model.backbone.depths;
  if (!Number.isInteger(stage) || stage < 0 || stage >= depths.length)
    throw new Error(`attention: stage must be 0..${depths.length - 1}, received ${stage}`);
  if (!Number.isInteger(block) || block < 0 || block >= depths[stage])
    throw new Error(`attention: block must be 0..${depths[stage] - 1} in stage ${stage}, received ${block}`);
}

/** Runs the model on the first clip of `video`, keeps the block's attention and returns the clip's input. */
async function captureAttention(
  checkpoint: string,
  video: string,
  stage: number,
  block: number,
): Promise<{ meta: CaptureMeta; probs: Float32Array; input: Float32Array; shape: number[]; spec: PipelineSpec }> {
  const { key: modelKey, info, model } = loadedModel(checkpoint);
  checkStageBlock(info, stage, block);
  const key = captureKey(modelKey, video, stage, block);
  // Free the previous capture before the model runs: only one is ever held.
  captured = null;
  const { batch, spec } = await oneClip(info, video);
  const shape = [1, ...batch.shape.slice(1)];
  const input = batch.input.subarray(
    0,
    shape.reduce((a, b) => a * b, 1),
  );
  const clip: Triple = [shape[2], shape[3], shape[4]];
  // The grid entering each stage, to check the size before running the model.
  let grid = patchGrid(clip, info.model.backbone.patch_size);
  for (let s = 0; s < stage; s++) grid = mergedGrid(grid);
  const geometry = stageGeometry(grid, info.model.backbone.window_size);
  const heads = info.model.backbone.num_heads[stage];
  const count = geometry.windowsPerClip * heads * geometry.tokensPerWindow ** 2;
  if (count > MAX_ATTENTION_CAPTURE_VALUES) {
    throw new Error(
      `attention: stage ${stage} has ${count} attention values for this clip (${geometry.windowsPerClip} windows x ${heads} heads x ${geometry.tokensPerWindow}^2), above the limit of ${MAX_ATTENTION_CAPTURE_VALUES} kept in memory; pick a later stage or a smaller clip`,
    );
  }
  let found: { geometry: typeof geometry; shifted: boolean } = { geometry, shifted: false };
  const [logits, probs] = tf.tidy(() => {
    const result = model.forward(tf.tensor(input, shape, 'float32'), { attention: [{ stage, block }] });
    const capture = result.attention[0];
    found = { geometry: capture.geometry, shifted: capture.shifted };
    return [result.logits, capture.probs];
  });
  let values: Float32Array;
  let scores: Float32Array;
  try {
    values = (await probs.data()) as Float32Array;
    scores = (await logits.data()) as Float32Array;
  } finally {
    probs.dispose();
    logits.dispose();
  }
  const g = found.geometry;
  const meta: CaptureMeta = {
    checkpoint,
    video,
    frameIndices: Array.from({ length: clip[0] }, (_, i) => i),
    clip,
    patch: [...info.model.backbone.patch_size] as Triple,
    stage,
    block,
    depths: [...info.model.backbone.depths],
    shifted: found.shifted,
    grid: g.grid,
    window: g.window,
    shift: g.shift,
    padded: g.padded,
    heads,
    tokensPerWindow: g.tokensPerWindow,
    windowsPerClip: g.windowsPerClip,
    top5: topFive(softmaxRows(scores, info.model.num_classes), info.classNames),
  };
  captured = { key, meta, probs: values };
  return { meta, probs: values, input, shape, spec };
}

/**
 * Runs the model once on the first clip of `video` and returns the block's window geometry, the
 * frames and the clip's top-5; the attention itself stays in this thread for `attentionWindow`.
 */
export async function attentionView(checkpoint: string, video: string, stage: number, block: number): Promise<AttentionView> {
  const { meta, input, shape, spec } = await captureAttention(checkpoint, video, stage, block);
  return { ...meta, frames: await framePngs(input, shape, spec) };
}

/** The attention of one window (heads x N x N) from the kept capture, running the model first when it is not kept. */
export async function attentionWindow(
  checkpoint: string,
  video: string,
  stage: number,
  block: number,
  window: number,
): Promise<AttentionWindow> {
  const { key: modelKey, info } = loadedModel(checkpoint);
  checkStageBlock(info, stage, block);
  const key = captureKey(modelKey, video, stage, block);
  const kept = captured?.key === key ? captured : await captureAttention(checkpoint, video, stage, block);
  const { heads, tokensPerWindow: n, windowsPerClip } = kept.meta;
  if (!Number.isInteger(window) || window < 0 || window >= windowsPerClip) {
    throw new Error(
      `attention.window: window must be an integer in [0, ${windowsPerClip}) for stage ${stage} of this clip, received ${window}`,
    );
  }
  const size = heads * n * n;
  const slice = kept.probs.subarray(window * size, (window + 1) * size);
  return {
    stage,
    block,
    window,
    heads,
    tokensPerWindow: n,
    windowsPerClip,
    probs: Array.from(slice, (v) => Math.round(v * 1e5) / 1e5),
  };
}

/** Top-5 of the whole video and, for videos longer than one clip span, a timeline over sliding clips. */
export async function predictVideo(
  checkpoint: string,
  video: string,
  progress: (done: number, total: number, message: string) => void,
): Promise<Prediction> {
  const { info, model } = loadedModel(checkpoint);
  const base = evaluationSpec(info.pipeline);
  const single = await oneClip(info, video);
  const shape = [1, ...single.batch.shape.slice(1)];
  const whole = tf.tidy(
    () =>
      model.forward(
        tf.tensor(
          single.batch.input.subarray(
            0,
            shape.reduce((a, b) => a * b, 1),
          ),
          shape,
          'float32',
        ),
      ).logits,
  );
  let wholeScores: Float32Array;
  try {
    wholeScores = (await whole.data()) as Float32Array;
  } finally {
    whole.dispose();
  }
  const top5 = topFive(softmaxRows(wholeScores, info.model.num_classes), info.classNames);
  // Sliding clips: the test-mode sampler with several clips spreads them evenly over the video.
  const span = base.sampling.clipLen * base.sampling.frameInterval;
  const { probeVideo } = await import('../data/decode.ts');
  const probe = await probeVideo(video);
  const timeline: Prediction['timeline'] = [];
  if (probe.kind === 'video' && probe.totalFrames >= 2 * span) {
    const clips = Math.min(16, Math.floor(probe.totalFrames / span));
    const spec: PipelineSpec = { ...base, sampling: { ...base.sampling, numClips: clips, testMode: true } };
    const loader = await createLoader({
      samples: [{ path: basename(video), labels: [0] }],
      format: 'video',
      root: dirname(video),
      pipeline: spec,
      batchSize: 1,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    for await (const batch of loader.epoch(0)) {
      const logits = tf.tidy(() => model.forward(tf.tensor(batch.input, batch.shape, 'float32')).logits);
      let values: Float32Array;
      try {
        values = (await logits.data()) as Float32Array;
      } finally {
        logits.dispose();
      }
      const probabilities = softmaxRows(values, info.model.num_classes);
      const classes = info.model.num_classes;
      const seconds = probe.fps > 0 ? span / probe.fps : 0;
      for (let c = 0; c < batch.views; c++) {
        const best = topK(probabilities, c * classes, classes, 1)[0];
        const start = ((c + 0.5) * probe.durationSeconds) / batch.views - seconds / 2;
        timeline.push({
          start: Math.max(0, Math.round(start * 100) / 100),
          seconds: Math.round(seconds * 100) / 100,
          label: info.classNames[best] ?? `class ${best}`,
          score: probabilities[c * classes + best],
          top5: topFive(probabilities.subarray(c * classes, (c + 1) * classes), info.classNames),
        });
        progress(c + 1, batch.views, 'timeline');
      }
    }
  }
  return { video, top5, timeline, durationSeconds: probe.kind === 'video' ? probe.durationSeconds : null };
}
