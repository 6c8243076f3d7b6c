// Messages between the service's main thread and a compute worker (worker_threads): plain data.
import type { TrainCommand, TrainEvent } from '../../protocol/train.ts';
import type { TrainResult } from '../../app/training.ts';
import type { RunConfig } from '../../app/config.ts';
import type { ModelConfig } from '../../model/config.ts';

/** A run created or resumed by core/app/training.ts on the main thread, trained in the worker. */
export interface TrainTask {
  type: 'train';
  runId: string;
  home: string;
  config: RunConfig;
  resumeFrom: { weights: string; state: string } | null;
}

export type CallTask =
  | { type: 'compare'; checkpoints: string[]; annFile: string; root: string; views?: { clips: number; crops: number } }
  | { type: 'attention'; checkpoint: string; video: string; stage: number; block: number }
  | { type: 'attention-window'; checkpoint: string; video: string; stage: number; block: number; window: number }
  | { type: 'predict'; checkpoint: string; video: string }
  | { type: 'time-step'; config: ModelConfig; clip: { frames: number; height: number; width: number }; batch: number };

export type ComputeTask = TrainTask | CallTask;

/** `id` numbers the calls of a worker that serves several (the model-call worker); replies echo it. */
export type ToWorker =
  { kind: 'start'; id: number; backend: string; task: ComputeTask } | { kind: 'control'; command: TrainCommand };

export type FromWorker =
  | { kind: 'train-event'; event: TrainEvent }
  | { kind: 'progress'; id: number; done: number; total: number; message: string }
  | { kind: 'done'; id: number; result: unknown }
  | { kind: 'failed'; id: number; message: string };

export type TrainOutcome = TrainResult;
