// The workbench contract between the UI (renderer/bridge) and the core service (core/host/service):
// one map from command name to its argument and result types, and the event union the service
// pushes. Plain JSON data only. It imports only its siblings in this folder (and zod): the
// training events are core/protocol/train.ts's, the cluster contract is core/protocol/cluster.ts.
import { COMMAND_NAMES, type ArgsInput, type CommandNameOfMap } from './commands.ts';
import type { ConfigIssue } from './issues.ts';
import type { TrainEvent } from './train.ts';
import type {
  ClusterCommands,
  ClusterEvent,
  ClusterJob,
  ClusterJobSummary,
  LaunchArgs,
  LaunchPreview,
  RemoteCheckpoint,
} from './cluster.ts';

export type { ConfigIssue } from './issues.ts';
export type { TrainEvent } from './train.ts';
export { COMMAND_NAMES } from './commands.ts';

export type Triple = [number, number, number];

export interface SettingsInfo {
  version: string;
  backend: string;
  backendReason: string;
  /** The WebGPU adapter (vendor, architecture, description, limits) and why it is or is not used. */
  gpu: string;
  home: string;
  ffmpeg: string;
  demoDataset: DatasetRef | null;
  /** The kernel tier as `vswin doctor` prints it (null before the backend starts). */
  kernels: { tier: string; isa: string | null; threads: number; reason: string; kernels: string[] } | null;
}

export interface DatasetRef {
  name: string;
  root: string;
  trainAnn: string;
  valAnn: string | null;
  labelMap: string | null;
  classes: string[];
}

export interface FolderListing {
  path: string;
  parent: string | null;
  entries: { name: string; kind: 'folder' | 'file' }[];
}

export interface ScanClass {
  index: number;
  name: string;
  count: number;
  meanSeconds: number | null;
  meanFrames: number;
  /** data: URL of the first frame of the class's first video, null when it could not be decoded. */
  thumbnail: string | null;
}

export interface ScanSummary {
  root: string;
  format: 'video' | 'rawframes';
  items: number;
  classes: ScanClass[];
  problems: { path: string; reason: string }[];
  tools: string;
}

export interface SplitArgs {
  root: string;
  outDir: string;
  val: number;
  test: number;
  seed: number;
}

export interface WrittenDataset {
  dataset: DatasetRef;
  files: Record<string, string>;
  splits: { train: number; val: number; test: number };
  classes: { name: string; train: number; val: number; test: number }[];
  warnings: string[];
}

export interface AnnotationCheck {
  annFile: string;
  entries: number;
  classes: number;
  problems: { line: number | null; message: string }[];
  ok: boolean;
}

export interface PipelinePreview {
  /** data: URL of a contact sheet: one row per view, one column per sampled frame. */
  image: string;
  shape: number[];
  frames: number[];
  steps: string[];
}

export interface ConfigEstimate {
  parameters: number;
  gflopsPerClip: number;
  /** Activation memory for one training micro-batch (forward + saved for backward), bytes. */
  activationBytes: number;
  parameterBytes: number;
  /** Null when the train list's size is unknown. */
  secondsPerEpoch: number | null;
  /** 'timed': one real training step was timed; 'flop-bound': FLOPs at the measured matMul rate (a lower bound). */
  timeMethod: 'timed' | 'flop-bound';
  backend: string;
  measuredGflops: number;
  clip: Triple;
}

export interface ConfigValidation {
  ok: boolean;
  issues: ConfigIssue[];
  estimate: ConfigEstimate | null;
}

/** A curve point: `step` is the 1-based iteration (iteration series) or the 1-based epoch (epoch series). */
export interface MetricPoint {
  step: number;
  value: number;
}

export interface RunSummary {
  id: string;
  name: string;
  status: string;
  backend: string;
  epochs: number;
  epochsDone: number;
  createdAt: string;
  bestMetric: { name: string; value: number } | null;
  /** The run config, flattened to dotted keys, for the "fields that differ" columns. */
  flatConfig: Record<string, string>;
}

export interface RunCurves {
  runId: string;
  series: Record<string, MetricPoint[]>;
}

export interface CheckpointSummary {
  runId: string;
  runName: string;
  epoch: number;
  path: string;
  reasons: string[];
  metric: number | null;
  /** Blocks per stage of the run's model (null when its config cannot be read). */
  depths: number[] | null;
}

export interface CheckpointEvaluation {
  checkpoint: string;
  label: string;
  views: { clips: number; crops: number };
  top1: number;
  top5: number;
  meanClassAccuracy: number;
  perClassAccuracy: number[];
  confusion: number[][];
  /** Predicted class of each video, in the order of `videos`. */
  predictions: number[];
  /** The predicted class's probability (softmax averaged over the views) of each video. */
  confidence: number[];
}

export interface Comparison {
  classNames: string[];
  videos: { path: string; url: string; label: number }[];
  checkpoints: CheckpointEvaluation[];
  /** Videos whose prediction differs between the first checkpoint and another one. */
  flipped: { video: number; predictions: number[] }[];
  /** Relative L2 change of each block's weights, second vs first: [stage][block]. */
  weightChange: { stages: number[][]; labels: string[] };
}

/**
 * One block's window geometry over the first clip of a video, with the frames and the clip's top-5.
 * The attention itself stays in the service (it can be hundreds of MB for a real model's first
 * stage); `attention.window` returns one window of it.
 */
export interface AttentionView {
  checkpoint: string;
  video: string;
  frames: string[];
  frameIndices: number[];
  clip: Triple;
  patch: Triple;
  stage: number;
  block: number;
  /** Blocks per stage of the checkpoint's model. */
  depths: number[];
  shifted: boolean;
  grid: Triple;
  window: Triple;
  shift: Triple;
  padded: Triple;
  heads: number;
  tokensPerWindow: number;
  /** Windows of the padded grid, numbered (d, h, w) row-major. */
  windowsPerClip: number;
  top5: { label: string; score: number }[];
}

/** The attention of one window of an `AttentionView`'s block. */
export interface AttentionWindow {
  stage: number;
  block: number;
  window: number;
  heads: number;
  tokensPerWindow: number;
  windowsPerClip: number;
  /** probs[head][query][key] flattened (heads x N x N); each query row sums to 1. */
  probs: number[];
}

export interface Prediction {
  video: string;
  /** Where the page plays the video from (the service's /media route). */
  url?: string;
  /** Null for a folder of frames. */
  durationSeconds: number | null;
  top5: { label: string; score: number }[];
  /** Sliding clips over a video at least two clips long, each with its own top-5. */
  timeline: { start: number; seconds: number; label: string; score: number; top5: { label: string; score: number }[] }[];
}

/** Commands the UI may send: name -> { args, result }; the argument types are inferred from core/protocol/commands.ts. */
export interface WorkbenchCommands {
  'settings.get': { args: ArgsInput<'settings.get'>; result: SettingsInfo };
  'fs.list': { args: ArgsInput<'fs.list'>; result: FolderListing };
  'datasets.list': { args: ArgsInput<'datasets.list'>; result: DatasetRef[] };
  'datasets.scan': { args: ArgsInput<'datasets.scan'>; result: ScanSummary };
  'datasets.write': { args: ArgsInput<'datasets.write'>; result: WrittenDataset };
  'datasets.check': { args: ArgsInput<'datasets.check'>; result: AnnotationCheck };
  'datasets.videos': { args: ArgsInput<'datasets.videos'>; result: { path: string; label: number }[] };
  'datasets.preview': { args: ArgsInput<'datasets.preview'>; result: PipelinePreview };
  'config.presets': { args: ArgsInput<'config.presets'>; result: { name: string; config: Record<string, unknown> }[] };
  'config.validate': { args: ArgsInput<'config.validate'>; result: ConfigValidation };
  'train.start': { args: ArgsInput<'train.start'>; result: { runId: string } };
  'train.control': { args: ArgsInput<'train.control'>; result: { ok: true } };
  'train.resume': { args: ArgsInput<'train.resume'>; result: { runId: string } };
  'runs.list': { args: ArgsInput<'runs.list'>; result: RunSummary[] };
  'runs.curves': { args: ArgsInput<'runs.curves'>; result: RunCurves[] };
  'runs.csv': { args: ArgsInput<'runs.csv'>; result: { csv: string } };
  'runs.checkpoints': { args: ArgsInput<'runs.checkpoints'>; result: CheckpointSummary[] };
  'compare.checkpoints': { args: ArgsInput<'compare.checkpoints'>; result: Comparison };
  'attention.view': { args: ArgsInput<'attention.view'>; result: AttentionView };
  'attention.window': { args: ArgsInput<'attention.window'>; result: AttentionWindow };
  'video.predict': { args: ArgsInput<'video.predict'>; result: Prediction };
}

/**
 * What the launch form sends: LaunchArgs plus environment variables for this run only (merged over
 * the cluster's) and, on submit, the run id of the preview shown (so the same files are submitted).
 */
export type ClusterLaunchArgs = LaunchArgs & { environment?: Record<string, string>; runId?: string };

/** A row of the jobs table: the job, its run, the scheduler's elapsed time and the last metrics. */
export interface ClusterJobRow extends ClusterJobSummary {
  /** Seconds the job has run, as the scheduler said at the last poll (null before the first one). */
  elapsedSeconds: number | null;
  /** Global iteration (0-based) and loss of the last train line, last validation top-1, from the registry. */
  lastIteration: number | null;
  lastLoss: number | null;
  lastValTop1: number | null;
  /** Checkpoints seen in the work dir at the last poll (null before the first one). */
  checkpoints: RemoteCheckpoint[] | null;
}

/** The "open log" view of a job: the tail of its stdout file and of its engine log. */
export interface ClusterJobLog {
  runId: string;
  jobId: string;
  outputFile: string;
  output: string;
  engineLogFile: string | null;
  engineLog: string;
}

/** Cluster commands as the workbench service routes them (core/protocol/cluster.ts, with the launch form's per-run environment). */
export interface WorkbenchClusterCommands {
  'cluster.list': ClusterCommands['cluster.list'];
  'cluster.save': ClusterCommands['cluster.save'];
  'cluster.remove': ClusterCommands['cluster.remove'];
  'cluster.check': { args: { name: string; launch?: ClusterLaunchArgs }; result: ClusterCommands['cluster.check']['result'] };
  'cluster.preview': { args: ClusterLaunchArgs; result: LaunchPreview };
  'cluster.submit': { args: ClusterLaunchArgs & { check?: boolean }; result: ClusterJob };
  'jobs.list': { args: { refresh?: boolean }; result: ClusterJobRow[] };
  'jobs.sync': ClusterCommands['jobs.sync'];
  'jobs.cancel': ClusterCommands['jobs.cancel'];
  'jobs.resume': ClusterCommands['jobs.resume'];
  'jobs.clone': { args: { runId: string }; result: ClusterLaunchArgs };
  'jobs.pull': ClusterCommands['jobs.pull'];
  'jobs.log': { args: { runId: string }; result: ClusterJobLog };
}

export type ClusterCommandNameOfWorkbench = keyof WorkbenchClusterCommands;

/** The cluster.* and jobs.* names of the command map (core/protocol/commands.ts). */
export const WORKBENCH_CLUSTER_COMMAND_NAMES = COMMAND_NAMES.filter(
  (name): name is ClusterCommandNameOfWorkbench => name.startsWith('cluster.') || name.startsWith('jobs.'),
);

// Declaration merging adds the cluster commands to the one command map the bridge and the service use.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface WorkbenchCommands extends WorkbenchClusterCommands {}

export type CommandName = keyof WorkbenchCommands;
// The result types here and the argument schemas of commands.ts name the same commands (a type error otherwise).
type SameNames<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const commandNamesAgree: SameNames<CommandName, CommandNameOfMap> = true;
export type CommandArgs<N extends CommandName> = WorkbenchCommands[N]['args'];
export type CommandResult<N extends CommandName> = WorkbenchCommands[N]['result'];

/** Events the service pushes to every connected client. */
export type WorkbenchEvent =
  | { kind: 'job-progress'; jobId: string; command: string; done: number; total: number; message: string }
  | { kind: 'job-finished'; jobId: string; command: string; ok: boolean; message: string | null; seconds: number }
  | { kind: 'train'; event: TrainEvent; sentAt: number }
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { kind: 'cluster'; event: ClusterEvent; sentAt: number };

/** Client -> service. */
export interface RequestMessage {
  id: number;
  command: string;
  args: unknown;
}

/** Service -> client. */
export type ServiceMessage =
  | { kind: 'result'; id: number; ok: true; result: unknown; jobId: string }
  | { kind: 'result'; id: number; ok: false; error: string; jobId: string }
  | { kind: 'event'; event: WorkbenchEvent };
