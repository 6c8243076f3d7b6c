import { describe, expect, it } from 'vitest';
import { averageViews, evaluateScores, softmaxRows, topK } from '../../core/eval/metrics.ts';

describe('classification metrics', () => {
  it('computes top-1, top-5, mean class accuracy, confusion and per-class precision/recall', () => {
    // 4 videos, 6 classes; scores chosen so each video's rank of the true class is known.
    const classes = 6;
    const scores = [
      [9, 1, 0, 0, 0, 0], // label 0: rank 1
      [9, 8, 0, 0, 0, 0], // label 1: rank 2
      [0, 0, 9, 0, 0, 0], // label 2: rank 1
      [6, 5, 4, 3, 2, 1], // label 5: rank 6 (outside top-5)
    ].flat();
    const labels = [0, 1, 2, 5];
    const { metrics, perClass, confusion } = evaluateScores({ scores, labels, classes });
    expect(metrics.top1).toBe(0.5);
    expect(metrics.top5).toBe(0.75);
    // Classes present as label or prediction: 0, 1, 2, 5 -> recalls 1, 0, 1, 0.
    expect(metrics.meanClassAccuracy).toBe(0.5);
    expect(metrics.count).toBe(4);
    expect(confusion[1][0]).toBe(1);
    expect(confusion[5][0]).toBe(1);
    expect(perClass.precision[0]).toBeCloseTo(1 / 3, 12);
    expect(perClass.recall).toEqual([1, 0, 1, 0, 0, 0]);
    expect(perClass.support).toEqual([1, 1, 1, 0, 0, 1]);
  });

  it('names the video and the allowed range for a bad label', () => {
    expect(() => evaluateScores({ scores: [1, 2], labels: [2], classes: 2 })).toThrow('video 0 has label 2, expected 0..1');
  });

  it('fuses views by averaging softmax probabilities, not logits', () => {
    // Three views of one video: averaging logits would pick class 0 (mean 6.7 vs 1.3), but the
    // probabilities saturate, so two views mildly preferring class 1 win (0.41 vs 0.59).
    const logits = [20, 0, 0, 2, 0, 2];
    const fused = averageViews(logits, 2, 3);
    const p = softmaxRows(logits, 2);
    expect(fused[0]).toBeCloseTo((p[0] + p[2] + p[4]) / 3, 12);
    expect(topK(fused, 0, 2, 1)).toEqual([1]);
    expect(() => averageViews([1, 2, 3], 2, 2)).toThrow(/whole number/);
  });

  it('orders ties by class index', () => {
    expect(topK([1, 3, 3, 0], 0, 4, 3)).toEqual([1, 2, 0]);
  });
});
