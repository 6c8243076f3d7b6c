// Training and validation end to end on the webgpu backend: the same run as on wasm (same seeds,
// same data, dropout and drop path drawn on the host) gives the same losses and the same validation
// metrics, and neither tensors nor GPU buffers pile up from step to step. Tiny model and clips: on
// llvmpipe (CI) a step costs seconds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';
import { takeWebGpuErrors, webGpuMemory } from '../../core/engine/webgpu/backend.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';
import { modelConfigOf } from '../../core/train/run-config.ts';
import { train, type TrainResult } from '../../core/train/trainer.ts';
import { memorySource, tinyConfig } from './helpers.ts';
import { webGpuSkipReason } from '../engine/webgpu/available.ts';

const skip = webGpuSkipReason('test/train/webgpu-training.test.ts');
const dirs: string[] = [];
afterAll(async () => {
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  await initBackend('wasm');
});

interface Trace {
  result: TrainResult;
  losses: number[];
  /** Live tensors and (on webgpu) GPU buffers after each optimizer step. */
  memory: { tensors: number; buffers: number }[];
  tensorsBefore: number;
  tensorsAfter: number;
}

async function run(backend: 'wasm' | 'webgpu'): Promise<Trace> {
  await initBackend(backend);
  const config = tinyConfig({ epochs: 2 });
  const model = createVideoSwin(modelConfigOf(config), { seed: 1 });
  const runDir = mkdtempSync(join(tmpdir(), `vswin-${backend}-train-`));
  dirs.push(runDir);
  // Build the model's cached shift masks before counting.
  tf.tidy(() => model.predict(tf.zeros([1, 3, 4, 16, 16])));
  const tensorsBefore = tf.memory().numTensors;
  const losses: number[] = [];
  const memory: Trace['memory'] = [];
  const result = await train({
    runId: `${backend}-train`,
    config,
    model,
    train: memorySource({ count: 12, classes: 3, batchSize: 4, seed: 11 }),
    val: memorySource({ count: 6, classes: 3, batchSize: 3, seed: 12, shuffle: false }),
    runDir,
    registry: null,
    backend,
    onEvent: (event) => {
      if (event.kind !== 'iteration') return;
      losses.push(event.loss);
      memory.push({ tensors: tf.memory().numTensors, buffers: backend === 'webgpu' ? webGpuMemory().buffers : 0 });
    },
  });
  const tensorsAfter = tf.memory().numTensors;
  model.dispose();
  return { result, losses, memory, tensorsBefore, tensorsAfter };
}

describe.skipIf(skip !== null)('training on webgpu', () => {
  it('equals the wasm run (losses, validation) and leaks neither tensors nor GPU buffers', async () => {
    const cpuSide = await run('wasm');
    const gpu = await run('webgpu');
    expect(gpu.result.status, gpu.result.message ?? '').toBe('completed');
    expect(gpu.losses).toHaveLength(6);
    gpu.losses.forEach((loss, i) => expect(Math.abs(loss - cpuSide.losses[i]), `loss at iteration ${i}`).toBeLessThan(1e-4));
    const [a, b] = [cpuSide.result.lastVal!, gpu.result.lastVal!];
    expect(b.top1).toBe(a.top1);
    expect(b.top5).toBe(a.top5);
    expect(Math.abs(b.loss - a.loss)).toBeLessThan(1e-4);
    expect(gpu.result.lastTrain!.top1).toBe(cpuSide.result.lastTrain!.top1);
    // From the second step on, parameters + moments only: the same number of tensors and buffers.
    const steady = gpu.memory.slice(1);
    expect(new Set(steady.map((m) => m.tensors)).size, JSON.stringify(gpu.memory)).toBe(1);
    expect(new Set(steady.map((m) => m.buffers)).size, JSON.stringify(gpu.memory)).toBe(1);
    expect(gpu.tensorsAfter).toBe(gpu.tensorsBefore);
    expect(takeWebGpuErrors(), 'WebGPU device errors').toEqual([]);
  });
});
