// A compute worker: runs a training run or model calls off the service's main thread, so the
// service keeps answering while the model works, and a crash here ends this worker's jobs only.
// The model-call worker lives on between calls and keeps the last checkpoint's model loaded.
import { parentPort } from 'node:worker_threads';
import { currentBackend, initBackend } from '../../engine/backend.ts';
import { Registry } from '../../registry/registry.ts';
import type { FromWorker, ToWorker } from './compute-protocol.ts';
import { compareCheckpoints } from '../../app/evaluate.ts';
import { attentionView, attentionWindow, predictVideo } from '../../app/inspect.ts';
import { runTraining, TrainControl } from '../../app/training.ts';
import { timeTrainingStep } from './estimate.ts';

if (!parentPort) throw new Error('compute-worker.ts runs inside a worker thread only');
const port = parentPort;
const send = (message: FromWorker) => port.postMessage(message);
const control = new TrainControl();

async function start(message: Extract<ToWorker, { kind: 'start' }>): Promise<unknown> {
  const progress = (done: number, total: number, text: string) =>
    send({ kind: 'progress', id: message.id, done, total, message: text });
  await initBackend(message.backend);
  const task = message.task;
  switch (task.type) {
    case 'train': {
      const registry = Registry.open(task.home);
      try {
        return await runTraining({
          registry,
          prepared: { run: registry.requireRun(task.runId), config: task.config, resumeFrom: task.resumeFrom },
          backend: currentBackend()?.name ?? message.backend,
          control,
          onEvent: (event) => send({ kind: 'train-event', event }),
        });
      } finally {
        registry.close();
      }
    }
    case 'compare':
      return compareCheckpoints({
        checkpoints: task.checkpoints,
        annFile: task.annFile,
        root: task.root,
        views: task.views,
        mediaUrl: (path) => `/media?path=${encodeURIComponent(path)}`,
        progress,
      });
    case 'attention':
      return attentionView(task.checkpoint, task.video, task.stage, task.block);
    case 'attention-window':
      return attentionWindow(task.checkpoint, task.video, task.stage, task.block, task.window);
    case 'predict':
      return predictVideo(task.checkpoint, task.video, progress);
    case 'time-step':
      return timeTrainingStep(task.config, task.clip, task.batch);
    default: {
      const unknown: never = task;
      throw new Error(`unknown compute task ${JSON.stringify(unknown)}`);
    }
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.kind) {
    case 'start':
      start(message).then(
        (result) => send({ kind: 'done', id: message.id, result }),
        (error: unknown) =>
          send({ kind: 'failed', id: message.id, message: error instanceof Error ? error.message : String(error) }),
      );
      return;
    case 'control':
      control.send(message.command);
      return;
    default: {
      const unknown: never = message;
      throw new Error(`unknown message ${JSON.stringify(unknown)}`);
    }
  }
});
