// Runs compute tasks in worker threads, so model work never blocks the service's main thread and a
// worker that throws or dies fails its own jobs only.
// - Training, checkpoint comparison and step timing: one worker per task, ended when it finishes.
// - Model calls of the attention explorer and "try a video": one worker that lives on between
//   calls (one call at a time, in order) and keeps the last checkpoint's model loaded, so a click
//   on another block does not pay for a thread, a backend and a model load again. It ends after
//   MODEL_WORKER_IDLE_MS without calls, and never keeps the process alive.
import { Worker } from 'node:worker_threads';
import { currentBackend } from '../../engine/backend.ts';
import type { TrainCommand, TrainEvent } from '../../protocol/train.ts';
import type { ComputeTask, FromWorker, ToWorker } from './compute-protocol.ts';

const ENTRY = new URL('./compute-worker.mjs', import.meta.url);

/** How long the model-call worker waits for the next call before it ends (and frees the model). */
export const MODEL_WORKER_IDLE_MS = 5 * 60_000;

export interface ComputeJob<T> {
  done: Promise<T>;
  control(command: TrainCommand): void;
  /** Ends the job's worker at once (service shutdown after a stop request timed out). */
  terminate(): Promise<void>;
}

export interface ComputeHandlers {
  onTrainEvent?: (event: TrainEvent) => void;
  onProgress?: (done: number, total: number, message: string) => void;
}

const backendName = () => currentBackend()?.name ?? 'auto';

function describeUnknown(message: never): Error {
  return new Error(`unknown worker message ${JSON.stringify(message)}`);
}

function runInOwnWorker<T>(task: ComputeTask, handlers: ComputeHandlers): ComputeJob<T> {
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
        default:
          reject(describeUnknown(message));
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
  worker.postMessage({ kind: 'start', id: 0, backend: backendName(), task } satisfies ToWorker);
  return {
    done,
    control: (command) => worker.postMessage({ kind: 'control', command } satisfies ToWorker),
    terminate: async () => {
      await worker.terminate();
    },
  };
}

interface QueuedCall {
  id: number;
  task: ComputeTask;
  handlers: ComputeHandlers;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** The long-lived worker of model calls: a FIFO of calls, one running at a time. */
class ModelCallWorker {
  private worker: Worker | null = null;
  private queue: QueuedCall[] = [];
  private running: QueuedCall | null = null;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Threads started so far (tests check that calls share one). */
  started = 0;

  run<T>(task: ComputeTask, handlers: ComputeHandlers): ComputeJob<T> {
    const done = new Promise<T>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, handlers, resolve: resolve as (value: unknown) => void, reject });
    });
    this.pump();
    return {
      done,
      control: () => {
        // Model calls take no commands.
      },
      terminate: () => this.stop(new Error('the model-call worker was stopped')),
    };
  }

  /** Ends the worker; its running and queued calls fail with `reason`. */
  async stop(reason = new Error('the workbench service is stopping')): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.clearIdle();
    const pending = [...(this.running ? [this.running] : []), ...this.queue];
    this.running = null;
    this.queue = [];
    for (const call of pending) call.reject(reason);
    if (worker) await worker.terminate();
  }

  private spawn(): Worker {
    const worker = new Worker(ENTRY);
    this.started++;
    worker.on('message', (message: FromWorker) => this.onMessage(worker, message));
    worker.on('error', (error) => this.onDeath(worker, `the compute worker crashed: ${error.message}`));
    worker.on('exit', (code) => this.onDeath(worker, `the compute worker exited with code ${code} before finishing`));
    return worker;
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    this.clearIdle();
    const call = this.queue.shift()!;
    this.running = call;
    if (!this.worker) this.worker = this.spawn();
    this.worker.ref();
    this.worker.postMessage({ kind: 'start', id: call.id, backend: backendName(), task: call.task } satisfies ToWorker);
  }

  private onMessage(worker: Worker, message: FromWorker): void {
    const call = this.running;
    if (worker !== this.worker || !call) return;
    switch (message.kind) {
      case 'train-event':
        return;
      case 'progress':
        if (message.id === call.id) call.handlers.onProgress?.(message.done, message.total, message.message);
        return;
      case 'done':
      case 'failed':
        if (message.id !== call.id) return;
        this.running = null;
        if (message.kind === 'done') call.resolve(message.result);
        else call.reject(new Error(message.message));
        this.afterCall();
        return;
      default:
        call.reject(describeUnknown(message));
    }
  }

  private onDeath(worker: Worker, text: string): void {
    if (worker !== this.worker) return;
    this.worker = null;
    const call = this.running;
    this.running = null;
    // The call that was running fails; the next ones get a fresh worker.
    call?.reject(new Error(text));
    this.afterCall();
  }

  private afterCall(): void {
    if (this.queue.length > 0) return this.pump();
    const worker = this.worker;
    if (!worker) return;
    worker.unref();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.worker === worker && !this.running) void this.stop();
    }, MODEL_WORKER_IDLE_MS);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}

const modelCalls = new ModelCallWorker();

export function runCompute<T>(task: ComputeTask, handlers: ComputeHandlers = {}): ComputeJob<T> {
  if (task.type === 'attention' || task.type === 'attention-window' || task.type === 'predict')
    return modelCalls.run<T>(task, handlers);
  return runInOwnWorker<T>(task, handlers);
}

/** Ends the model-call worker (service shutdown); its calls fail with a clear error. */
export function stopModelCallWorker(): Promise<void> {
  return modelCalls.stop();
}

/** Threads the model-call worker has started since the process began. */
export function modelCallWorkerStarts(): number {
  return modelCalls.started;
}
