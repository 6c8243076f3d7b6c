import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { Random } from '../../core/engine/random.ts';
import { tf } from '../../core/engine/tf.ts';
import { averageViews, softmaxRows } from '../../core/eval/metrics.ts';
import { evaluateModel, type EvalBatch } from '../../core/eval/evaluate.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('multi-view evaluation', () => {
  it('softmax-averages each video over its views, keeps annotation order, and leaks nothing', async () => {
    const model = createVideoSwin('micro', { seed: 4, numClasses: 3 });
    const random = new Random(9);
    const clip = [3, 4, 16, 16];
    const perView = clip.reduce((a, b) => a * b, 1);
    const views = 2;
    // Two batches delivered out of annotation order (indices 2, 0 then 1).
    const batches: EvalBatch[] = [
      {
        indices: [2, 0],
        labels: Int32Array.from([2, 0]),
        views,
        shape: [4, ...clip],
        input: Float32Array.from({ length: 4 * perView }, () => random.normal()),
      },
      {
        indices: [1],
        labels: Int32Array.from([1]),
        views,
        shape: [2, ...clip],
        input: Float32Array.from({ length: 2 * perView }, () => random.normal()),
      },
    ];
    tf.tidy(() => model.predict(tf.zeros([1, ...clip])));
    const before = tf.memory().numTensors;
    async function* source() {
      yield* batches;
    }
    const { report, predictions } = await evaluateModel(model, source(), {
      views: { clips: 2, crops: 1 },
      classNames: ['a', 'b', 'c'],
      videoName: (i) => `video-${i}`,
      maxViewsPerForward: 3,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(predictions.map((p) => p.video)).toEqual(['video-0', 'video-1', 'video-2']);
    expect(report.metrics.count).toBe(3);
    expect(report.views).toEqual({ clips: 2, crops: 1 });
    // Recompute video 2's fused probabilities from the logits of its own two views.
    const logits = tf
      .tidy(() => model.predict(tf.tensor(batches[0].input.subarray(0, 2 * perView), [2, ...clip])))
      .dataSync() as Float32Array;
    const fused = averageViews(logits, 3, 2);
    const video2 = predictions[2];
    expect(video2.topScores[0]).toBeCloseTo(fused[video2.topClasses[0]], 5);
    expect(video2.topScores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(softmaxRows(logits, 3)[0]).not.toBeCloseTo(fused[0], 6);
    await expect(
      evaluateModel(model, source(), { views: { clips: 4, crops: 3 }, classNames: [], videoName: String }),
    ).rejects.toThrow(/produced 2 views per video, but the protocol 4x3 needs 12/);
    model.dispose();
  });
});
