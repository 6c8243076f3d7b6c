// The contract of "beyond one machine": clusters, bundles, jobs and their tracking, as plain data for
// the CLI and the UI. This file imports nothing (lint rule) so the renderer can depend on it.

/** How a run is launched remotely: Slurm's sbatch/srun, or torchrun on one multi-GPU machine. */
export type ClusterKind = 'slurm' | 'torchrun';

/** mmaction2 generation: 0.x is the official Video Swin repo (mmcv 1.x); 1.x is mmaction2 on mmengine. */
export type EngineFlavor = '0.x' | '1.x';

/** The video decoder of the engine's pipelines: decord (the configs' default), PyAV or OpenCV. */
export type VideoDecoder = 'decord' | 'pyav' | 'opencv';

/** One remote machine or cluster as the user configured it; `host` is an OpenSSH destination or alias. */
export interface ClusterSettings {
  name: string;
  kind: ClusterKind;
  /** `user@host` or a Host alias of the user's ~/.ssh/config. */
  host: string;
  port: number | null;
  identityFile: string | null;
  /** An OpenSSH config file other than the user's default (ssh -F). */
  sshConfigFile: string | null;
  /** Slurm partition (sbatch -p); null uses the cluster's default partition. */
  partition: string | null;
  /** Folder on the cluster holding the engine (mmaction2 or Video-Swin-Transformer checkout). */
  engineDir: string;
  /** Python interpreter on the cluster (inside the engine's environment). */
  python: string;
  /** Folder on the cluster under which each run gets its own folder. */
  remoteRoot: string;
  /** Where the dataset lives on the cluster; null keeps the run config's data root. */
  dataRoot: string | null;
  flavor: EngineFlavor;
  gpusPerNode: number;
  cpusPerTask: number;
  /** Slurm --time (e.g. "2-00:00:00"); null uses the partition's default. */
  timeLimit: string | null;
  /** Shell lines run before the launcher (module load, conda activate ...). */
  setup: string[];
  /** Environment variables exported to the job. */
  environment: Record<string, string>;
  /** The torchrun launcher command (kind 'torchrun'); "torchrun" runs it as `$PYTHON -m torch.distributed.run`. */
  torchrun: string;
  /** Video decoder of the bundles' pipelines; preflight checks that the engine's Python imports it. */
  decoder: VideoDecoder;
  /** Mixed precision as in the official configs; off for CPUs and GPUs without fp16 support. */
  amp: boolean;
  connectTimeoutSeconds: number;
  commandTimeoutSeconds: number;
}

export type ClusterSettingsInput = Pick<ClusterSettings, 'name' | 'kind' | 'host'> &
  Partial<Omit<ClusterSettings, 'name' | 'kind' | 'host'>>;

/** Why a remote operation failed, so the UI can say what to fix. */
export type RemoteErrorKind =
  | 'unknown-host'
  | 'refused-connection'
  | 'refused-key'
  | 'host-key'
  | 'timeout'
  | 'ssh-failed'
  | 'command-failed'
  | 'missing-partition'
  | 'submit-refused'
  | 'transfer-failed';

export interface PreflightCheck {
  name: 'ssh' | 'scheduler' | 'partition' | 'gpus' | 'engine' | 'decoder' | 'base-config' | 'data-root' | 'annotations';
  ok: boolean;
  /** What was found, or what is wrong and what was expected. */
  detail: string;
}

export interface PreflightReport {
  cluster: string;
  ok: boolean;
  checks: PreflightCheck[];
}

/** Normalised job state; `schedulerState` keeps Slurm's own word. */
export type JobState = 'submitted' | 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timeout' | 'unknown';

export interface JobStatus {
  state: JobState;
  schedulerState: string;
  /** Slurm's pending reason (Resources, Priority, ...) or null. */
  reason: string | null;
  exitCode: number | null;
  signal: number | null;
  nodes: string | null;
  /** Seconds the job has run so far (null when unknown). */
  elapsedSeconds: number | null;
  message: string | null;
}

export const finishedJobStates: readonly JobState[] = ['completed', 'failed', 'cancelled', 'timeout'];

export interface BundleFile {
  /** Path inside the bundle folder. */
  path: string;
  /** Text of the file; empty for `localFile` weights. */
  content: string;
  executable: boolean;
  /**
   * Weights made from a local file when the bundle is written: a checkpoint converted to a torch.save
   * {meta, state_dict} file with the flavor's key names (`keys`: the tensors kept), a 2-D file as
   * {model: ...}, or a torch file copied as is.
   */
  localFile?: {
    path: string;
    kind: 'engine-checkpoint' | 'pretrained-2d' | 'copy';
    flavor: EngineFlavor | null;
    keys: string[];
  };
}

export interface BundleManifest {
  format: 'vswin-bundle';
  version: 1;
  runId: string | null;
  name: string;
  flavor: EngineFlavor;
  /** The official config `_base_`d by config.py, relative to the engine folder. */
  baseConfig: string;
  gpus: number;
  nodes: number;
  worldSize: number;
  clipsPerGpu: number;
  microBatch: number;
  updateInterval: number;
  globalBatch: number;
  baseLr: number;
  scaledLr: number;
  /** The official recipes' global batch the base LR was tuned for. */
  referenceBatch: number;
  epochs: number;
  trainVideos: number;
  itersPerEpoch: number;
  /** Multiply the logged `lr` (first parameter group) by this to get the head LR the workbench plots. */
  loggedLrToBase: number;
  dataRoot: string;
  valRoot: string | null;
  seed: number;
  /** Decoder, AMP and the clips the engine's pipelines make (the run's, translated). */
  decoder: VideoDecoder;
  amp: boolean;
  pipeline: {
    clipLen: number;
    frameInterval: number;
    shortSide: number;
    cropSize: number;
    testClips: number;
    testCrops: number;
  } | null;
  /** Annotation delimiter of the bundle (null: one space, the engine's default). */
  delimiter: string | null;
  files: string[];
  notes: string[];
  createdAt: string;
}

export interface Bundle {
  manifest: BundleManifest;
  files: BundleFile[];
}

export interface RemoteCheckpoint {
  /** File name in the engine's work dir. */
  name: string;
  path: string;
  bytes: number;
  modifiedAt: string;
  epoch: number | null;
  kind: 'epoch' | 'best' | 'latest' | 'other';
}

export interface ClusterJob {
  runId: string;
  cluster: string;
  /** Slurm job id, or the launcher's process id for torchrun. */
  jobId: string;
  attempt: number;
  flavor: EngineFlavor;
  remoteDir: string;
  gpus: number;
  nodes: number;
  itersPerEpoch: number;
  loggedLrToBase: number;
  state: JobState;
  schedulerState: string;
  reason: string | null;
  exitCode: number | null;
  message: string | null;
  submittedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface LogProblem {
  file: string;
  line: number;
  problem: string;
}

/** One poll of a job: its state, what the log brought, the checkpoints seen. */
export interface SyncResult {
  job: ClusterJob;
  status: JobStatus;
  logFiles: string[];
  newRecords: number;
  metricsWritten: number;
  problems: LogProblem[];
  checkpoints: RemoteCheckpoint[];
}

export interface PulledCheckpoint {
  remote: RemoteCheckpoint;
  localPath: string;
  /** Registry checkpoint id. */
  checkpointId: number;
  notes: string[];
}

/** What the launch form sends: a run config (JSON object) and where/how to run it. */
export interface LaunchArgs {
  config: unknown;
  cluster: string;
  gpus?: number;
  nodes?: number;
  flavor?: EngineFlavor;
  name?: string;
  dataRoot?: string | null;
  logInterval?: number | null;
  /** Override the cluster's decoder / AMP setting for this run. */
  decoder?: VideoDecoder;
  amp?: boolean;
}

/** The generated files, shown before submitting. */
export interface LaunchPreview {
  runId: string;
  remoteDir: string;
  manifest: BundleManifest;
  files: BundleFile[];
}

/** A row of the jobs table beside the local runs. */
export interface ClusterJobSummary extends ClusterJob {
  runName: string;
  runStatus: string;
  epochs: number;
  epochsDone: number;
}

/** Cluster commands of the workbench service: name -> { args, result } (same shape as WorkbenchCommands). */
export interface ClusterCommands {
  'cluster.list': { args: Record<string, never>; result: ClusterSettings[] };
  'cluster.save': { args: ClusterSettingsInput; result: ClusterSettings };
  'cluster.remove': { args: { name: string }; result: { removed: boolean } };
  'cluster.check': { args: { name: string; launch?: LaunchArgs }; result: PreflightReport };
  'cluster.preview': { args: LaunchArgs; result: LaunchPreview };
  'cluster.submit': { args: LaunchArgs & { check?: boolean }; result: ClusterJob };
  'jobs.list': { args: { refresh?: boolean }; result: ClusterJobSummary[] };
  'jobs.sync': { args: { runId: string }; result: SyncResult };
  'jobs.cancel': { args: { runId: string }; result: SyncResult };
  'jobs.resume': { args: { runId: string }; result: ClusterJob };
  'jobs.clone': { args: { runId: string }; result: LaunchArgs };
  'jobs.pull': { args: { runId: string; which: string }; result: PulledCheckpoint };
}

export type ClusterCommandName = keyof ClusterCommands;

export const CLUSTER_COMMAND_NAMES: readonly ClusterCommandName[] = [
  'cluster.list',
  'cluster.save',
  'cluster.remove',
  'cluster.check',
  'cluster.preview',
  'cluster.submit',
  'jobs.list',
  'jobs.sync',
  'jobs.cancel',
  'jobs.resume',
  'jobs.clone',
  'jobs.pull',
];

/** Pushed by the job watcher after each poll that changed something (state, metrics, checkpoints). */
export type ClusterEvent =
  { kind: 'cluster-job'; result: SyncResult } | { kind: 'cluster-job-error'; runId: string; message: string };
