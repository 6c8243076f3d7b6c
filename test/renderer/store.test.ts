// The zustand store: slices reduce service events; curve points stay out of it.
import { describe, expect, it } from 'vitest';
import { createWorkbenchStore } from '../../renderer/state/store.ts';
import type { TrainEvent } from '../../core/protocol/workbench.ts';

const started: TrainEvent = {
  kind: 'run-started',
  runId: 'r1',
  name: 'demo',
  epochs: 2,
  iterationsPerEpoch: 3,
  startEpoch: 0,
  startIteration: 0,
  backend: 'wasm',
  resumed: false,
};

describe('training slice', () => {
  it("a new run starting shows none of the previous run's figures", () => {
    const store = createWorkbenchStore();
    store.getState().applyEvent({ kind: 'train', event: started, sentAt: 0 });
    store.getState().applyEvent({
      kind: 'train',
      event: {
        kind: 'iteration',
        runId: 'r1',
        epoch: 1,
        iteration: 4,
        epochIteration: 1,
        iterationsPerEpoch: 3,
        loss: 1,
        lr: 0.1,
        clipsPerSecond: 7,
        etaSeconds: 3,
      },
      sentAt: 0,
    });
    expect(store.getState()).toMatchObject({ iteration: 5, clipsPerSecond: 7 });
    store.getState().setStarting('second');
    const { status, runName, runId, iteration, totalIterations, clipsPerSecond, etaSeconds, backend } = store.getState();
    expect([status, runName, runId, iteration, totalIterations, clipsPerSecond, etaSeconds, backend]).toEqual([
      'starting',
      'second',
      null,
      0,
      0,
      0,
      0,
      '',
    ]);
  });

  it('follows a run from start to finish and keeps a readable log', () => {
    const store = createWorkbenchStore();
    store.getState().setStarting('demo');
    expect(store.getState().status).toBe('starting');
    store.getState().applyEvent({ kind: 'train', event: started, sentAt: 0 });
    expect(store.getState()).toMatchObject({ runId: 'r1', status: 'running', totalIterations: 6, backend: 'wasm' });
    store.getState().applyEvent({
      kind: 'train',
      event: {
        kind: 'iteration',
        runId: 'r1',
        epoch: 0,
        iteration: 1,
        epochIteration: 1,
        iterationsPerEpoch: 3,
        loss: 1.2,
        lr: 0.001,
        clipsPerSecond: 12.5,
        etaSeconds: 9,
      },
      sentAt: 0,
    });
    expect(store.getState()).toMatchObject({ iteration: 2, clipsPerSecond: 12.5, etaSeconds: 9 });
    store.getState().applyEvent({ kind: 'train', event: { kind: 'paused', runId: 'r1', iteration: 2 }, sentAt: 0 });
    expect(store.getState().status).toBe('paused');
    store.getState().applyEvent({ kind: 'train', event: { kind: 'resumed', runId: 'r1', iteration: 2 }, sentAt: 0 });
    store.getState().applyEvent({
      kind: 'train',
      event: {
        kind: 'epoch',
        runId: 'r1',
        epoch: 0,
        epochs: 2,
        train: { loss: 1.1, top1: 0.4, clips: 12 },
        val: { loss: 1.0, top1: 0.5, top5: 1, meanClassAccuracy: 0.5, count: 4, views: { clips: 1, crops: 1 } },
        seconds: 2,
        etaSeconds: 2,
        skipped: 3,
      },
      sentAt: 0,
    });
    store.getState().applyEvent({
      kind: 'train',
      event: {
        kind: 'run-finished',
        runId: 'r1',
        status: 'completed',
        message: null,
        seconds: 4,
        val: { loss: 1.0, top1: 0.5, top5: 1, meanClassAccuracy: 0.5, count: 4 },
      },
      sentAt: 0,
    });
    const state = store.getState();
    expect(state.status).toBe('completed');
    expect(state.epoch).toBe(1);
    expect(state.valTop1).toBe(0.5);
    expect(state.skipped).toBe(3);
    expect(state.log).toEqual([
      'started demo: 2 epochs x 3 iterations on wasm',
      'paused at iteration 2',
      'resumed at iteration 2',
      'epoch 1/2: train loss 1.1000, val loss 1.0000, top-1 50.0%, top-5 100.0%, 3 unreadable samples skipped (2.0 s)',
      'run completed after 4.0 s; val top-1 50.0% at the last epoch',
    ]);
    // Nothing curve-shaped lives in the store.
    expect(Object.keys(state).filter((key) => /^(points|series|curves?|losses)$/i.test(key) || /Points$/.test(key))).toEqual([]);
  });

  it("ignores another client's run once it follows one", () => {
    const store = createWorkbenchStore();
    store.getState().applyTrainEvent(started);
    store.getState().applyTrainEvent({
      kind: 'iteration',
      runId: 'other',
      epoch: 0,
      iteration: 5,
      epochIteration: 5,
      iterationsPerEpoch: 9,
      loss: 3,
      lr: 1,
      clipsPerSecond: 99,
      etaSeconds: 1,
    });
    expect(store.getState().iteration).toBe(0);
    expect(store.getState().clipsPerSecond).toBe(0);
  });
});

describe('jobs, notices and config slices', () => {
  it('tracks job progress until the job finishes', () => {
    const store = createWorkbenchStore();
    store.getState().applyEvent({
      kind: 'job-progress',
      jobId: 'job-1',
      command: 'datasets.scan',
      done: 3,
      total: 10,
      message: 'probing videos',
    });
    expect(store.getState().jobs['job-1']).toEqual({ command: 'datasets.scan', done: 3, total: 10, message: 'probing videos' });
    store
      .getState()
      .applyEvent({ kind: 'job-finished', jobId: 'job-1', command: 'datasets.scan', ok: true, message: null, seconds: 1 });
    expect(store.getState().jobs).toEqual({});
  });

  it('keeps the last five notices and dismisses by id', () => {
    const store = createWorkbenchStore();
    for (let i = 0; i < 7; i++) store.getState().applyEvent({ kind: 'log', level: 'warn', message: `notice ${i}` });
    const notices = store.getState().notices;
    expect(notices.map((n) => n.text)).toEqual(['notice 2', 'notice 3', 'notice 4', 'notice 5', 'notice 6']);
    store.getState().dismiss(notices[0].id);
    expect(store.getState().notices).toHaveLength(4);
  });

  it('selects the first preset and writes its JSON into the editor', () => {
    const store = createWorkbenchStore();
    store.getState().setPresets([
      { name: 'demo-micro', config: { epochs: 3 } },
      { name: 'k400-swin-t', config: { epochs: 30 } },
    ]);
    expect(store.getState().presetName).toBe('demo-micro');
    expect(JSON.parse(store.getState().configText)).toEqual({ epochs: 3 });
    store.getState().choosePreset('k400-swin-t');
    expect(JSON.parse(store.getState().configText)).toEqual({ epochs: 30 });
    store.getState().choosePreset('missing');
    expect(store.getState().presetName).toBe('k400-swin-t');
  });

  it('drops selected runs that no longer exist', () => {
    const store = createWorkbenchStore();
    const run = (id: string) => ({
      id,
      name: id,
      status: 'completed',
      backend: 'wasm',
      epochs: 1,
      epochsDone: 1,
      createdAt: '',
      bestMetric: null,
      flatConfig: {},
    });
    store.getState().setRuns([run('a'), run('b')]);
    store.getState().toggleRun('a');
    store.getState().toggleRun('b');
    store.getState().toggleRun('b');
    expect(store.getState().selectedRuns).toEqual(['a']);
    store.getState().setRuns([run('b')]);
    expect(store.getState().selectedRuns).toEqual([]);
  });
});
