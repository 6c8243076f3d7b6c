// Classification metrics as mmaction computes them (top_k_accuracy, mean_class_accuracy) plus the
// confusion matrix and per-class precision/recall, and the official multi-view fusion
// (`average_clips='prob'`: softmax per view, then the mean over a video's views).
import type { ClassificationMetrics, PerClassMetrics } from '../protocol/train.ts';

/** Row-wise softmax of [rows, classes] logits, in float64 for stable sums. */
export function softmaxRows(logits: Float32Array | number[], classes: number): Float64Array {
  const rows = logits.length / classes;
  const out = new Float64Array(logits.length);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[r * classes + c] - max);
      out[r * classes + c] = e;
      sum += e;
    }
    for (let c = 0; c < classes; c++) out[r * classes + c] /= sum;
  }
  return out;
}

/**
 * Fuses the views of each video: `logits` is [videos * views, classes] with a video's views
 * contiguous (the loader's `(crops * clips)` block); returns [videos, classes] mean probabilities.
 */
export function averageViews(logits: Float32Array | number[], classes: number, views: number): Float64Array {
  if (logits.length % (classes * views) !== 0) {
    throw new Error(
      `averageViews: ${logits.length} scores are not a whole number of videos x ${views} views x ${classes} classes`,
    );
  }
  const probabilities = softmaxRows(logits, classes);
  const videos = logits.length / (classes * views);
  const out = new Float64Array(videos * classes);
  for (let v = 0; v < videos; v++) {
    for (let view = 0; view < views; view++) {
      const row = (v * views + view) * classes;
      for (let c = 0; c < classes; c++) out[v * classes + c] += probabilities[row + c] / views;
    }
  }
  return out;
}

/** Indices of the k largest scores of one row, best first (ties keep the lower class first). */
export function topK(scores: ArrayLike<number>, offset: number, classes: number, k: number): number[] {
  const order = Array.from({ length: classes }, (_, c) => c);
  order.sort((a, b) => scores[offset + b] - scores[offset + a] || a - b);
  return order.slice(0, Math.min(k, classes));
}

export interface ScoredSet {
  /** [videos, classes] scores (probabilities or logits; only their order matters). */
  scores: ArrayLike<number>;
  labels: ArrayLike<number>;
  classes: number;
}

export interface FullMetrics {
  metrics: ClassificationMetrics;
  perClass: PerClassMetrics;
  /** confusion[true][predicted]. */
  confusion: number[][];
}

export function evaluateScores({ scores, labels, classes }: ScoredSet): FullMetrics {
  const videos = labels.length;
  if (scores.length !== videos * classes)
    throw new Error(`evaluateScores: ${scores.length} scores for ${videos} videos x ${classes} classes`);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let hits1 = 0;
  let hits5 = 0;
  for (let v = 0; v < videos; v++) {
    const label = labels[v];
    if (!Number.isInteger(label) || label < 0 || label >= classes)
      throw new Error(`evaluateScores: video ${v} has label ${label}, expected 0..${classes - 1}`);
    const best = topK(scores, v * classes, classes, 5);
    if (best[0] === label) hits1 += 1;
    if (best.includes(label)) hits5 += 1;
    confusion[label][best[0]] += 1;
  }
  const precision: number[] = [];
  const recall: number[] = [];
  const support: number[] = [];
  // mmaction's mean_class_accuracy averages recall over the classes that occur as a label OR as a
  // prediction (its confusion matrix is built on their union); absent classes are left out.
  let recallSum = 0;
  let present = 0;
  for (let c = 0; c < classes; c++) {
    const truth = confusion[c].reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < classes; r++) predicted += confusion[r][c];
    const hit = confusion[c][c];
    support.push(truth);
    recall.push(truth > 0 ? hit / truth : 0);
    precision.push(predicted > 0 ? hit / predicted : 0);
    if (truth > 0 || predicted > 0) {
      recallSum += truth > 0 ? hit / truth : 0;
      present += 1;
    }
  }
  return {
    metrics: {
      top1: videos ? hits1 / videos : 0,
      top5: videos ? hits5 / videos : 0,
      meanClassAccuracy: present ? recallSum / present : 0,
      count: videos,
    },
    perClass: { precision, recall, support },
    confusion,
  };
}
