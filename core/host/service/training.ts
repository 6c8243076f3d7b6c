// Training runs started from the UI: the run config is resolved and checked, the run is recorded in
// the registry, and the trainer's typed events are forwarded to every client. Runs go on in this
// process between awaits of the data loader, so the service keeps answering while one trains.
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseLabelMap } from '../../data/annotations.ts';
import { currentBackend } from '../../engine/backend.ts';
import { createVideoSwin } from '../../model/video-swin.ts';
import { loadCheckpoint } from '../../model/weights/checkpoint.ts';
import { parseModelConfig } from '../../model/config.ts';
import { newRunId, type Registry } from '../../registry/registry.ts';
import { TrainControl } from '../../train/control.ts';
import { loaderSource, pipelineFor } from '../../train/data-source.ts';
import { checkConfigFiles, modelConfigOf, resolveRunConfig, type RunConfig } from '../../train/run-config.ts';
import { train, type TrainResult } from '../../train/trainer.ts';
import { defaultClassNames } from '../../train/checkpoint-metadata.ts';
import type { TrainCommand, TrainEvent } from '../../protocol/train.ts';
import { runCompute } from './compute-pool.ts';

export interface TrainingHost {
  home: string;
  registry: Registry;
  version: string;
  onEvent(event: TrainEvent): void;
}

interface ActiveRun {
  control: { control(command: TrainCommand): void };
  done: Promise<TrainResult | null>;
}

export class TrainingSessions {
  private readonly active = new Map<string, ActiveRun>();

  constructor(private readonly host: TrainingHost) {}

  isActive(runId: string): boolean {
    return this.active.has(runId);
  }

  /** Resolves relative paths against the workbench home, validates, checks the named files exist. */
  resolve(config: unknown): RunConfig {
    const resolved = resolveRunConfig(config, this.host.home, 'run config');
    checkConfigFiles(resolved);
    return resolved;
  }

  async start(rawConfig: unknown, name: string): Promise<string> {
    const config = this.resolve(rawConfig);
    const runId = newRunId();
    const runDir = join(this.host.home, 'runs', runId);
    mkdirSync(runDir, { recursive: true });
    const backend = currentBackend()?.name ?? 'unknown';
    this.host.registry.createRun({
      id: runId,
      name: name.trim() || runId,
      config: rawConfig,
      configPath: null,
      datasetId: null,
      projectVersion: this.host.version,
      backend,
      seed: config.seed,
      gitCommit: null,
      runDir,
      epochs: config.epochs,
    });
    await this.launch(runId, config, runDir, null);
    return runId;
  }

  /** Continues a stopped or interrupted run from its newest checkpoint with a training state. */
  async resume(runId: string): Promise<string> {
    if (this.active.has(runId)) throw new Error(`run ${runId} is already running`);
    const run = this.host.registry.requireRun(runId);
    const latest = this.host.registry
      .checkpoints(runId)
      .filter((c) => c.statePath && existsSync(c.statePath) && existsSync(c.path))
      .sort((a, b) => b.iteration - a.iteration)[0];
    if (!latest || !latest.statePath) throw new Error(`run ${runId} has no checkpoint with a training state to resume from`);
    const config = this.resolve(run.config);
    await this.launch(runId, config, run.runDir, { weights: latest.path, state: latest.statePath });
    return runId;
  }

  control(runId: string, command: 'pause' | 'resume' | 'stop'): void {
    const run = this.active.get(runId);
    if (!run) throw new Error(`run ${runId} is not running in this service`);
    run.control.control(command === 'stop' ? { kind: 'stop', reason: 'stopped from the workbench' } : { kind: command });
  }

  /** Stops every run and waits for them to write their state (service shutdown). */
  async stopAll(): Promise<void> {
    const runs = [...this.active.values()];
    for (const run of runs) run.control.control({ kind: 'stop', reason: 'the workbench service is shutting down' });
    await Promise.all(runs.map((run) => run.done));
  }

  private async launch(
    runId: string,
    config: RunConfig,
    runDir: string,
    resumeFrom: { weights: string; state: string } | null,
  ): Promise<void> {
    // The run lives in a worker thread: its forward/backward passes never block the service.
    const job = runCompute<TrainResult>(
      { type: 'train', runId, home: this.host.home, config, runDir, resumeFrom },
      { onTrainEvent: (event) => this.host.onEvent(event) },
    );
    const done = job.done
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.host.registry.setStatus(runId, 'failed', message);
        this.host.onEvent({ kind: 'run-finished', runId, status: 'failed', message, seconds: 0 });
        return null;
      })
      .finally(() => this.active.delete(runId));
    this.active.set(runId, { control: job, done });
  }

  /** Waits for a run started here to end (tests, shutdown). */
  async wait(runId: string): Promise<TrainResult | null> {
    return (await this.active.get(runId)?.done) ?? null;
  }
}

export interface TrainingSpec {
  runId: string;
  config: RunConfig;
  runDir: string;
  resumeFrom: { weights: string; state: string } | null;
  registry: Registry;
  control: TrainControl;
  onEvent(event: TrainEvent): void;
}

/** One training run, start to end, in the calling thread (the compute worker calls this). */
export async function runTraining(spec: TrainingSpec): Promise<TrainResult> {
  const { config, runId, resumeFrom } = spec;
  const classes = config.data.classes
    ? parseLabelMap(await readFile(config.data.classes, 'utf8'), config.data.classes).classes
    : [];
  const seed = config.seed;
  const workers = Math.max(1, config.data.workers);
  const trainSource = await loaderSource({
    annFile: config.data.train_ann,
    root: config.data.root,
    spec: pipelineFor(config, 'train'),
    batchSize: config.batch_size,
    shuffle: true,
    seed,
    workers,
  });
  const valSource = config.data.val_ann
    ? await loaderSource({
        annFile: config.data.val_ann,
        root: config.data.val_root ?? config.data.root,
        spec: pipelineFor(config, 'val'),
        batchSize: config.batch_size,
        shuffle: false,
        seed,
        workers,
      })
    : null;
  const modelConfig = parseModelConfig(modelConfigOf(config));
  const model = createVideoSwin(modelConfig, { seed });
  try {
    if (config.model.load_from && !resumeFrom)
      model.loadStateDict(loadCheckpoint(config.model.load_from).stateDict, { skipMismatched: true });
    return await train({
      runId,
      config,
      model,
      train: trainSource,
      val: valSource,
      runDir: spec.runDir,
      registry: spec.registry,
      backend: currentBackend()?.name ?? 'unknown',
      checkpointInfo: {
        classNames: classes.length ? classes : defaultClassNames(modelConfig.num_classes),
        projectVersion: 'unknown',
      },
      resumeFrom,
      control: spec.control,
      onEvent: spec.onEvent,
    });
  } finally {
    model.dispose();
  }
}
