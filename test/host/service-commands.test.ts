// The service's command handlers on a real (tiny) workbench home: argument errors name the field and
// the value, config issues come back as data, model work runs in compute workers, and the functions
// those workers run (training, comparison, attention, prediction) leave no tensors behind.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';
import { Workbench } from '../../core/host/service/commands.ts';
import { demoRunConfig, ensureDemoDataset } from '../../core/app/demo.ts';
import { compareCheckpoints } from '../../core/app/evaluate.ts';
import {
  attentionView,
  attentionWindow,
  forgetLoadedModel,
  keptAttentionCapture,
  loadedModel,
  predictVideo,
} from '../../core/app/inspect.ts';
import { evaluationSpec } from '../../core/train/data-source.ts';
import { createLoader } from '../../core/data/loader.ts';
import { modelCallWorkerStarts } from '../../core/host/service/compute-pool.ts';
import { createRun, runTraining, TrainControl } from '../../core/app/training.ts';
import { modelConfigOf } from '../../core/train/run-config.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { timeTrainingStep } from '../../core/host/service/estimate.ts';
import type { AttentionView, AttentionWindow, DatasetRef, WorkbenchEvent } from '../../core/protocol/workbench.ts';

let home: string;
let workbench: Workbench;
let dataset: DatasetRef;
const events: WorkbenchEvent[] = [];
const context = { jobId: 'test', progress: () => undefined, emit: (event: WorkbenchEvent) => events.push(event) };
const call = (command: string, args: unknown) => workbench.dispatch(command, args, context);

/** Each query row of a window's probs[head][query][key] sums to 1 (the masked keys get ~0). */
function expectRowsSumToOne(window: Pick<AttentionWindow, 'probs' | 'heads' | 'tokensPerWindow'>) {
  const n = window.tokensPerWindow;
  expect(window.probs).toHaveLength(window.heads * n * n);
  for (let row = 0; row < window.heads * n; row++) {
    const sum = window.probs.slice(row * n, (row + 1) * n).reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - 1), `row ${row}`).toBeLessThan(1e-3);
  }
}

/** The full attention capture of one block, computed here with the model's forward (as the service's attention does). */
async function fullCapture(checkpoint: string, video: string, stage: number, block: number): Promise<Float32Array> {
  const { info, model } = loadedModel(checkpoint);
  const loader = await createLoader({
    samples: [{ path: basename(video), labels: [0] }],
    format: 'video',
    root: dirname(video),
    pipeline: evaluationSpec(info.pipeline),
    batchSize: 1,
    shuffle: false,
    seed: 0,
    workers: 1,
  });
  for await (const batch of loader.epoch(0)) {
    const shape = [1, ...batch.shape.slice(1)];
    const input = batch.input.subarray(
      0,
      shape.reduce((a, b) => a * b, 1),
    );
    const probs = tf.tidy(
      () => model.forward(tf.tensor(input, shape, 'float32'), { attention: [{ stage, block }] }).attention[0].probs,
    );
    try {
      return (await probs.data()) as Float32Array;
    } finally {
      probs.dispose();
    }
  }
  throw new Error(`${video}: no clip`);
}

beforeAll(async () => {
  await initBackend('wasm');
  home = mkdtempSync(join(tmpdir(), 'vswin-commands-'));
  dataset = await ensureDemoDataset(home, { classes: 3, perClass: 4, frames: 8, size: 32 });
  workbench = new Workbench({ home, version: 'test', mediaUrl: (path) => `/media?path=${encodeURIComponent(path)}` });
  workbench.setEmitter((event) => events.push(event));
});

afterAll(async () => {
  await workbench?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('argument and config errors', () => {
  it('names the unknown command and the allowed ones', async () => {
    await expect(call('datasets.delete', {})).rejects.toThrow(
      /unknown command "datasets.delete"; expected one of settings.get, /,
    );
    // Names of Object.prototype are not commands either: a clear refusal, never a TypeError.
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const error = await call(name, {}).catch((caught: unknown) => caught);
      expect(error, name).toBeInstanceOf(Error);
      expect(error, name).not.toBeInstanceOf(TypeError);
      expect((error as Error).message, name).toMatch(new RegExp(`^unknown command "${name}"; expected one of settings.get, `));
    }
  });

  it('refuses arguments nested 100 000 deep or holding too many values, without overflowing the stack', async () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100_000; i++) deep = { inner: deep };
    await expect(call('config.validate', { config: deep })).rejects.toThrow(
      'config.validate: arguments are nested deeper than 64 levels; refused',
    );
    let list: unknown = [];
    for (let i = 0; i < 100_000; i++) list = [list];
    await expect(call('train.start', { config: list, name: 'x' })).rejects.toThrow(/train\.start: arguments are nested deeper/);
    await expect(call('runs.curves', { runIds: Array.from({ length: 300_000 }, () => 'r') })).rejects.toThrow(
      'runs.curves: arguments hold more than 200000 values; refused',
    );
    // A config of ordinary depth is still checked field by field.
    const result = (await call('config.validate', { config: { epochs: 1 } })) as { ok: boolean };
    expect(result.ok).toBe(false);
  });

  it('names the field, the value received and what was expected', async () => {
    await expect(call('datasets.scan', { root: 'relative/folder' })).rejects.toThrow(
      'datasets.scan: root: root: expected an absolute path (received "relative/folder")',
    );
    await expect(
      call('datasets.write', { root: dataset.root, outDir: join(home, 'x'), val: 2, test: 0, seed: 0 }),
    ).rejects.toThrow(/val: .*received 2/);
    await expect(call('train.control', { runId: 'r', command: 'explode' })).rejects.toThrow(/command: .*received "explode"/);
  });

  it('returns schema issues of a config as data, with paths', async () => {
    const config = { ...demoRunConfig(dataset), epochs: 0, batch_size: 'four' };
    const result = (await call('config.validate', { config })) as { ok: boolean; issues: { path: string; message: string }[] };
    expect(result.ok).toBe(false);
    expect(result.issues.map((i) => i.path).sort()).toEqual(['batch_size', 'epochs']);
    const missing = (await call('config.validate', {
      config: {
        ...demoRunConfig(dataset),
        data: { ...(demoRunConfig(dataset).data as object), train_ann: join(home, 'nope.txt') },
      },
    })) as { ok: boolean; issues: { message: string }[] };
    expect(missing.ok).toBe(false);
    expect(missing.issues[0].message).toContain('nope.txt does not exist');
  });

  it('estimates cost for a valid config on the running backend', async () => {
    const before = tf.memory().numTensors;
    const result = (await call('config.validate', { config: demoRunConfig(dataset) })) as {
      ok: boolean;
      estimate: { parameters: number; secondsPerEpoch: number; backend: string };
    };
    expect(result.ok).toBe(true);
    expect(result.estimate.backend).toBe('wasm');
    expect(result.estimate.parameters).toBeGreaterThan(100_000);
    expect(result.estimate.secondsPerEpoch).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('model-backed commands', () => {
  let checkpoints: string[] = [];

  it('trains a run to completion, recording events, runs and checkpoints', async () => {
    const config = {
      ...demoRunConfig(dataset),
      epochs: 2,
      batch_size: 3,
      data: { ...(demoRunConfig(dataset).data as object), workers: 1 },
    };
    const { runId } = (await call('train.start', { config, name: 'unit' })) as { runId: string };
    const result = await workbench.training.wait(runId);
    expect(result?.status).toBe('completed');
    const kinds = events.filter((e) => e.kind === 'train').map((e) => (e.kind === 'train' ? e.event.kind : ''));
    expect(kinds[0]).toBe('run-started');
    expect(kinds.at(-1)).toBe('run-finished');
    expect(kinds.filter((k) => k === 'epoch')).toHaveLength(2);
    const runs = (await call('runs.list', {})) as { id: string; status: string; epochsDone: number }[];
    expect(runs).toMatchObject([{ id: runId, status: 'completed', epochsDone: 2 }]);
    checkpoints = ((await call('runs.checkpoints', {})) as { path: string; runId: string }[])
      .filter((c) => c.runId === runId)
      .map((c) => c.path);
    expect(checkpoints).toHaveLength(2);
    const csv = (await call('runs.csv', { runIds: [runId] })) as { csv: string };
    expect(csv.csv.split('\n')[0]).toBe('run_id,run_name,scope,split,step,epoch,metric,value');
  });

  it('pauses, resumes and stops a run, then continues it from its last checkpoint', async () => {
    const config = {
      ...demoRunConfig(dataset),
      epochs: 3,
      batch_size: 3,
      data: { ...(demoRunConfig(dataset).data as object), workers: 1 },
    };
    const seen = (runId: string, kind: string) =>
      events.some((e) => e.kind === 'train' && e.event.runId === runId && e.event.kind === kind);
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 3000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(check()).toBe(true);
    };
    const { runId } = (await call('train.start', { config, name: 'controlled' })) as { runId: string };
    await until(() => seen(runId, 'iteration'));
    await call('train.control', { runId, command: 'pause' });
    await until(() => seen(runId, 'paused'));
    await call('train.control', { runId, command: 'resume' });
    await until(() => seen(runId, 'resumed'));
    // Stop after the first checkpoint so there is a state to resume from.
    await until(() => seen(runId, 'checkpoint'));
    await call('train.control', { runId, command: 'stop' });
    const stopped = await workbench.training.wait(runId);
    expect(stopped?.status).toBe('stopped');
    await expect(call('train.control', { runId, command: 'pause' })).rejects.toThrow(
      `run ${runId} is not running in this service`,
    );
    await call('train.resume', { runId });
    const resumed = await workbench.training.wait(runId);
    expect(resumed?.status).toBe('completed');
    expect(resumed?.epochsDone).toBe(3);
    expect(
      events.some((e) => e.kind === 'train' && e.event.runId === runId && e.event.kind === 'run-started' && e.event.resumed),
    ).toBe(true);
  });

  it('compares checkpoints, shows attention and predicts (in compute workers)', async () => {
    const comparison = (await call('compare.checkpoints', { checkpoints, annFile: dataset.valAnn, root: dataset.root })) as {
      checkpoints: { label: string; confusion: number[][]; predictions: number[] }[];
      videos: unknown[];
      weightChange: { stages: number[][] };
    };
    expect(comparison.checkpoints.map((c) => c.label)).toEqual(['unit epoch 1', 'unit epoch 2']);
    for (const c of comparison.checkpoints) expect(c.confusion.flat().reduce((a, b) => a + b, 0)).toBe(comparison.videos.length);
    // The demo recipe's model: two stages of two blocks.
    expect(comparison.weightChange.stages.map((s) => s.length)).toEqual([2, 2]);
    expect(comparison.weightChange.stages.flat().every((v) => v > 0)).toBe(true);

    const video = join(
      dataset.root,
      ((await call('datasets.videos', { annFile: dataset.valAnn, root: dataset.root })) as { path: string }[])[0].path.split(
        '/videos/',
      )[1],
    );
    const view = (await call('attention.view', { checkpoint: checkpoints[1], video, stage: 0, block: 1 })) as AttentionView;
    expect(view.shifted).toBe(true);
    // The view carries the geometry, not the attention: that stays in the worker, one window per call.
    expect(view).not.toHaveProperty('probs');
    expect(view.checkpoint).toBe(checkpoints[1]);
    expect(view.frames).toHaveLength(8);
    expect(view.windowsPerClip).toBeGreaterThan(1);
    const args = { checkpoint: checkpoints[1], video, stage: 0, block: 1 };
    const last = (await call('attention.window', { ...args, window: view.windowsPerClip - 1 })) as AttentionWindow;
    expect(last).toMatchObject({
      stage: 0,
      block: 1,
      window: view.windowsPerClip - 1,
      heads: view.heads,
      tokensPerWindow: view.tokensPerWindow,
      windowsPerClip: view.windowsPerClip,
    });
    expectRowsSumToOne(last);
    const first = (await call('attention.window', { ...args, window: 0 })) as AttentionWindow;
    expectRowsSumToOne(first);
    expect(first.probs).not.toEqual(last.probs);
    // A block that is not the kept one is computed first.
    const other = (await call('attention.window', { ...args, block: 0, window: 0 })) as AttentionWindow;
    expectRowsSumToOne(other);
    expect(other.probs).not.toEqual(first.probs);
    await expect(call('attention.window', { ...args, window: view.windowsPerClip })).rejects.toThrow(
      `attention.window: window must be an integer in [0, ${view.windowsPerClip}) for stage 0 of this clip, received ${view.windowsPerClip}`,
    );
    await expect(call('attention.window', { ...args, window: -1 })).rejects.toThrow(/attention\.window: window: .*received -1/);
    await expect(call('attention.window', { ...args, window: 1.5 })).rejects.toThrow(
      /attention\.window: window: .*received 1\.5/,
    );
    await expect(call('attention.view', { checkpoint: checkpoints[1], video, stage: 0, block: 7 })).rejects.toThrow(
      'attention: block must be 0..1 in stage 0, received 7',
    );
    await expect(call('attention.window', { ...args, block: 7, window: 0 })).rejects.toThrow(
      'attention: block must be 0..1 in stage 0, received 7',
    );

    const prediction = (await call('video.predict', { checkpoint: checkpoints[1], video })) as {
      top5: { label: string; score: number }[];
    };
    expect(prediction.top5).toHaveLength(3);
    // Attention and prediction share one worker that keeps the model; a checkpoint file that
    // changes on disk is read again (its other weights give other scores).
    const starts = modelCallWorkerStarts();
    const copy = join(home, `changing${extname(checkpoints[1])}`);
    copyFileSync(checkpoints[1], copy);
    const before = (await call('video.predict', { checkpoint: copy, video })) as typeof prediction;
    expect(before.top5).toEqual(prediction.top5);
    await new Promise((resolve) => setTimeout(resolve, 20));
    copyFileSync(checkpoints[0], copy);
    const after = (await call('video.predict', { checkpoint: copy, video })) as typeof prediction;
    expect(after.top5).toEqual(((await call('video.predict', { checkpoint: checkpoints[0], video })) as typeof prediction).top5);
    expect(after.top5).not.toEqual(before.top5);
    expect(modelCallWorkerStarts()).toBe(starts);
    const multiView = (await call('compare.checkpoints', {
      checkpoints,
      annFile: dataset.valAnn,
      root: dataset.root,
      views: { clips: 2, crops: 3 },
    })) as { checkpoints: { views: { clips: number; crops: number }; confusion: number[][] }[] };
    expect(multiView.checkpoints[0].views).toEqual({ clips: 2, crops: 3 });
    expect(multiView.checkpoints[0].confusion.flat().reduce((a, b) => a + b, 0)).toBe(comparison.videos.length);
    await expect(
      call('compare.checkpoints', { checkpoints, annFile: dataset.valAnn, root: dataset.root, views: { clips: 2, crops: 2 } }),
    ).rejects.toThrow(/views.crops/);
    expect(prediction.top5.reduce((a, p) => a + p.score, 0)).toBeCloseTo(1, 5);
  });

  it('runs training and the model calls in this thread without leaking tensors', async () => {
    // The workers run the same functions; called here, their tensors can be counted.
    const before = tf.memory().numTensors;
    const config = workbench.training.resolve({
      ...demoRunConfig(dataset),
      epochs: 1,
      batch_size: 3,
      data: { ...(demoRunConfig(dataset).data as object), workers: 1 },
    });
    const prepared = createRun(workbench.registry, { home, config, configPath: null, name: 'in-thread', backend: 'wasm' });
    const result = await runTraining({
      registry: workbench.registry,
      prepared,
      backend: 'wasm',
      control: new TrainControl(),
      onEvent: () => undefined,
    });
    expect(result.status).toBe('completed');
    const video = join(
      dataset.root,
      ((await call('datasets.videos', { annFile: dataset.valAnn, root: dataset.root })) as { path: string }[])[0].path.split(
        '/videos/',
      )[1],
    );
    await compareCheckpoints({
      checkpoints,
      annFile: dataset.valAnn as string,
      root: dataset.root,
      mediaUrl: (path) => path,
      progress: () => undefined,
      views: { clips: 2, crops: 1 },
    });
    await attentionView(checkpoints[0], video, 1, 1);
    await predictVideo(checkpoints[0], video, () => undefined);
    // The model calls keep the last checkpoint's model for the next call: freed here, or when
    // another checkpoint replaces it, and never more than one.
    const kept = tf.memory().numTensors;
    const view = await attentionView(checkpoints[1], video, 0, 1);
    expect(tf.memory().numTensors).toBe(kept);
    // The block's attention is kept as host memory for the window calls, and only that one.
    const size = view.heads * view.tokensPerWindow ** 2;
    expect(keptAttentionCapture()).toEqual({
      checkpoint: checkpoints[1],
      video,
      stage: 0,
      block: 1,
      values: view.windowsPerClip * size,
    });
    // Each window equals its slice of the full capture, computed here with the model's forward.
    const full = await fullCapture(checkpoints[1], video, 0, 1);
    expect(full.length).toBe(view.windowsPerClip * size);
    for (let w = 0; w < view.windowsPerClip; w++) {
      const window = await attentionWindow(checkpoints[1], video, 0, 1, w);
      expectRowsSumToOne(window);
      const expected = full.subarray(w * size, (w + 1) * size);
      const worst = window.probs.reduce((max, v, i) => Math.max(max, Math.abs(v - expected[i])), 0);
      expect(worst, `window ${w}`).toBeLessThanOrEqual(6e-6);
    }
    expect(tf.memory().numTensors).toBe(kept);
    // Another block replaces the capture; another checkpoint drops it with the model.
    await attentionWindow(checkpoints[1], video, 1, 0, 0);
    expect(keptAttentionCapture()).toMatchObject({ stage: 1, block: 0 });
    await predictVideo(checkpoints[0], video, () => undefined);
    expect(keptAttentionCapture()).toBeNull();
    await attentionView(checkpoints[1], video, 0, 1);
    expect(keptAttentionCapture()).not.toBeNull();
    expect(tf.memory().numTensors).toBe(kept);
    forgetLoadedModel();
    expect(keptAttentionCapture()).toBeNull();
    const seconds = await timeTrainingStep(parseModelConfig(modelConfigOf(config)), { frames: 8, height: 32, width: 32 }, 2);
    expect(seconds).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
