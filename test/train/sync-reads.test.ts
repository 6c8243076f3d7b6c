// A training step reads nothing back synchronously (no dataSync/arraySync on the training path: on a
// GPU backend each one stalls the device, and tfjs-webgpu cannot do it in Node at all), and reads
// back asynchronously once: the loss and predictions together. Counted through the backend's own
// readSync/read, on every backend that runs here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';
import { modelConfigOf } from '../../core/train/run-config.ts';
import { train } from '../../core/train/trainer.ts';
import { takeWebGpuErrors } from '../../core/engine/webgpu/backend.ts';
import { memorySource, tinyConfig } from './helpers.ts';
import { webGpuSkipReason } from '../engine/webgpu/available.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/**
 * Counts, until `restore()`, the backend's synchronous reads requested by code (tensor.dataSync,
 * arraySync, bufferSync: all go through the engine's readSync) and its asynchronous reads. Kernels of
 * the cpu backend call readSync on their inputs internally (its memory is the host's), and the cpu
 * and wasm backends implement `read` by calling `readSync` at once: neither is a read back.
 */
function countReads(backend: tf.KernelBackend) {
  const counts = { sync: 0, async: 0 };
  const engine = tf.engine();
  const { readSync, read } = backend;
  const engineReadSync = engine.readSync;
  let requested = false;
  engine.readSync = (...args: Parameters<typeof engineReadSync>) => {
    requested = true;
    try {
      return engineReadSync.apply(engine, args);
    } finally {
      requested = false;
    }
  };
  backend.readSync = (...args: Parameters<typeof readSync>) => {
    if (requested) counts.sync += 1;
    return readSync.apply(backend, args);
  };
  backend.read = (...args: Parameters<typeof read>) => {
    counts.async += 1;
    return read.apply(backend, args);
  };
  const restore = () => {
    engine.readSync = engineReadSync;
    backend.readSync = readSync;
    backend.read = read;
  };
  return { counts, restore };
}

const webgpuSkip = webGpuSkipReason('test/train/sync-reads.test.ts');
const backends = (['wasm', 'cpu', 'webgpu'] as const).filter((name) => name !== 'webgpu' || webgpuSkip === null);

describe.each(backends)('reads back during training on %s', (backendName) => {
  it('no synchronous read in forward, gradient, loss, clipping, AdamW or metrics; one read per step', async () => {
    await initBackend(backendName);
    // Dropout, drop path, label smoothing, accumulation and clipping all on: every part of a step runs.
    const config = tinyConfig({
      epochs: 1,
      update_interval: 2,
      loss: { label_smoothing: 0.1 },
      optimizer: { lr: 2e-3, weight_decay: 0.02, paramwise: 'none', clip_grad_norm: 1 },
    });
    const model = createVideoSwin(modelConfigOf(config), { seed: 1 });
    const runDir = mkdtempSync(join(tmpdir(), 'vswin-sync-reads-'));
    dirs.push(runDir);
    const { counts, restore } = countReads(tf.backend());
    const atIteration: { sync: number; async: number }[] = [];
    let result;
    try {
      result = await train({
        runId: 'sync-reads',
        config,
        model,
        train: memorySource({ count: 12, classes: 3, batchSize: 4, seed: 11 }),
        val: memorySource({ count: 6, classes: 3, batchSize: 3, seed: 12, shuffle: false }),
        runDir,
        registry: null,
        backend: backendName,
        onEvent: (event) => {
          if (event.kind === 'iteration') atIteration.push({ ...counts });
        },
      });
    } finally {
      restore();
      model.dispose();
    }
    expect(result.status, result.message ?? '').toBe('completed');
    expect(atIteration).toHaveLength(3);
    // Validation (2 batches) and the checkpoint (parameters, moments) read after the last step.
    expect(counts.sync, 'synchronous reads during the run').toBe(0);
    expect(atIteration.map((c) => c.async)).toEqual([1, 2, 3]);
    expect(counts.async).toBeGreaterThan(3 + 2);
    if (backendName === 'webgpu') expect(takeWebGpuErrors(), 'WebGPU device errors').toEqual([]);
  });
});
