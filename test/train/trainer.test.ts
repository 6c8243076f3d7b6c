import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';
import { Registry } from '../../core/registry/registry.ts';
import { TrainControl } from '../../core/train/control.ts';
import { modelConfigOf } from '../../core/train/run-config.ts';
import { train } from '../../core/train/trainer.ts';
import type { TrainEvent } from '../../core/protocol/train.ts';
import { memorySource, tinyConfig } from './helpers.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vswin-train-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('training loop', () => {
  it('lowers the loss, validates, checkpoints, and leaks no tensors', async () => {
    const config = tinyConfig({ epochs: 4, update_interval: 2 });
    const model = createVideoSwin(modelConfigOf(config), { seed: 1 });
    const trainSource = memorySource({ count: 24, classes: 3, batchSize: 4, seed: 11 });
    const valSource = memorySource({ count: 12, classes: 3, batchSize: 6, seed: 12, shuffle: false });
    // Build the model's cached shift masks before counting.
    tf.tidy(() => model.predict(tf.zeros([1, 3, 4, 16, 16])));
    const before = tf.memory().numTensors;
    const events: TrainEvent[] = [];
    const afterSteps: number[] = [];
    const runDir = tempDir();
    const result = await train({
      runId: 'loss-test',
      config,
      model,
      train: trainSource,
      val: valSource,
      runDir,
      registry: null,
      backend: 'wasm',
      onEvent: (event) => {
        events.push(event);
        if (event.kind === 'iteration' && (event.iteration + 1) % 2 === 0) afterSteps.push(tf.memory().numTensors);
      },
    });
    expect(result.status).toBe('completed');
    expect(tf.memory().numTensors).toBe(before);
    // Between optimizer steps the live tensors are exactly the parameters + moments: constant.
    expect(new Set(afterSteps.slice(1)).size).toBe(1);
    const epochs = events.filter((e) => e.kind === 'epoch');
    expect(epochs).toHaveLength(4);
    const trainLoss = epochs.map((e) => (e.kind === 'epoch' ? e.train.loss : NaN));
    expect(trainLoss[3]).toBeLessThan(trainLoss[0] * 0.7);
    expect(result.lastVal!.top1).toBeGreaterThan(0.6);
    const iterations = events.filter((e) => e.kind === 'iteration');
    expect(iterations).toHaveLength(4 * 6);
    expect(iterations.every((e) => e.kind === 'iteration' && e.lr > 0 && e.clipsPerSecond > 0 && Number.isFinite(e.loss))).toBe(
      true,
    );
    // keep_last 2 + best: the oldest checkpoints were pruned.
    expect(existsSync(join(runDir, 'checkpoints', 'epoch_0004.safetensors'))).toBe(true);
    expect(existsSync(join(runDir, 'checkpoints', 'epoch_0004.state.safetensors'))).toBe(true);
    model.dispose();
  });

  it('resumes exactly: 1 epoch + stop + resume equals 2 uninterrupted epochs', async () => {
    // 3 micro-batches per epoch with update_interval 2: an accumulation window spans the epoch
    // boundary, and drop path + head dropout consume the RNG, so all state must round-trip.
    const config = tinyConfig({ epochs: 2, update_interval: 2 });
    const source = () => memorySource({ count: 12, classes: 3, batchSize: 4, seed: 5 });

    const straight = createVideoSwin(modelConfigOf(config), { seed: 2 });
    const uninterrupted = await train({
      runId: 'straight',
      config,
      model: straight,
      train: source(),
      val: null,
      runDir: tempDir(),
      registry: null,
      backend: 'wasm',
    });
    expect(uninterrupted.status).toBe('completed');
    const expected = straight.stateDict();
    straight.dispose();

    const home = tempDir();
    const registry = Registry.open(home);
    registry.createRun({
      id: 'resumed',
      name: 'r',
      config,
      configPath: null,
      datasetId: null,
      projectVersion: 'test',
      backend: 'wasm',
      seed: 3,
      gitCommit: null,
      runDir: join(home, 'run'),
      epochs: 2,
    });
    const control = new TrainControl();
    const first = createVideoSwin(modelConfigOf(config), { seed: 2 });
    const stopped = await train({
      runId: 'resumed',
      config,
      model: first,
      train: source(),
      val: null,
      runDir: join(home, 'run'),
      registry,
      backend: 'wasm',
      control,
      onEvent: (event) => {
        if (event.kind === 'epoch') control.send({ kind: 'stop', reason: 'test stop' });
      },
    });
    expect(stopped.status).toBe('stopped');
    expect(stopped.epochsDone).toBe(1);
    expect(registry.requireRun('resumed').status).toBe('stopped');
    first.dispose();

    const checkpoint = registry.checkpoints('resumed').at(-1)!;
    expect(checkpoint.epoch).toBe(1);
    const second = createVideoSwin(modelConfigOf(config), { seed: 99 });
    const resumed = await train({
      runId: 'resumed',
      config,
      model: second,
      train: source(),
      val: null,
      runDir: join(home, 'run'),
      registry,
      backend: 'wasm',
      resumeFrom: { weights: checkpoint.path, state: checkpoint.statePath! },
    });
    expect(resumed.status).toBe('completed');
    expect(resumed.iteration).toBe(6);
    const got = second.stateDict();
    for (const [key, tensor] of expected) {
      expect(Array.from(got.get(key)!.data), key).toEqual(Array.from(tensor.data));
    }
    // Iteration metrics exist once per iteration, without duplicates from the resumed part.
    const losses = registry.metrics('resumed').filter((m) => m.scope === 'iteration' && m.name === 'loss');
    expect(losses.map((m) => m.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(registry.requireRun('resumed')).toMatchObject({ status: 'completed', epochsDone: 2, iteration: 6 });
    second.dispose();
    registry.close();
  });

  it('stops with a clear message when the loss is not finite', async () => {
    const config = tinyConfig({ epochs: 1 });
    const model = createVideoSwin(modelConfigOf(config), { seed: 1 });
    tf.tidy(() => model.predict(tf.zeros([1, 3, 4, 16, 16])));
    const before = tf.memory().numTensors;
    const result = await train({
      runId: 'nan',
      config,
      model,
      train: memorySource({ count: 8, classes: 3, batchSize: 4, seed: 1, shuffle: false, poison: true }),
      val: null,
      runDir: tempDir(),
      registry: null,
      backend: 'wasm',
    });
    expect(result.status).toBe('failed');
    expect(result.message).toMatch(/the loss became NaN at epoch 1, iteration 0/);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('pauses and resumes on command', async () => {
    const config = tinyConfig({ epochs: 1 });
    const model = createVideoSwin(modelConfigOf(config), { seed: 1 });
    const control = new TrainControl();
    const kinds: string[] = [];
    const result = await train({
      runId: 'pause',
      config,
      model,
      train: memorySource({ count: 8, classes: 3, batchSize: 4, seed: 1 }),
      val: null,
      runDir: tempDir(),
      registry: null,
      backend: 'wasm',
      control,
      onEvent: (event) => {
        kinds.push(event.kind);
        if (event.kind === 'iteration' && event.iteration === 0) {
          control.send({ kind: 'pause' });
          setTimeout(() => control.send({ kind: 'resume' }), 20);
        }
      },
    });
    expect(result.status).toBe('completed');
    expect(kinds.slice(0, 5)).toEqual(['run-started', 'iteration', 'paused', 'resumed', 'iteration']);
    model.dispose();
  });
});
