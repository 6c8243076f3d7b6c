// Training runs, for both doors: `vswin train` (and `vswin demo`) runs them in its own process, the
// workbench service in a compute worker, and both go through the same three steps:
//   createRun / prepareResume   registry bookkeeping on the thread that owns the registry: the run
//                               folder, config.json, the run row (project version, git commit,
//                               backend, seed), the dataset row; or the checks and checkpoint of a resume
//   runTraining                 the data sources (the streaming loader or the in-memory cache), the
//                               starting model (fresh, inflated from 2-D `pretrained`, or `load_from`),
//                               the loop, the checkpoints with their metadata
// so the same config, seed and backend give the same weights and the same registry rows from either door.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../files/atomic.ts';
import type { TrainEvent } from '../protocol/train.ts';
import { newRunId, type Registry, type RunRecord } from '../registry/registry.ts';
import { cachedSource } from '../train/cached-source.ts';
import type { TrainControl } from '../train/control.ts';
import { loaderSource, pipelineFor } from '../train/data-source.ts';
import { buildModel } from '../train/model-setup.ts';
import { checkConfigFiles, parseRunConfig, type RunConfig } from '../train/run-config.ts';
import { train, type BatchSource, type TrainResult } from '../train/trainer.ts';

export type { TrainResult } from '../train/trainer.ts';
export { TrainControl } from '../train/control.ts';
import { classNamesOf } from './checkpoints.ts';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function projectVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** HEAD of the checkout the workbench runs from, or null outside a git checkout. */
export function gitCommit(): string | null {
  const result = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 5000 });
  if (result.status !== 0) return null;
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: 5000,
  });
  return result.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() ? '+dirty' : '');
}

/** A run ready to train: its registry row, its config and, when resumed, the checkpoint it continues from. */
export interface PreparedRun {
  run: RunRecord;
  config: RunConfig;
  resumeFrom: { weights: string; state: string } | null;
  /** What was decided, in plain words (resumed from where, restarted why). */
  notes: string[];
}

export interface NewRunOptions {
  home: string;
  /** A resolved run config (absolute paths). */
  config: RunConfig;
  /** The file it came from (`vswin train CONFIG`), null when it came from the workbench. */
  configPath: string | null;
  /** The run's name; empty: the config file's name, else the run id. */
  name?: string;
  backend: string;
}

/** Creates a run: checks its files and label map, writes its folder and config.json, records it and its dataset. */
export function createRun(registry: Registry, options: NewRunOptions): PreparedRun {
  const { config } = options;
  checkConfigFiles(config);
  const classNames = classNamesOf(config);
  const id = newRunId();
  const runDir = join(options.home, 'runs', id);
  mkdirSync(runDir, { recursive: true });
  writeFileAtomicSync(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const fromFile = options.configPath
    ?.split('/')
    .pop()
    ?.replace(/\.json$/, '');
  const run = registry.createRun({
    id,
    name: options.name?.trim() || fromFile || id,
    config,
    configPath: options.configPath,
    datasetId: null,
    projectVersion: projectVersion(),
    backend: options.backend,
    seed: config.seed,
    gitCommit: gitCommit(),
    runDir,
    epochs: config.epochs,
  });
  const datasetId = registry.upsertDataset({
    name: config.data.root.split('/').filter(Boolean).pop() ?? config.data.root,
    root: config.data.root,
    trainAnn: config.data.train_ann,
    valAnn: config.data.val_ann,
    classNames,
    numClasses: config.model.num_classes,
  });
  registry.setRunDataset(run.id, datasetId);
  return { run: registry.requireRun(run.id), config, resumeFrom: null, notes: [] };
}

/** Continues a stopped, failed or interrupted run with its stored config from its newest checkpoint with a training state. */
export function prepareResume(registry: Registry, runId: string): PreparedRun {
  const run = registry.requireRun(runId);
  if (run.status === 'running' || run.status === 'paused')
    throw new Error(`run ${run.id} is ${run.status} in process ${run.pid} on ${run.host}; stop it before resuming`);
  if (run.status === 'completed')
    throw new Error(`run ${run.id} already completed all ${run.epochs} epochs; start a new run to train further`);
  const config = parseRunConfig(run.config, `stored config of run ${run.id}`);
  checkConfigFiles(config);
  const latest = registry
    .checkpoints(run.id)
    .filter((c) => c.statePath && existsSync(c.statePath) && existsSync(c.path))
    .sort((a, b) => a.iteration - b.iteration || a.epoch - b.epoch)
    .at(-1);
  if (latest) {
    return {
      run,
      config,
      resumeFrom: { weights: latest.path, state: latest.statePath as string },
      notes: [`resuming run ${run.id} from epoch ${latest.epoch} (${latest.path})`],
    };
  }
  registry.truncateMetrics(run.id, 0, 0);
  return {
    run,
    config,
    resumeFrom: null,
    notes: [`run ${run.id} has no checkpoint yet; it restarts from epoch 1 with its stored config`],
  };
}

export interface TrainingOptions {
  registry: Registry;
  prepared: Pick<PreparedRun, 'run' | 'config' | 'resumeFrom'>;
  backend: string;
  onEvent?: (event: TrainEvent) => void;
  /** Plain-words notes (what was loaded, decoded, skipped). */
  onNote?: (line: string) => void;
  control?: TrainControl;
}

/** Trains a prepared run to its end (completed, stopped or failed) in the calling thread. */
export async function runTraining(options: TrainingOptions): Promise<TrainResult> {
  const note = options.onNote ?? (() => {});
  const { run, config, resumeFrom } = options.prepared;
  const classNames = classNamesOf(config);
  const sources = await dataSources(config, note).catch((error: unknown) => {
    // A run that cannot even load its data ends `failed` with the reason, not `created` with none.
    options.registry.setStatus(run.id, 'failed', (error as Error).message);
    throw error;
  });
  const { model, notes } = buildModel(config, { resuming: resumeFrom !== null });
  notes.forEach(note);
  try {
    const result = await train({
      runId: run.id,
      config,
      model,
      train: sources.train,
      val: sources.val,
      runDir: run.runDir,
      registry: options.registry,
      backend: options.backend,
      checkpointInfo: { classNames, projectVersion: run.projectVersion },
      resumeFrom,
      onEvent: options.onEvent,
      control: options.control,
    });
    if (result.skipped > 0) note(`skipped ${result.skipped} samples over the run (vswin runs show ${run.id} lists them)`);
    for (const skip of sources.skips().slice(0, 5)) note(`skipped ${skip}`);
    return result;
  } finally {
    model.dispose();
  }
}

/** Train and val sources of a run: the data engine's streaming loader, or the in-memory cache (`data.cache`). */
export async function dataSources(
  config: RunConfig,
  note: (line: string) => void = () => {},
): Promise<{ train: BatchSource; val: BatchSource | null; skips: () => string[] }> {
  const valRoot = config.data.val_root ?? config.data.root;
  const valBatch = Math.max(config.batch_size, 8);
  if (config.data.cache) {
    const progress = (label: string) => (done: number, total: number) => {
      if (done === total) note(`decoded ${total} ${label} videos into memory`);
    };
    const train = await cachedSource({
      annFile: config.data.train_ann,
      root: config.data.root,
      spec: pipelineFor(config, 'train'),
      batchSize: config.batch_size,
      shuffle: true,
      seed: config.seed,
      workers: config.data.workers,
      onProgress: progress('training'),
    });
    const val = config.data.val_ann
      ? await cachedSource({
          annFile: config.data.val_ann,
          root: valRoot,
          spec: pipelineFor(config, 'val'),
          batchSize: valBatch,
          shuffle: false,
          seed: config.seed,
          workers: config.data.workers,
          onProgress: progress('validation'),
        })
      : null;
    const skippedAtLoad = (source: typeof train | null) =>
      [...(source?.skippedAtLoad ?? [])].map(([index, reason]) => `${source!.videoName(index)}: ${reason}`);
    return { train, val, skips: () => [...skippedAtLoad(train), ...skippedAtLoad(val)] };
  }
  const train = await loaderSource({
    annFile: config.data.train_ann,
    root: config.data.root,
    spec: pipelineFor(config, 'train'),
    batchSize: config.batch_size,
    shuffle: true,
    seed: config.seed,
    workers: config.data.workers,
  });
  for (const problem of train.loader.problems.slice(0, 5)) note(`train annotations: ${problem}`);
  const val = config.data.val_ann
    ? await loaderSource({
        annFile: config.data.val_ann,
        root: valRoot,
        spec: pipelineFor(config, 'val'),
        batchSize: valBatch,
        shuffle: false,
        seed: config.seed,
        workers: config.data.workers,
      })
    : null;
  return {
    train,
    val,
    skips: () => [...train.loader.stats.skips, ...(val?.loader.stats.skips ?? [])].map((s) => `${s.path}: ${s.reason}`),
  };
}
