// Runs compute tasks in worker threads, one worker per task: model work never blocks the service's
// main thread, and a worker that throws or dies fails its own job only.
import { Worker } from 'node:worker_threads';
import { currentBackend } from '../../engine/backend.ts';
import type { TrainCommand, TrainEvent } from '../../protocol/train.ts';
import type { ComputeTask, FromWorker, ToWorker } from './compute-protocol.ts';

const ENTRY = new URL('./compute-worker.mjs', import.meta.url);

export interface ComputeJob<T> {
  done: Promise<T>;
  control(command: TrainCommand): void;
  /** Ends the worker at once (service shutdown after a stop request timed out). */
  terminate(): Promise<void>;
}

export interface ComputeHandlers {
  onTrainEvent?: (event: TrainEvent) => void;
  onProgress?: (done: number, total: number, message: string) => void;
}

export function runCompute<T>(task: ComputeTask, handlers: ComputeHandlers = {}): ComputeJob<T> {
  const worker = new Worker(ENTRY);
  const done = new Promise<T>((resolve, reject) => {
    let settled = false;
    worker.on('message', (message: FromWorker) => {
      switch (message.kind) {
        case 'train-event':
          handlers.onTrainEvent?.(message.event);
          return;
        case 'progress':
          handlers.onProgress?.(message.done, message.total, message.message);
          return;
        case 'done':
          settled = true;
          resolve(message.result as T);
          void worker.terminate();
          return;
        case 'failed':
          settled = true;
          reject(new Error(message.message));
          void worker.terminate();
          return;
        default: {
          const unknown: never = message;
          reject(new Error(`unknown worker message ${JSON.stringify(unknown)}`));
        }
      }
    });
    worker.on('error', (error) => {
      if (settled) return;
      settled = true;
      reject(new Error(`the compute worker crashed: ${error.message}`));
    });
    worker.on('exit', (code) => {
      if (settled) return;
      settled = true;
      reject(new Error(`the compute worker exited with code ${code} before finishing`));
    });
  });
  const start: ToWorker = { kind: 'start', backend: currentBackend()?.name ?? 'auto', task };
  worker.postMessage(start);
  return {
    done,
    control: (command) => worker.postMessage({ kind: 'control', command } satisfies ToWorker),
    terminate: async () => {
      await worker.terminate();
    },
  };
}
