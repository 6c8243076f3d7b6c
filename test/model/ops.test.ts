import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import {
  gatherRows,
  gelu,
  layerNorm,
  linear,
  mergePatches,
  patchEmbed,
  roll,
  windowPartition,
  windowReverse,
} from '../../core/engine/ops.ts';
import { Random } from '../../core/engine/random.ts';
import { tf, type Tensor } from '../../core/engine/tf.ts';

const random = new Random(7);
const randn = (shape: number[]) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal()),
    shape,
  );

function maxDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Runs fn and its gradient twice and checks no tensor is left behind. */
function expectNoLeak(fn: () => void): void {
  fn(); // warm-up (lazily created caches)
  const before = tf.memory().numTensors;
  fn();
  expect(tf.memory().numTensors).toBe(before);
}

describe.each(['wasm', 'cpu'] as const)('ops on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('linear equals x W^T + b, and its custom gradient equals autodiff', () => {
    tf.tidy(() => {
      const x = randn([2, 3, 5]);
      const w = randn([4, 5]);
      const b = randn([4]);
      const reference = (xs: Tensor, ws: Tensor, bs: Tensor) => tf.add(tf.matMul(tf.reshape(xs, [6, 5]), ws, false, true), bs);
      expect(maxDiff(tf.reshape(linear(x, w, b), [6, 4]), reference(x, w, b))).toBeLessThan(1e-5);
      const ours = tf.grads((xs: Tensor, ws: Tensor, bs: Tensor) =>
        tf.sum(tf.mul(linear(xs, ws, bs), tf.reshape(tf.range(0, 24), [2, 3, 4]))),
      )([x, w, b]);
      const theirs = tf.grads((xs: Tensor, ws: Tensor, bs: Tensor) =>
        tf.sum(tf.mul(reference(xs, ws, bs), tf.reshape(tf.range(0, 24), [6, 4]))),
      )([x, w, b]);
      ours.forEach((g, i) => expect(maxDiff(g, theirs[i])).toBeLessThan(1e-3));
      const noBias = tf.grads((xs: Tensor, ws: Tensor) => tf.sum(tf.square(linear(xs, ws, null))))([x, w]);
      const noBiasRef = tf.grads((xs: Tensor, ws: Tensor) =>
        tf.sum(tf.square(tf.matMul(tf.reshape(xs, [6, 5]), ws, false, true))),
      )([x, w]);
      noBias.forEach((g, i) => expect(maxDiff(g, noBiasRef[i])).toBeLessThan(1e-3));
    });
  });

  it('layer norm (biased variance, eps 1e-5) and its gradient', () => {
    tf.tidy(() => {
      const x = tf.add(tf.mul(randn([3, 4, 8]), 3), 1);
      const g = randn([8]);
      const b = randn([8]);
      const reference = (xs: Tensor, gs: Tensor, bs: Tensor) => {
        const { mean, variance } = tf.moments(xs, -1, true);
        return tf.add(tf.mul(tf.div(tf.sub(xs, mean), tf.sqrt(tf.add(variance, 1e-5))), gs), bs);
      };
      expect(maxDiff(layerNorm(x, g, b), reference(x, g, b))).toBeLessThan(1e-5);
      const weights = randn([3, 4, 8]);
      const ours = tf.grads((xs: Tensor, gs: Tensor, bs: Tensor) => tf.sum(tf.mul(layerNorm(xs, gs, bs), weights)))([x, g, b]);
      const theirs = tf.grads((xs: Tensor, gs: Tensor, bs: Tensor) => tf.sum(tf.mul(reference(xs, gs, bs), weights)))([x, g, b]);
      ours.forEach((d, i) => expect(maxDiff(d, theirs[i])).toBeLessThan(1e-4));
    });
  });

  it('exact GELU and its gradient', () => {
    tf.tidy(() => {
      const x = tf.linspace(-6, 6, 97);
      // GELU(1) = 0.5 * (1 + erf(1/sqrt 2)) = 0.8413447460685429
      expect(gelu(tf.scalar(1).reshape([1, 1])).dataSync()[0]).toBeCloseTo(0.8413447460685429, 6);
      const h = 1e-2;
      const numeric = tf.div(tf.sub(gelu(tf.add(x, h)), gelu(tf.sub(x, h))), 2 * h);
      expect(maxDiff(tf.grad((xs: Tensor) => tf.sum(gelu(xs)))(x), numeric)).toBeLessThan(2e-3);
    });
  });

  it('roll matches torch.roll semantics on several axes', () => {
    tf.tidy(() => {
      const x = tf.reshape(tf.range(0, 24), [2, 3, 4]);
      const rolled = roll(x, [-1, 2], [1, 2]).arraySync() as number[][][];
      const source = x.arraySync() as number[][][];
      for (let a = 0; a < 2; a++)
        for (let b = 0; b < 3; b++)
          for (let c = 0; c < 4; c++) {
            // torch.roll: out[(i + shift) mod n] = in[i]
            expect(rolled[a][(b - 1 + 3) % 3][(c + 2) % 4]).toBe(source[a][b][c]);
          }
      expect(maxDiff(roll(roll(x, [-1, 2], [1, 2]), [1, -2], [1, 2]), x)).toBe(0);
    });
  });

  it('window partition and reverse are inverse, windows (d, h, w) ordered', () => {
    tf.tidy(() => {
      const x = tf.reshape(tf.range(0, 2 * 4 * 6 * 4 * 3), [2, 4, 6, 4, 3]);
      const windows = windowPartition(x, [2, 3, 2]);
      expect(windows.shape).toEqual([2 * 2 * 2 * 2, 12, 3]);
      // Window 1 of batch 0 is (d0, h0, w1): its first token is x[0, 0, 0, 2].
      expect(Array.from(windows.slice([1, 0, 0], [1, 1, 3]).dataSync())).toEqual(
        Array.from(x.slice([0, 0, 0, 2, 0], [1, 1, 1, 1, 3]).dataSync()),
      );
      expect(maxDiff(windowReverse(windows, [2, 3, 2], 2, [4, 6, 4]), x)).toBe(0);
    });
  });

  it('patch merging concatenates (even,even), (odd,even), (even,odd), (odd,odd) and pads odd sizes', () => {
    tf.tidy(() => {
      const x = tf.reshape(tf.range(1, 1 + 3 * 3 * 2), [1, 1, 3, 3, 2]);
      const merged = mergePatches(x);
      expect(merged.shape).toEqual([1, 1, 2, 2, 8]);
      const top = Array.from(merged.slice([0, 0, 0, 0, 0], [1, 1, 1, 1, 8]).dataSync());
      // x[h][w] = (h*3 + w)*2 + c + 1: (0,0) -> 1,2; (1,0) -> 7,8; (0,1) -> 3,4; (1,1) -> 9,10.
      expect(top).toEqual([1, 2, 7, 8, 3, 4, 9, 10]);
      const corner = Array.from(merged.slice([0, 0, 1, 1, 0], [1, 1, 1, 1, 8]).dataSync());
      expect(corner).toEqual([17, 18, 0, 0, 0, 0, 0, 0]);
    });
  });

  it('patch embedding equals a strided Conv3d with end padding', () => {
    tf.tidy(() => {
      const x = randn([1, 3, 3, 5, 6]);
      const w = randn([4, 3, 2, 2, 2]);
      const b = randn([4]);
      const ours = patchEmbed(x, w, b, [2, 2, 2]); // [1, 2, 3, 3, 4]
      const padded = tf.pad(x, [
        [0, 0],
        [0, 0],
        [0, 1],
        [0, 1],
        [0, 0],
      ]);
      const conv = tf.add(
        tf.conv3d(
          tf.transpose(padded, [0, 2, 3, 4, 1]) as tf.Tensor5D,
          tf.transpose(w, [2, 3, 4, 1, 0]) as tf.Tensor5D,
          [2, 2, 2],
          'valid',
        ),
        b,
      );
      expect(maxDiff(ours, conv)).toBeLessThan(1e-4);
    });
  });

  it('gatherRows scatters its gradient back to repeated rows', () => {
    tf.tidy(() => {
      const table = randn([5, 2]);
      const index = Int32Array.from([4, 0, 4, 2]);
      expect(Array.from(gatherRows(table, index).dataSync())).toEqual(Array.from(tf.gather(table, Array.from(index)).dataSync()));
      const grad = tf.grad((t: Tensor) =>
        tf.sum(
          tf.mul(
            gatherRows(t, index),
            tf.tensor2d([
              [1, 2],
              [3, 4],
              [5, 6],
              [7, 8],
            ]),
          ),
        ),
      )(table);
      expect(Array.from(grad.dataSync())).toEqual([3, 4, 0, 0, 7, 8, 0, 0, 6, 8]);
    });
  });

  it('no op leaks tensors, forward or backward', () => {
    const x = randn([2, 4, 6, 4, 8]);
    const w = randn([8, 8]);
    const b = randn([8]);
    expectNoLeak(() => {
      const grads = tf.grads((xs: Tensor, ws: Tensor, bs: Tensor) =>
        tf.sum(
          gelu(
            layerNorm(
              linear(roll(windowReverse(windowPartition(xs, [2, 3, 2]), [2, 3, 2], 2, [4, 6, 4]), [1, 1], [1, 2]), ws, bs),
              bs,
              bs,
            ),
          ),
        ),
      )([x, w, b]);
      tf.dispose(grads);
      const table = randn([5, 2]);
      const g = tf.grad((t: Tensor) => tf.sum(gatherRows(t, Int32Array.from([1, 1]))))(table);
      tf.dispose([g, table]);
    });
    tf.dispose([x, w, b]);
  });
});
