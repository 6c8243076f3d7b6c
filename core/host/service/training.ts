// Training runs started from the UI: the run is created or resumed by the application layer
// (core/app/training.ts, the same steps as `vswin train`) on this thread, which owns the registry,
// and trained in a compute worker, so its forward/backward passes never block the service; the
// trainer's events are forwarded to every client.
import type { Registry } from '../../registry/registry.ts';
import { createRun, prepareResume, type PreparedRun } from '../../app/training.ts';
import { resolveConfig, type RunConfig } from '../../app/config.ts';
import type { TrainResult } from '../../app/training.ts';
import type { TrainCommand, TrainEvent } from '../../protocol/train.ts';
import { currentBackend } from '../../engine/backend.ts';
import { runCompute } from './compute-pool.ts';

export interface TrainingHost {
  home: string;
  registry: Registry;
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
    return resolveConfig(config, this.host.home);
  }

  async start(rawConfig: unknown, name: string): Promise<string> {
    const prepared = createRun(this.host.registry, {
      home: this.host.home,
      config: this.resolve(rawConfig),
      configPath: null,
      name,
      backend: currentBackend()?.name ?? 'unknown',
    });
    this.launch(prepared);
    return prepared.run.id;
  }

  /** Continues a stopped, failed or interrupted run, as `vswin train --resume` does. */
  async resume(runId: string): Promise<string> {
    if (this.active.has(runId)) throw new Error(`run ${runId} is already running`);
    this.launch(prepareResume(this.host.registry, runId));
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

  private launch(prepared: PreparedRun): void {
    const runId = prepared.run.id;
    // The run lives in a worker thread: its forward/backward passes never block the service.
    const job = runCompute<TrainResult>(
      { type: 'train', runId, home: this.host.home, config: prepared.config, resumeFrom: prepared.resumeFrom },
      { onTrainEvent: (event) => this.host.onEvent(event) },
    );
    const done = job.done
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.host.registry.setStatus(runId, 'failed', message);
        this.host.onEvent({ kind: 'run-finished', runId, status: 'failed', message, seconds: 0, val: null });
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
