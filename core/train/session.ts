// A training session from a run config: registry bookkeeping (new run or --resume), data loaders,
// the starting model, the loop. The CLI, the demo and the service all start runs through here.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLabelMap } from '../data/annotations.ts';
import { newRunId, Registry, type RunRecord } from '../registry/registry.ts';
import type { TrainEvent } from '../protocol/train.ts';
import type { TrainControl } from './control.ts';
import { cachedSource } from './cached-source.ts';
import { loaderSource, pipelineFor } from './data-source.ts';
import type { BatchSource } from './trainer.ts';
import { buildModel } from './model-setup.ts';
import { checkConfigFiles, parseRunConfig, type RunConfig } from './run-config.ts';
import { train, type TrainResult } from './trainer.ts';

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

export interface SessionOptions {
  /** The config of a new run (ignored when resuming: the run's stored config is used). */
  config: RunConfig | null;
  configPath: string | null;
  home: string;
  name?: string;
  /** Run id to resume. */
  resume?: string;
  backend: string;
  onEvent?: (event: TrainEvent) => void;
  /** Plain-words notes (what was loaded, resumed from where). */
  onNote?: (line: string) => void;
  control?: TrainControl;
}

export interface SessionResult {
  run: RunRecord;
  result: TrainResult;
  classNames: string[];
  config: RunConfig;
}

export async function classNamesOf(config: RunConfig): Promise<string[]> {
  if (!config.data.classes) return Array.from({ length: config.model.num_classes }, (_, i) => String(i));
  const { classes, problems } = await readLabelMap(config.data.classes);
  if (problems.length)
    throw new Error(`data.classes: ${config.data.classes}: ${problems.map((p) => `line ${p.line}: ${p.message}`).join('; ')}`);
  if (classes.length !== config.model.num_classes) {
    throw new Error(
      `data.classes: ${config.data.classes} names ${classes.length} classes but model.num_classes is ${config.model.num_classes}; make them agree`,
    );
  }
  return classes;
}

export async function runTrainingSession(options: SessionOptions): Promise<SessionResult> {
  const note = options.onNote ?? (() => {});
  const registry = Registry.open(options.home);
  try {
    let run: RunRecord;
    let config: RunConfig;
    let resumeFrom: { weights: string; state: string } | null = null;
    if (options.resume) {
      run = registry.requireRun(options.resume);
      if (run.status === 'running' || run.status === 'paused') {
        throw new Error(`run ${run.id} is ${run.status} in process ${run.pid} on ${run.host}; stop it before resuming`);
      }
      if (run.status === 'completed')
        throw new Error(`run ${run.id} already completed all ${run.epochs} epochs; start a new run to train further`);
      config = parseRunConfig(run.config, `stored config of run ${run.id}`);
      const latest = registry
        .checkpoints(run.id)
        .filter((c) => c.statePath && existsSync(c.statePath) && existsSync(c.path))
        .at(-1);
      if (latest) {
        resumeFrom = { weights: latest.path, state: latest.statePath as string };
        note(`resuming run ${run.id} from epoch ${latest.epoch} (${latest.path})`);
      } else {
        registry.truncateMetrics(run.id, 0, 0);
        note(`run ${run.id} has no checkpoint yet; it restarts from epoch 1 with its stored config`);
      }
    } else {
      if (!options.config) throw new Error('a run config is needed to start a run');
      config = options.config;
      checkConfigFiles(config);
      const id = newRunId();
      const runDir = join(options.home, 'runs', id);
      mkdirSync(runDir, { recursive: true });
      const configFile = join(runDir, 'config.json');
      writeFileSync(`${configFile}.tmp`, `${JSON.stringify(config, null, 2)}\n`);
      renameSync(`${configFile}.tmp`, configFile);
      run = registry.createRun({
        id,
        name:
          options.name ??
          (options.configPath
            ? options.configPath
                .split('/')
                .pop()!
                .replace(/\.json$/, '')
            : id),
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
    }
    const classNames = await classNamesOf(config);
    const datasetId = registry.upsertDataset({
      name: config.data.root.split('/').filter(Boolean).pop() ?? config.data.root,
      root: config.data.root,
      trainAnn: config.data.train_ann,
      valAnn: config.data.val_ann,
      classNames,
      numClasses: config.model.num_classes,
    });
    registry.setRunDataset(run.id, datasetId);

    const sources = await dataSources(config, note);
    const trainSource = sources.train;
    const valSource = sources.val;
    const { model, notes } = buildModel(config);
    notes.forEach(note);
    try {
      const result = await train({
        runId: run.id,
        config,
        model,
        train: trainSource,
        val: valSource,
        runDir: run.runDir,
        registry,
        backend: options.backend,
        checkpointInfo: { classNames, projectVersion: projectVersion() },
        resumeFrom,
        onEvent: options.onEvent,
        control: options.control,
      });
      for (const skip of sources.skips().slice(0, 5)) note(`skipped ${skip}`);
      return { run: registry.requireRun(run.id), result, classNames, config };
    } finally {
      model.dispose();
    }
  } finally {
    registry.close();
  }
}

/** Train and val sources of a run: the data engine's streaming loader, or the in-memory cache. */
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
    return { train, val, skips: () => [] };
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
