// The training/evaluation contract shared by the core, the CLI and the UI: typed commands, results and
// the event stream of a run. Plain data only (JSON-serialisable), so it crosses any process boundary.
// This file imports nothing (lint rule): the UI can depend on it without pulling in the engine.

export type RunStatus = 'created' | 'running' | 'paused' | 'completed' | 'stopped' | 'failed' | 'interrupted';

/** How a video was tested: `clips` temporal clips x `crops` spatial crops, softmax averaged. */
export interface ViewProtocol {
  clips: number;
  crops: number;
}

export interface ClassificationMetrics {
  top1: number;
  top5: number;
  meanClassAccuracy: number;
  /** Number of videos scored. */
  count: number;
}

export interface TrainSplitMetrics {
  loss: number;
  top1: number;
  clips: number;
}

/** Commands a client sends to a running training session. */
export type TrainCommand = { kind: 'pause' } | { kind: 'resume' } | { kind: 'stop'; reason?: string };

/** The event stream of one run; the CLI progress bar and the UI consume the same stream. */
export type TrainEvent =
  | {
      kind: 'run-started';
      runId: string;
      name: string;
      epochs: number;
      iterationsPerEpoch: number;
      /** Epoch (0-based) and global micro-batch iteration the run starts from (> 0 when resumed). */
      startEpoch: number;
      startIteration: number;
      backend: string;
      resumed: boolean;
    }
  | {
      kind: 'iteration';
      runId: string;
      epoch: number;
      /** Global micro-batch iteration, 0-based. */
      iteration: number;
      /** 0-based index inside the epoch. */
      epochIteration: number;
      iterationsPerEpoch: number;
      loss: number;
      /** Base (head) learning rate in effect for this iteration. */
      lr: number;
      clipsPerSecond: number;
      etaSeconds: number;
    }
  | {
      kind: 'epoch';
      runId: string;
      epoch: number;
      epochs: number;
      train: TrainSplitMetrics;
      val: (ClassificationMetrics & { loss: number; views: ViewProtocol }) | null;
      seconds: number;
      etaSeconds: number;
      /** Samples the loaders skipped in this epoch (unreadable or too short videos; `vswin runs show` lists them). */
      skipped: number;
    }
  | { kind: 'checkpoint'; runId: string; epoch: number; path: string; reasons: CheckpointReason[] }
  | { kind: 'paused'; runId: string; iteration: number }
  | { kind: 'resumed'; runId: string; iteration: number }
  | {
      kind: 'run-finished';
      runId: string;
      status: 'completed' | 'stopped' | 'failed';
      message: string | null;
      seconds: number;
      /** The last validation of the run (single clip), null when it never validated. */
      val: (ClassificationMetrics & { loss: number }) | null;
    };

export type CheckpointReason = 'interval' | 'best' | 'last';

/** One video's prediction, kept for comparing checkpoints video by video. */
export interface VideoPrediction {
  index: number;
  video: string;
  label: number;
  /** Top-k classes and their (view-averaged) probabilities, best first. */
  topClasses: number[];
  topScores: number[];
}

export interface PerClassMetrics {
  precision: number[];
  recall: number[];
  support: number[];
}

export interface EvaluationReport {
  views: ViewProtocol;
  metrics: ClassificationMetrics;
  perClass: PerClassMetrics;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  classNames: string[];
}

/** Exhaustiveness guard for `switch` over a discriminated union. */
export function unreachable(value: never): never {
  throw new Error(`unhandled variant: ${JSON.stringify(value)}`);
}
