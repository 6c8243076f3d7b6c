// Cluster runs in the registry: submit (a run row plus a job row), sync (state, pending reason,
// new log lines merged as the run's metrics, checkpoints seen), cancel, resume (resubmit in the same
// folder: the job script auto-resumes), clone, re-attach after a restart, and checkpoint pull +
// registration. A run's metrics use the local trainer's names and steps, so the curves, overlays
// and CSV export treat a cluster run like a local one.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type {
  Bundle,
  ClusterJob,
  ClusterSettings,
  EngineFlavor,
  JobState,
  JobStatus,
  LogProblem,
  PreflightReport,
  PulledCheckpoint,
  RemoteCheckpoint,
  SyncResult,
  VideoDecoder,
} from '../protocol/cluster.ts';
import { finishedJobStates } from '../protocol/cluster.ts';
import type { CheckpointReason } from '../protocol/train.ts';
import { newRunId, type Registry } from '../registry/registry.ts';
import { modelConfigOf, parseRunConfig, type RunConfig } from '../train/run-config.ts';
import { checkpointMetadata, defaultClassNames } from '../train/checkpoint-metadata.ts';
import { parseModelConfig } from '../model/config.ts';
import { recognizerKeys } from '../model/keys.ts';
import { loadCheckpoint, saveCheckpoint } from '../model/weights/checkpoint.ts';
import type { ClusterBackend } from './backend.ts';
import { buildBundle, writeBundle } from './bundle.ts';
import { annotationPaths } from './bundle-data.ts';
import {
  epochTrainRows,
  orderLogFiles,
  parseLogChunk,
  recordsToRows,
  resumePoint,
  type LogRecord,
  type RowContext,
} from './log-parser.ts';
import { SlurmBackend } from './slurm-backend.ts';
import { ClusterStore } from './store.ts';
import { TorchrunBackend } from './torchrun-backend.ts';

const projectVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

export function createBackend(settings: ClusterSettings): ClusterBackend {
  return settings.kind === 'slurm' ? new SlurmBackend(settings) : new TorchrunBackend(settings);
}

export type BackendFactory = (settings: ClusterSettings) => ClusterBackend;

export interface SubmitRequest {
  config: RunConfig;
  configPath: string | null;
  cluster: string;
  gpus?: number;
  nodes?: number;
  flavor?: EngineFlavor;
  name?: string;
  /** Dataset folder on the cluster; default: the cluster's, else the run config's. */
  dataRoot?: string | null;
  logInterval?: number | null;
  /** Decoder and AMP for this run (default: the cluster's). */
  decoder?: VideoDecoder;
  amp?: boolean;
  /** Extra environment for this run only (merged over the cluster's). */
  environment?: Record<string, string>;
  runId?: string;
}

export interface PreparedSubmission {
  runId: string;
  config: RunConfig;
  configPath: string | null;
  settings: ClusterSettings;
  remoteDir: string;
  bundle: Bundle;
}

/** A line of the engine log, printed by `vswin jobs log`. */
export interface SyncDetails extends SyncResult {
  records: LogRecord[];
}

const runDirOf = (registry: Registry, runId: string): string => join(dirname(registry.file), 'runs', runId);

/** What a submission would send (the launch form shows these files before submitting). */
export function prepareSubmission(store: ClusterStore, request: SubmitRequest): PreparedSubmission {
  const settings = store.requireCluster(request.cluster);
  const runId = request.runId ?? newRunId();
  const gpus = request.gpus ?? settings.gpusPerNode;
  const nodes = request.nodes ?? 1;
  if (settings.kind === 'torchrun' && nodes !== 1)
    throw new Error(`nodes: cluster "${settings.name}" is one machine (torchrun); received ${nodes} nodes, expected 1`);
  const bundle = buildBundle(request.config, {
    flavor: request.flavor ?? settings.flavor,
    gpus,
    nodes,
    runId,
    name: request.name ?? runId,
    dataRoot: request.dataRoot ?? settings.dataRoot,
    engineDir: settings.engineDir,
    python: settings.python,
    partition: settings.partition,
    cpusPerTask: settings.cpusPerTask,
    timeLimit: settings.timeLimit,
    setup: settings.setup,
    environment: { ...settings.environment, ...(request.environment ?? {}) },
    torchrun: settings.torchrun,
    logInterval: request.logInterval ?? null,
    decoder: request.decoder ?? settings.decoder,
    amp: request.amp ?? settings.amp,
  });
  return {
    runId,
    config: request.config,
    configPath: request.configPath,
    settings,
    remoteDir: `${settings.remoteRoot.replace(/\/+$/, '')}/${runId}`,
    bundle,
  };
}

/** Sample video paths of the bundle's train annotations (split on its delimiter), for preflight. */
function samplePaths(bundle: Bundle): string[] {
  const train = bundle.files.find((file) => file.path === 'annotations/train.txt');
  if (!train) return [];
  return annotationPaths(train.content, bundle.manifest.delimiter).slice(0, 3);
}

export async function checkCluster(
  store: ClusterStore,
  name: string,
  prepared: PreparedSubmission | null = null,
  factory: BackendFactory = createBackend,
): Promise<PreflightReport> {
  const settings = store.requireCluster(name);
  const backend = factory(settings);
  if (!prepared) return backend.preflight({ flavor: settings.flavor, dataRoot: settings.dataRoot });
  return backend.preflight({
    flavor: prepared.bundle.manifest.flavor,
    baseConfig: prepared.bundle.manifest.baseConfig,
    dataRoot: prepared.bundle.manifest.dataRoot,
    samplePaths: samplePaths(prepared.bundle),
    decoder: prepared.bundle.manifest.decoder,
  });
}

/** Creates the run, writes a local copy of the bundle, uploads it and submits it. */
export async function submitRun(
  registry: Registry,
  request: SubmitRequest | PreparedSubmission,
  options: { factory?: BackendFactory } = {},
): Promise<ClusterJob> {
  const store = new ClusterStore(registry);
  const prepared = 'bundle' in request ? request : prepareSubmission(store, request);
  const backend = (options.factory ?? createBackend)(prepared.settings);
  const manifest = prepared.bundle.manifest;
  const runDir = runDirOf(registry, prepared.runId);
  writeBundle(prepared.bundle, join(runDir, 'bundle'));
  registry.createRun({
    id: prepared.runId,
    name: manifest.name,
    config: prepared.config,
    configPath: prepared.configPath,
    datasetId: null,
    projectVersion,
    backend: `${prepared.settings.kind}:${prepared.settings.name}`,
    seed: manifest.seed,
    gitCommit: null,
    runDir,
    epochs: manifest.epochs,
  });
  try {
    const remoteDir = await backend.upload(prepared.bundle, prepared.remoteDir);
    const jobId = await backend.submit(remoteDir);
    const time = new Date().toISOString();
    const job: ClusterJob = {
      runId: prepared.runId,
      cluster: prepared.settings.name,
      jobId,
      attempt: 1,
      flavor: manifest.flavor,
      remoteDir,
      gpus: manifest.gpus,
      nodes: manifest.nodes,
      itersPerEpoch: manifest.itersPerEpoch,
      loggedLrToBase: manifest.loggedLrToBase,
      state: 'submitted',
      schedulerState: 'SUBMITTED',
      reason: null,
      exitCode: null,
      message: null,
      submittedAt: time,
      updatedAt: time,
      finishedAt: null,
    };
    store.addJob(job);
    registry.setStatus(prepared.runId, 'created', `submitted to ${prepared.settings.name} as job ${jobId}`);
    return job;
  } catch (error) {
    registry.setStatus(prepared.runId, 'failed', `submission to ${prepared.settings.name} failed: ${(error as Error).message}`);
    throw error;
  }
}

const runStatusOf = (state: JobState): 'created' | 'running' | 'completed' | 'failed' | 'stopped' | null => {
  switch (state) {
    case 'submitted':
    case 'pending':
      return 'created';
    case 'running':
      return 'running';
    case 'completed':
      return 'completed';
    case 'failed':
    case 'timeout':
      return 'failed';
    case 'cancelled':
      return 'stopped';
    case 'unknown':
      return null;
    default: {
      const exhaustive: never = state;
      return exhaustive;
    }
  }
};

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
const MAX_LINE_BYTES = 256 * 1024 * 1024;

export interface SyncOptions {
  factory?: BackendFactory;
  /** A running job with no engine log after this many seconds gets a warning message. */
  noLogWarningSeconds?: number;
  /** Log bytes read per file and poll (default 4 MB). */
  maxBytes?: number;
}

/** One poll of a run's job: state, new log lines into the registry, checkpoints. */
export async function syncJob(registry: Registry, runIdOrJobId: string, options: SyncOptions = {}): Promise<SyncDetails> {
  const store = new ClusterStore(registry);
  const job = store.requireJob(runIdOrJobId);
  const settings = store.requireCluster(job.cluster);
  const backend = (options.factory ?? createBackend)(settings);
  const offsets = store.logOffsets(job.runId);
  const maxBytes = options.maxBytes ?? DEFAULT_CHUNK_BYTES;
  const snapshot = await backend.snapshot(
    job.jobId,
    job.remoteDir,
    job.flavor,
    new Map([...offsets].map(([path, entry]) => [path, entry.offset])),
    maxBytes,
  );
  // A chunk cut before its first newline holds one line longer than the read: read on until a
  // line ends (or the file does), or the log would never advance past it.
  for (const chunk of snapshot.chunks) {
    let limit = maxBytes;
    while (chunk.bytes.length >= limit && chunk.bytes.lastIndexOf(0x0a) < 0 && limit < MAX_LINE_BYTES) {
      limit *= 4;
      chunk.bytes = await backend.readFrom(`${job.remoteDir}/${chunk.path}`, chunk.offset, limit);
    }
  }
  const context: RowContext = { flavor: job.flavor, itersPerEpoch: job.itersPerEpoch, loggedLrToBase: job.loggedLrToBase };
  const problems: LogProblem[] = [];
  const records: LogRecord[] = [];
  let metricsWritten = 0;
  const ordered = orderLogFiles(snapshot.chunks.map((chunk) => chunk.path));
  const knownPaths = orderLogFiles([...new Set([...offsets.keys(), ...snapshot.logFiles.map((file) => file.path)])]);

  registry.db.transaction(() => {
    for (const path of ordered) {
      const chunk = snapshot.chunks.find((entry) => entry.path === path)!;
      const previous = offsets.get(path) ?? { path, offset: 0, lines: 0, firstStep: null };
      if (chunk.offset !== previous.offset) continue; // a stale listing; the next poll re-reads
      const parsed = parseLogChunk(job.flavor, chunk.bytes, path, previous.lines + 1);
      problems.push(...parsed.problems);
      if (parsed.consumedBytes === 0) continue;
      // A new file after older ones is a resumed run: what the older files logged from its
      // resume point (its first train line, which may come polls after its metadata line) on is
      // superseded (later wins).
      let firstStep = previous.firstStep;
      const resume = firstStep === null ? resumePoint(parsed.records, context) : null;
      if (resume) {
        firstStep = resume.iteration;
        if (knownPaths.indexOf(path) > 0) registry.truncateMetrics(job.runId, resume.iteration, resume.epochsDone);
      }
      records.push(...parsed.records);
      const rows = recordsToRows(parsed.records, context);
      metricsWritten += rows.length;
      const run = registry.getRun(job.runId);
      registry.recordProgress(job.runId, run?.epochsDone ?? 0, run?.iteration ?? 0, rows);
      store.setLogOffset(job.runId, {
        path,
        offset: previous.offset + parsed.consumedBytes,
        lines: previous.lines + parsed.consumedLines,
        firstStep,
      });
    }
    // Progress: finished epochs are those a later epoch's line or a checkpoint proves done.
    const all = registry.metrics(job.runId);
    const iterationRows = all.filter((row) => row.scope === 'iteration');
    const lastEpochSeen = iterationRows.reduce((max, row) => Math.max(max, row.epoch), -1);
    const checkpointEpoch = snapshot.checkpoints.reduce((max, checkpoint) => Math.max(max, checkpoint.epoch ?? 0), 0);
    const finished = finishedJobStates.includes(snapshot.status.state) && snapshot.status.state === 'completed';
    const epochsDone = Math.max(checkpointEpoch, finished ? lastEpochSeen + 1 : lastEpochSeen, 0);
    const iteration = iterationRows.reduce((max, row) => Math.max(max, row.step + 1), 0);
    const epochRows = epochTrainRows(all, epochsDone);
    registry.recordProgress(job.runId, epochsDone, iteration, epochRows);
  })();

  const status = await describeStatus(
    backend,
    job,
    snapshot.status,
    snapshot.logFiles.length > 0 || offsets.size > 0,
    options.noLogWarningSeconds ?? 300,
  );
  const finishedAt = finishedJobStates.includes(status.state) ? (job.finishedAt ?? new Date().toISOString()) : null;
  store.updateJob({
    runId: job.runId,
    attempt: job.attempt,
    state: status.state,
    schedulerState: status.schedulerState,
    reason: status.reason,
    exitCode: status.exitCode,
    message: status.message,
    finishedAt,
  });
  const runStatus = runStatusOf(status.state);
  // The job's start (Slurm's elapsed time when known) is the run's start: `runs show` prints it.
  if (runStatus === 'running' || (runStatus !== null && runStatus !== 'created' && snapshot.logFiles.length > 0)) {
    const elapsed = status.elapsedSeconds;
    registry.markStarted(job.runId, new Date(Date.now() - (elapsed !== null && elapsed >= 0 ? elapsed * 1000 : 0)).toISOString());
  }
  const run = registry.getRun(job.runId);
  if (runStatus && run && (run.status !== runStatus || run.message !== status.message))
    registry.setStatus(job.runId, runStatus, status.message);
  return {
    job: store.latestJob(job.runId)!,
    status,
    logFiles: snapshot.logFiles.map((file) => file.path),
    newRecords: records.length,
    metricsWritten,
    problems,
    checkpoints: snapshot.checkpoints,
    records,
  };
}

/** Adds what the user needs to know: a running job without a log, a failed job's last output. */
async function describeStatus(
  backend: ClusterBackend,
  job: ClusterJob,
  status: JobStatus,
  hasLog: boolean,
  noLogWarningSeconds: number,
): Promise<JobStatus> {
  if (status.state === 'running' && !hasLog && (status.elapsedSeconds ?? 0) >= noLogWarningSeconds) {
    return {
      ...status,
      message: `running for ${status.elapsedSeconds} s without writing an engine log in work/ (see ${outputFileOf(backend, job)} in ${job.remoteDir})`,
    };
  }
  // An ended job keeps the message written when it ended (it may hold the output's last lines).
  if (finishedJobStates.includes(status.state) && job.state === status.state && job.message)
    return { ...status, message: job.message };
  if ((status.state === 'failed' || status.state === 'unknown') && job.state !== status.state) {
    const tail = await backend.outputTail(job.jobId, job.remoteDir).catch(() => '');
    if (tail)
      return {
        ...status,
        message: `${status.message ?? status.state}${hasLog ? '' : '; the job wrote no engine log'}; last output: ${tail}`,
      };
    if (!hasLog) return { ...status, message: `${status.message ?? status.state}; the job wrote no engine log` };
  }
  return status;
}

const outputFileOf = (backend: ClusterBackend, job: ClusterJob): string =>
  backend.settings.kind === 'slurm' ? `slurm-${job.jobId}.out` : 'torchrun.out';

export interface SyncAllResult {
  runId: string;
  result: SyncDetails | null;
  error: string | null;
}

/** Re-attaches every unfinished job (after a restart) and polls it; one failing cluster does not stop the others. */
export async function syncActiveJobs(registry: Registry, options: SyncOptions = {}): Promise<SyncAllResult[]> {
  const store = new ClusterStore(registry);
  const active = store.listJobs().filter((job) => !finishedJobStates.includes(job.state));
  const results: SyncAllResult[] = [];
  for (const job of active) {
    try {
      results.push({ runId: job.runId, result: await syncJob(registry, job.runId, options), error: null });
    } catch (error) {
      results.push({ runId: job.runId, result: null, error: (error as Error).message });
    }
  }
  return results;
}

export async function cancelJob(registry: Registry, runIdOrJobId: string, options: SyncOptions = {}): Promise<SyncDetails> {
  const store = new ClusterStore(registry);
  const job = store.requireJob(runIdOrJobId);
  if (finishedJobStates.includes(job.state))
    throw new Error(`job ${job.jobId} of run ${job.runId} already ended (${job.state}); nothing to cancel`);
  const backend = (options.factory ?? createBackend)(store.requireCluster(job.cluster));
  await backend.cancel(job.jobId, job.remoteDir);
  return syncJob(registry, job.runId, options);
}

/** Resubmits a finished run in its folder; the job script resumes from the engine's last checkpoint. */
export async function resumeJob(registry: Registry, runIdOrJobId: string, options: SyncOptions = {}): Promise<ClusterJob> {
  const store = new ClusterStore(registry);
  const job = store.requireJob(runIdOrJobId);
  if (!finishedJobStates.includes(job.state) && job.state !== 'unknown')
    throw new Error(`job ${job.jobId} of run ${job.runId} is ${job.state}; cancel it or wait for it to end before resuming`);
  const backend = (options.factory ?? createBackend)(store.requireCluster(job.cluster));
  const jobId = await backend.submit(job.remoteDir);
  const time = new Date().toISOString();
  const next: ClusterJob = {
    ...job,
    jobId,
    attempt: job.attempt + 1,
    state: 'submitted',
    schedulerState: 'SUBMITTED',
    reason: null,
    exitCode: null,
    message: null,
    submittedAt: time,
    updatedAt: time,
    finishedAt: null,
  };
  store.addJob(next);
  registry.setStatus(job.runId, 'created', `resubmitted to ${job.cluster} as job ${jobId} (resumes from the last checkpoint)`);
  return next;
}

/** The config and launch choices of a cluster run, to edit and submit as a new run. */
export function cloneSubmission(registry: Registry, runId: string): Omit<SubmitRequest, 'runId'> {
  const store = new ClusterStore(registry);
  const run = registry.requireRun(runId);
  const job = store.requireJob(runId);
  return {
    config: parseRunConfig(run.config, `config of run ${runId}`),
    configPath: run.configPath,
    cluster: job.cluster,
    gpus: job.gpus,
    nodes: job.nodes,
    flavor: job.flavor,
    name: `${run.name} (copy)`,
  };
}

/** Picks a checkpoint by file name, "latest", "best" or an epoch number. */
export function pickCheckpoint(checkpoints: readonly RemoteCheckpoint[], which: string): RemoteCheckpoint {
  const files = checkpoints.filter((checkpoint) => checkpoint.kind !== 'latest');
  let found: RemoteCheckpoint | undefined;
  if (which === 'latest')
    found = checkpoints.find((checkpoint) => checkpoint.kind === 'latest') ?? [...files].filter((c) => c.kind === 'epoch').pop();
  else if (which === 'best') found = [...files].filter((checkpoint) => checkpoint.kind === 'best').pop();
  else if (/^\d+$/.test(which))
    found = files.find((checkpoint) => checkpoint.kind === 'epoch' && checkpoint.epoch === Number(which));
  else found = files.find((checkpoint) => checkpoint.name === which);
  if (found) return found;
  const names = files.map((checkpoint) => checkpoint.name);
  throw new Error(
    `no checkpoint "${which}" (expected a file name, an epoch number, "latest" or "best"); the work dir holds ${names.length ? names.join(', ') : 'no checkpoint yet'}`,
  );
}

/** Class names of a run: its label map (the config's, or the bundle's copy), else "class i". */
function classNamesOf(config: RunConfig, runDir: string): string[] {
  for (const file of [config.data.classes, join(runDir, 'bundle', 'label_map.txt')]) {
    if (file && existsSync(file)) {
      const names = readFileSync(file, 'utf8')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.length > 0);
      if (names.length === config.model.num_classes) return names;
    }
  }
  return defaultClassNames(config.model.num_classes);
}

/**
 * Downloads a checkpoint into the run folder and registers a copy in the workbench format: the
 * official .pth has no model config, which the comparison and attention pages need to rebuild the
 * model (the loader maps mmaction2 1.x's `backbone.norm3` to the model's `backbone.norm`).
 */
export async function pullCheckpoint(
  registry: Registry,
  runIdOrJobId: string,
  which: string,
  options: SyncOptions = {},
): Promise<PulledCheckpoint> {
  const store = new ClusterStore(registry);
  const job = store.requireJob(runIdOrJobId);
  const run = registry.requireRun(job.runId);
  const config = parseRunConfig(run.config, `config of run ${run.id}`);
  const backend = (options.factory ?? createBackend)(store.requireCluster(job.cluster));
  const remote = pickCheckpoint(await backend.listCheckpoints(job.remoteDir), which);
  const fileName = remote.path.slice(remote.path.lastIndexOf('/') + 1);
  const runDir = runDirOf(registry, job.runId);
  const downloaded = join(runDir, 'checkpoints', fileName);
  await backend.pull(remote.path, downloaded);
  const loaded = loadCheckpoint(downloaded);
  // The loader already gives mmaction2 1.x's `backbone.norm3` the model's name (see its notes).
  const notes = [...loaded.notes];
  const stateDict = loaded.stateDict;
  const modelConfig = parseModelConfig(modelConfigOf(config));
  const missing = [...recognizerKeys(modelConfig).keys()].filter(
    (key) => !stateDict.has(key) && !key.endsWith('relative_position_index'),
  );
  if (missing.length)
    throw new Error(
      `${downloaded}: ${missing.length} weights of the run's model are missing (first: ${missing.slice(0, 3).join(', ')}); is this a checkpoint of run ${run.id}?`,
    );
  const epoch = remote.epoch ?? (typeof loaded.metadata.epoch === 'number' ? loaded.metadata.epoch : 0);
  const registered = `${downloaded.replace(/\.pth$/, '')}.vswin.safetensors`;
  saveCheckpoint(
    registered,
    stateDict,
    checkpointMetadata({
      model: modelConfig,
      classNames: classNamesOf(config, runDir),
      pipeline: config.data.pipeline,
      runId: run.id,
      projectVersion: run.projectVersion,
      epoch,
      source: `${job.cluster}:${remote.path}`,
    }) as Record<string, unknown>,
    { keepInt64: true },
  );
  notes.push(`registered ${registered} (workbench format with the model config; the original is ${downloaded})`);
  const reasons: CheckpointReason[] = remote.kind === 'best' ? ['best'] : remote.kind === 'latest' ? ['last'] : ['interval'];
  const metricName = config.evaluation.metric;
  const metric = registry
    .metrics(run.id)
    .find((row) => row.scope === 'epoch' && row.split === 'val' && row.step === epoch && row.name === metricName);
  const existing = registry.checkpoints(run.id).find((checkpoint) => checkpoint.path === registered);
  const checkpointId =
    existing?.id ??
    registry.addCheckpoint({
      runId: run.id,
      epoch,
      iteration: epoch * job.itersPerEpoch,
      path: registered,
      statePath: null,
      reasons,
      metricName: metric ? metricName : null,
      metricValue: metric?.value ?? null,
    });
  return { remote, localPath: registered, checkpointId, notes };
}
