// Evaluation of a model on an annotation file under a view protocol: every view's logits, softmax
// per view, mean over the views of each video (the official `average_clips='prob'`), then the
// metrics and per-video top-k predictions. Views go through the model in sub-batches so memory
// stays bounded (the official `max_testing_views`, which has no numerical effect).
import { tf } from '../engine/tf.ts';
import type { VideoSwin } from '../model/video-swin.ts';
import type { EvaluationReport, VideoPrediction, ViewProtocol } from '../protocol/train.ts';
import { averageViews, evaluateScores, topK } from './metrics.ts';

export interface EvalBatch {
  /** [videos * views, 3, T, H, W], the views of one video consecutive. */
  input: Float32Array;
  shape: number[];
  labels: Int32Array;
  /** Positions of the videos in the annotation list. */
  indices: number[];
  views: number;
}

export interface EvaluateOptions {
  views: ViewProtocol;
  classNames: string[];
  /** Name of the video at an annotation index (for the stored predictions). */
  videoName: (index: number) => string;
  topK?: number;
  /** Views per forward pass. */
  maxViewsPerForward?: number;
  onProgress?: (videos: number) => void;
}

export interface EvaluationOutput {
  report: EvaluationReport;
  predictions: VideoPrediction[];
}

export async function evaluateModel(
  model: VideoSwin,
  batches: AsyncIterable<EvalBatch>,
  options: EvaluateOptions,
): Promise<EvaluationOutput> {
  const classes = model.config.num_classes;
  const viewsPerVideo = options.views.clips * options.views.crops;
  const chunk = Math.max(1, options.maxViewsPerForward ?? 16);
  const fused: { index: number; label: number; probabilities: Float64Array }[] = [];
  for await (const batch of batches) {
    if (batch.views !== viewsPerVideo) {
      throw new Error(
        `the data pipeline produced ${batch.views} views per video, but the protocol ${options.views.clips}x${options.views.crops} needs ${viewsPerVideo}`,
      );
    }
    const [rows, ...clipShape] = batch.shape;
    const perView = clipShape.reduce((a, b) => a * b, 1);
    const logits = new Float32Array(rows * classes);
    for (let start = 0; start < rows; start += chunk) {
      const count = Math.min(chunk, rows - start);
      const out = tf.tidy(() =>
        model.predict(
          tf.tensor(batch.input.subarray(start * perView, (start + count) * perView), [count, ...clipShape], 'float32'),
        ),
      );
      try {
        logits.set(await out.data(), start * classes);
      } finally {
        out.dispose();
      }
    }
    const probabilities = averageViews(logits, classes, viewsPerVideo);
    batch.indices.forEach((index, v) =>
      fused.push({ index, label: batch.labels[v], probabilities: probabilities.subarray(v * classes, (v + 1) * classes) }),
    );
    options.onProgress?.(fused.length);
  }
  if (fused.length === 0) throw new Error('evaluation: the annotation file produced no videos');
  fused.sort((a, b) => a.index - b.index);
  const scores = new Float64Array(fused.length * classes);
  fused.forEach((f, i) => scores.set(f.probabilities, i * classes));
  const labels = fused.map((f) => f.label);
  const { metrics, perClass, confusion } = evaluateScores({ scores, labels, classes });
  const k = Math.min(options.topK ?? 5, classes);
  const predictions: VideoPrediction[] = fused.map((f, i) => {
    const best = topK(scores, i * classes, classes, k);
    return {
      index: f.index,
      video: options.videoName(f.index),
      label: f.label,
      topClasses: best,
      topScores: best.map((c) => scores[i * classes + c]),
    };
  });
  const classNames =
    options.classNames.length === classes
      ? options.classNames
      : Array.from({ length: classes }, (_, c) => options.classNames[c] ?? String(c));
  return { report: { views: options.views, metrics, perClass, confusion, classNames }, predictions };
}
