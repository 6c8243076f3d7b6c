// Time per training step on the running backend. Small models are dominated by per-op overhead, not
// FLOPs, so they are timed for real (one forward + backward on a random clip); big ones would take
// too long to time and get a FLOP-bound estimate from a measured matMul rate instead.
import { tf } from '../../engine/tf.ts';
import { crossEntropy } from '../../engine/ops.ts';
import { Random } from '../../engine/random.ts';
import type { ModelConfig } from '../../model/config.ts';
import { createVideoSwin } from '../../model/video-swin.ts';

export { TIMED_STEP_LIMIT } from '../../app/config.ts';

const stepCache = new Map<string, number>();
let gflopsCache: number | null = null;

/** Dense matMul throughput of the current backend (GFLOP/s), measured once. */
export async function measureGflops(): Promise<number> {
  if (gflopsCache !== null) return gflopsCache;
  const n = 192;
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  try {
    tf.tidy(() => tf.matMul(a, b)).dispose();
    const started = performance.now();
    const repeats = 5;
    for (let i = 0; i < repeats; i++) {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    }
    gflopsCache = (2 * n ** 3 * repeats) / ((performance.now() - started) / 1000) / 1e9;
    return gflopsCache;
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** Seconds of one training micro-batch (forward + backward) of `config` on `clip`, timed on this backend. */
export async function timeTrainingStep(
  config: ModelConfig,
  clip: { frames: number; height: number; width: number },
  batch: number,
): Promise<number> {
  const key = JSON.stringify([config, clip, batch, tf.getBackend()]);
  const cached = stepCache.get(key);
  if (cached !== undefined) return cached;
  const model = createVideoSwin(config, { seed: 0 });
  const random = new Random(0);
  const input = tf.randomNormal([batch, 3, clip.frames, clip.height, clip.width]);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % config.num_classes);
  const variables = [...model.params.values()];
  try {
    const step = async () => {
      const { value, grads } = tf.tidy(() =>
        tf.variableGrads(
          () => crossEntropy(model.forward(input, { training: true, random: random.uniform }).logits, labels) as tf.Scalar,
          variables,
        ),
      );
      await value.data();
      value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
    };
    // The first step compiles kernels and fills caches; the second is the one that counts.
    await step();
    const started = performance.now();
    await step();
    const seconds = (performance.now() - started) / 1000;
    stepCache.set(key, seconds);
    return seconds;
  } finally {
    input.dispose();
    model.dispose();
  }
}
