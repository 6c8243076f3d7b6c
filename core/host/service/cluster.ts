// The cluster side of the workbench service: routes the cluster.* / jobs.* commands to the cluster
// handlers (core/cluster/service.ts), adds what the jobs table shows (scheduler elapsed time, last
// metrics, checkpoints seen), and runs the job watcher whose polls reach every client as events.
import { z } from 'zod';
import type { ClusterCommandName, ClusterEvent, SyncResult } from '../../protocol/cluster.ts';
import { finishedJobStates } from '../../protocol/cluster.ts';
import type {
  ClusterCommandNameOfWorkbench,
  ClusterJobRow,
  WorkbenchClusterCommands,
  WorkbenchEvent,
} from '../../protocol/workbench.ts';
import { WORKBENCH_CLUSTER_COMMAND_NAMES } from '../../protocol/workbench.ts';
import { ClusterCommandHandler, readJobLog, startClusterWatcher } from '../../cluster/service.ts';
import type { BackendFactory } from '../../cluster/tracking.ts';
import type { Registry } from '../../registry/registry.ts';

type Emit = (event: WorkbenchEvent) => void;

export interface ClusterServiceOptions {
  registry: Registry;
  /** Relative paths of configs sent by the UI resolve against this folder (the workbench home). */
  home: string;
  factory?: BackendFactory;
}

const runIdSchema = z.object({ runId: z.string().min(1) }).strict();

export class ClusterService {
  private readonly handler: ClusterCommandHandler;
  /** The last poll of each run (state, elapsed time, checkpoints), from the watcher and the commands. */
  private readonly lastResults = new Map<string, SyncResult>();
  private watcher: ReturnType<typeof startClusterWatcher> | null = null;
  private emit: Emit = () => undefined;

  constructor(private readonly options: ClusterServiceOptions) {
    this.handler = new ClusterCommandHandler(options.registry, options.home, options.factory);
  }

  static handles(command: string): command is ClusterCommandNameOfWorkbench {
    return (WORKBENCH_CLUSTER_COMMAND_NAMES as readonly string[]).includes(command);
  }

  setEmitter(emit: Emit): void {
    this.emit = emit;
  }

  /** Starts polling unfinished jobs (this re-attaches the jobs of an earlier session). */
  startWatcher(intervalSeconds: number): void {
    if (this.watcher) return;
    this.watcher = startClusterWatcher(this.options.registry, {
      intervalSeconds,
      factory: this.options.factory,
      onEvent: (event) => this.publish(event),
    });
  }

  async stop(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = null;
    await watcher?.stop();
  }

  private publish(event: ClusterEvent): void {
    if (event.kind === 'cluster-job') this.lastResults.set(event.result.job.runId, event.result);
    this.emit({ kind: 'cluster', event, sentAt: Date.now() });
  }

  /** An early poll after a submission, so the table leaves "submitted" without waiting a whole interval. */
  private pollSoon(): void {
    const watcher = this.watcher;
    if (watcher) setTimeout(() => void watcher.pollNow(), 500);
  }

  rows(): ClusterJobRow[] {
    return this.handler.summaries().map((summary) => {
      const last = this.lastResults.get(summary.runId);
      const current = last && last.job.attempt === summary.attempt ? last : null;
      const loss = this.options.registry.lastMetric(summary.runId, 'iteration', 'train', 'loss');
      const val = this.options.registry.lastMetric(summary.runId, 'epoch', 'val', 'top1');
      return {
        ...summary,
        elapsedSeconds: current?.status.elapsedSeconds ?? null,
        lastIteration: loss ? loss.step : null,
        lastLoss: loss?.value ?? null,
        lastValTop1: val ? val.value : null,
        checkpoints: last?.checkpoints ?? null,
      };
    });
  }

  async dispatch<N extends ClusterCommandNameOfWorkbench>(
    command: N,
    args: unknown,
  ): Promise<WorkbenchClusterCommands[N]['result']> {
    return (await this.route(command, args)) as WorkbenchClusterCommands[N]['result'];
  }

  private async route(command: ClusterCommandNameOfWorkbench, args: unknown): Promise<unknown> {
    switch (command) {
      case 'jobs.list': {
        const parsed = z
          .object({ refresh: z.boolean().optional() })
          .strict()
          .safeParse(args ?? {});
        if (!parsed.success) throw new Error(`jobs.list: expected { refresh?: boolean }, received ${JSON.stringify(args)}`);
        if (parsed.data.refresh) {
          for (const row of this.handler.summaries().filter((entry) => !finishedJobStates.includes(entry.state))) {
            try {
              this.lastResults.set(row.runId, await this.handler.handle('jobs.sync', { runId: row.runId }));
            } catch (error) {
              this.publish({ kind: 'cluster-job-error', runId: row.runId, message: (error as Error).message });
            }
          }
        }
        return this.rows();
      }
      case 'jobs.log': {
        const parsed = runIdSchema.safeParse(args ?? {});
        if (!parsed.success)
          throw new Error(
            `jobs.log: runId: expected a run id or a job id, received ${JSON.stringify((args as { runId?: unknown } | null)?.runId) ?? 'nothing'}`,
          );
        return readJobLog(this.options.registry, parsed.data.runId, { factory: this.options.factory });
      }
      case 'jobs.sync':
      case 'jobs.cancel': {
        const result = await this.handler.handle(command, (args ?? {}) as { runId: string });
        // Every client's table learns the new state now, not at the next poll.
        this.publish({ kind: 'cluster-job', result });
        return result;
      }
      case 'cluster.submit':
      case 'jobs.resume': {
        const job = await this.handler.handle(command, (args ?? {}) as never);
        this.pollSoon();
        return job;
      }
      default:
        return this.handler.handle(command satisfies ClusterCommandName, (args ?? {}) as never);
    }
  }
}
