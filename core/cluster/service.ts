// The cluster side of the workbench service: handlers for the ClusterCommands contract (settings,
// preflight, launch preview + submit, the jobs table, cancel/resume/clone/pull) and a watcher that
// polls unfinished jobs so the UI's curves and jobs table update while a job runs.
import { z } from 'zod';
import type {
  ClusterCommandName,
  ClusterCommands,
  ClusterEvent,
  ClusterJobSummary,
  LaunchArgs,
  SyncResult,
} from '../protocol/cluster.ts';
import { finishedJobStates } from '../protocol/cluster.ts';
import type { ClusterJobLog } from '../protocol/workbench.ts';
import type { Registry } from '../registry/registry.ts';
import { resolveRunConfig } from '../train/run-config.ts';
import { targetOf } from './backend.ts';
import { orderLogFiles } from './log-parser.ts';
import { remotePath, remoteQuote, runRemote } from './ssh.ts';
import { ClusterStore } from './store.ts';
import {
  createBackend,
  cancelJob,
  checkCluster,
  cloneSubmission,
  prepareSubmission,
  pullCheckpoint,
  resumeJob,
  submitRun,
  syncActiveJobs,
  syncJob,
  type BackendFactory,
  type SubmitRequest,
  type SyncDetails,
} from './tracking.ts';

const launchSchema = z
  .object({
    config: z.record(z.string(), z.unknown()),
    cluster: z.string().min(1),
    gpus: z.number().int().positive().optional(),
    nodes: z.number().int().positive().optional(),
    flavor: z.enum(['0.x', '1.x']).optional(),
    name: z.string().min(1).optional(),
    dataRoot: z.string().min(1).nullable().optional(),
    logInterval: z.number().int().positive().nullable().optional(),
    decoder: z.enum(['decord', 'pyav', 'opencv']).optional(),
    amp: z.boolean().optional(),
    environment: z
      .record(z.string(), z.string())
      .superRefine((environment, context) => {
        for (const name of Object.keys(environment)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
            context.addIssue({
              code: 'custom',
              message: `"${name}" is not a shell variable name (expected letters, digits and "_", not starting with a digit)`,
            });
        }
      })
      .optional(),
    /** The run id of a preview, so the submitted files are the ones shown (same arguments, same id). */
    runId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a run id (letters, digits, "_", "." and "-")')
      .optional(),
    check: z.boolean().optional(),
  })
  .strict();
const runSchema = z.object({ runId: z.string().min(1) }).strict();

function parse<T>(schema: z.ZodType<T>, value: unknown, command: string): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const received = issue.path.reduce<unknown>(
      (node, key) => (node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined),
      value ?? {},
    );
    const shown =
      issue.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.join(', ')}`
        : `${issue.message} (received ${JSON.stringify(received) ?? 'nothing'})`;
    return `${issue.path.join('.') || '(args)'}: ${shown}`;
  });
  throw new Error(`${command}: invalid arguments (${issues.join('; ')})`);
}

const withoutRecords = (details: SyncDetails): SyncResult => {
  const { records: _records, ...result } = details;
  return result;
};

type Handlers = { [N in ClusterCommandName]: (args: ClusterCommands[N]['args']) => Promise<ClusterCommands[N]['result']> };

export class ClusterCommandHandler {
  private readonly store: ClusterStore;
  private readonly handlers: Handlers;

  /** `configBase` resolves relative paths of configs sent by the UI (normally the workbench home). */
  constructor(
    private readonly registry: Registry,
    private readonly configBase: string,
    private readonly factory?: BackendFactory,
  ) {
    this.store = new ClusterStore(registry);
    const options = { factory: this.factory };
    this.handlers = {
      'cluster.list': async () => this.store.listClusters(),
      'cluster.save': async (args) => this.store.saveCluster(args),
      'cluster.remove': async (args) => ({
        removed: this.store.removeCluster(parse(z.object({ name: z.string().min(1) }).strict(), args, 'cluster.remove').name),
      }),
      'cluster.check': async (args) => {
        const { name, launch } = parse(
          z.object({ name: z.string().min(1), launch: z.unknown().optional() }).strict(),
          args,
          'cluster.check',
        );
        const prepared = launch ? prepareSubmission(this.store, this.request(launch as LaunchArgs, 'cluster.check')) : null;
        return checkCluster(this.store, name, prepared, this.factory);
      },
      'cluster.preview': async (args) => {
        const prepared = prepareSubmission(this.store, this.request(args, 'cluster.preview'));
        return {
          runId: prepared.runId,
          remoteDir: prepared.remoteDir,
          manifest: prepared.bundle.manifest,
          files: prepared.bundle.files,
        };
      },
      'cluster.submit': async (args) => {
        const request = this.request(args, 'cluster.submit');
        if (request.runId && this.registry.getRun(request.runId))
          throw new Error(
            `cluster.submit: runId: run "${request.runId}" exists already (received "${request.runId}"); show the generated files again for a new run id, or leave runId out`,
          );
        const prepared = prepareSubmission(this.store, request);
        if (args.check !== false) {
          const report = await checkCluster(this.store, prepared.settings.name, prepared, this.factory);
          if (!report.ok)
            throw new Error(
              `cluster ${prepared.settings.name} is not ready: ${report.checks
                .filter((c) => !c.ok)
                .map((c) => `${c.name}: ${c.detail}`)
                .join('; ')}`,
            );
        }
        return submitRun(this.registry, prepared, options);
      },
      'jobs.list': async (args) => {
        if (args?.refresh) await syncActiveJobs(this.registry, options);
        return this.summaries();
      },
      'jobs.sync': async (args) =>
        withoutRecords(await syncJob(this.registry, parse(runSchema, args, 'jobs.sync').runId, options)),
      'jobs.cancel': async (args) =>
        withoutRecords(await cancelJob(this.registry, parse(runSchema, args, 'jobs.cancel').runId, options)),
      'jobs.resume': async (args) => resumeJob(this.registry, parse(runSchema, args, 'jobs.resume').runId, options),
      'jobs.clone': async (args) => {
        const clone = cloneSubmission(this.registry, parse(runSchema, args, 'jobs.clone').runId);
        return {
          config: clone.config,
          cluster: clone.cluster,
          gpus: clone.gpus,
          nodes: clone.nodes,
          flavor: clone.flavor,
          name: clone.name,
        };
      },
      'jobs.pull': async (args) => {
        const { runId, which } = parse(
          z.object({ runId: z.string().min(1), which: z.string().min(1) }).strict(),
          args,
          'jobs.pull',
        );
        return pullCheckpoint(this.registry, runId, which, options);
      },
    };
  }

  handles(command: string): command is ClusterCommandName {
    return command in this.handlers;
  }

  async handle<N extends ClusterCommandName>(
    command: N,
    args: ClusterCommands[N]['args'],
  ): Promise<ClusterCommands[N]['result']> {
    const handler = this.handlers[command] as
      ((args: ClusterCommands[N]['args']) => Promise<ClusterCommands[N]['result']>) | undefined;
    if (!handler)
      throw new Error(`unknown cluster command "${command}"; expected one of ${Object.keys(this.handlers).join(', ')}`);
    return handler(args);
  }

  summaries(): ClusterJobSummary[] {
    return this.store.listJobs().map((job) => {
      const run = this.registry.getRun(job.runId);
      return {
        ...job,
        runName: run?.name ?? job.runId,
        runStatus: run?.status ?? 'unknown',
        epochs: run?.epochs ?? 0,
        epochsDone: run?.epochsDone ?? 0,
      };
    });
  }

  private request(args: LaunchArgs, command: string): SubmitRequest {
    const launch = parse(launchSchema, args, command);
    return {
      config: resolveRunConfig(launch.config, this.configBase, `${command} config`),
      configPath: null,
      cluster: launch.cluster,
      gpus: launch.gpus,
      nodes: launch.nodes,
      flavor: launch.flavor,
      name: launch.name,
      dataRoot: launch.dataRoot ?? null,
      logInterval: launch.logInterval ?? null,
      decoder: launch.decoder,
      amp: launch.amp,
      environment: launch.environment,
      runId: launch.runId,
    };
  }
}

export interface WatcherOptions {
  intervalSeconds?: number;
  factory?: BackendFactory;
  onEvent: (event: ClusterEvent) => void;
}

/**
 * Polls every unfinished job (this re-attaches jobs after a restart) and reports polls that brought
 * something new. Polls never overlap; stop() waits for the one in flight.
 */
export function startClusterWatcher(
  registry: Registry,
  options: WatcherOptions,
): { stop: () => Promise<void>; pollNow: () => Promise<void> } {
  const interval = (options.intervalSeconds ?? 10) * 1000;
  const store = new ClusterStore(registry);
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> = Promise.resolve();
  const poll = async () => {
    for (const job of store.listJobs().filter((entry) => !finishedJobStates.includes(entry.state))) {
      if (stopped) return;
      try {
        const before = { state: job.state, message: job.message };
        const result = withoutRecords(await syncJob(registry, job.runId, { factory: options.factory }));
        if (result.metricsWritten > 0 || result.status.state !== before.state || result.status.message !== before.message)
          options.onEvent({ kind: 'cluster-job', result });
      } catch (error) {
        options.onEvent({ kind: 'cluster-job-error', runId: job.runId, message: (error as Error).message });
      }
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = poll().finally(schedule);
    }, interval);
  };
  inFlight = poll().finally(schedule);
  return {
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
    pollNow: () => {
      inFlight = inFlight.then(poll);
      return inFlight;
    },
  };
}

/** The "open log" view of a job, as the workbench contract defines it. */
export type JobLogTail = ClusterJobLog;

const decodeTail = (bytes: Uint8Array, cut: boolean): string => {
  const text = new TextDecoder().decode(bytes);
  // A tail that starts inside a line shows from the next whole line.
  return cut && text.includes('\n') ? text.slice(text.indexOf('\n') + 1) : text;
};

/**
 * The last `maxBytes` of a job's stdout file (slurm-<id>.out, torchrun.out) and of the engine log
 * read so far, for the UI's "open log". Two SSH round trips; nothing is merged into the registry.
 */
export async function readJobLog(
  registry: Registry,
  runIdOrJobId: string,
  options: { factory?: BackendFactory; maxBytes?: number } = {},
): Promise<JobLogTail> {
  const store = new ClusterStore(registry);
  const job = store.requireJob(runIdOrJobId);
  const settings = store.requireCluster(job.cluster);
  const maxBytes = options.maxBytes ?? 32 * 1024;
  const outputFile = settings.kind === 'slurm' ? `slurm-${job.jobId}.out` : 'torchrun.out';
  const output = await runRemote(
    targetOf(settings),
    `cd ${remotePath(job.remoteDir)} && tail -c ${maxBytes} ${remoteQuote(outputFile)} 2>/dev/null`,
    { timeoutSeconds: settings.commandTimeoutSeconds, what: `reading ${outputFile}` },
  );
  const offsets = store.logOffsets(job.runId);
  const engineLogFile = orderLogFiles([...offsets.keys()]).at(-1) ?? null;
  let engineLog = '';
  if (engineLogFile) {
    const end = offsets.get(engineLogFile)!.offset;
    const start = Math.max(0, end - maxBytes);
    const backend = (options.factory ?? createBackend)(settings);
    engineLog = decodeTail(await backend.readFrom(`${job.remoteDir}/${engineLogFile}`, start, end - start), start > 0);
  }
  const outputBytes = new Uint8Array(output.stdout);
  return {
    runId: job.runId,
    jobId: job.jobId,
    outputFile,
    output: decodeTail(outputBytes, outputBytes.length >= maxBytes),
    engineLogFile,
    engineLog,
  };
}
