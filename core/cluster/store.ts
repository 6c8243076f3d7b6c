// Cluster settings and jobs in the run registry's SQLite file (tables from the registry's migration
// 0003-cluster.sql), through the registry's own connection so one transaction covers a job's state
// and its metrics.
import { z } from 'zod';
import type { ClusterJob, ClusterSettings, ClusterSettingsInput, JobState } from '../protocol/cluster.ts';
import type { Registry } from '../registry/registry.ts';

const settingsSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-", starting with a letter or digit'),
    kind: z.enum(['slurm', 'torchrun']),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).nullable().default(null),
    identityFile: z.string().min(1).nullable().default(null),
    sshConfigFile: z.string().min(1).nullable().default(null),
    partition: z.string().min(1).nullable().default(null),
    engineDir: z.string().min(1).default('~/mmaction2'),
    python: z.string().min(1).default('python'),
    remoteRoot: z.string().min(1).default('~/vswin-runs'),
    dataRoot: z.string().min(1).nullable().default(null),
    flavor: z.enum(['0.x', '1.x']).default('1.x'),
    gpusPerNode: z.number().int().min(1).default(8),
    cpusPerTask: z.number().int().min(1).default(4),
    timeLimit: z.string().min(1).nullable().default(null),
    setup: z.array(z.string()).default([]),
    environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a shell variable name'), z.string()).default({}),
    torchrun: z.string().min(1).default('torchrun'),
    decoder: z.enum(['decord', 'pyav', 'opencv']).default('decord'),
    amp: z.boolean().default(true),
    connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
    commandTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();

/** Validates cluster settings, naming each bad field with the value received. */
export function parseClusterSettings(value: unknown, source = 'cluster settings'): ClusterSettings {
  const result = settingsSchema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.join('.') || '(root)';
    const received = issue.path.reduce<unknown>(
      (node, key) => (node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined),
      value,
    );
    const message = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
    return `  ${field}: ${message} (received ${JSON.stringify(received) ?? 'nothing'})`;
  });
  throw new Error(`Invalid ${source}:\n${lines.join('\n')}`);
}

type Row = Record<string, unknown>;
const now = (): string => new Date().toISOString();

export interface LogOffset {
  path: string;
  offset: number;
  lines: number;
  /** Global iteration of the file's first train line; null until one was read. */
  firstStep: number | null;
}

export class ClusterStore {
  private readonly statements;

  constructor(readonly registry: Registry) {
    const db = registry.db;
    this.statements = {
      upsertCluster: db.prepare(
        `INSERT INTO clusters (name, kind, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, settings = excluded.settings, updated_at = excluded.updated_at`,
      ),
      getCluster: db.prepare('SELECT * FROM clusters WHERE name = ?'),
      listClusters: db.prepare('SELECT * FROM clusters ORDER BY name'),
      removeCluster: db.prepare('DELETE FROM clusters WHERE name = ?'),
      insertJob: db.prepare(
        `INSERT INTO cluster_jobs (run_id, attempt, cluster, job_id, flavor, remote_dir, gpus, nodes, iters_per_epoch, logged_lr_to_base, state, scheduler_state, reason, exit_code, message, submitted_at, updated_at, finished_at)
         VALUES (@runId, @attempt, @cluster, @jobId, @flavor, @remoteDir, @gpus, @nodes, @itersPerEpoch, @loggedLrToBase, @state, @schedulerState, @reason, @exitCode, @message, @submittedAt, @updatedAt, @finishedAt)`,
      ),
      updateJob: db.prepare(
        'UPDATE cluster_jobs SET state = ?, scheduler_state = ?, reason = ?, exit_code = ?, message = ?, updated_at = ?, finished_at = ? WHERE run_id = ? AND attempt = ?',
      ),
      latestJob: db.prepare('SELECT * FROM cluster_jobs WHERE run_id = ? ORDER BY attempt DESC LIMIT 1'),
      jobsOfRun: db.prepare('SELECT * FROM cluster_jobs WHERE run_id = ? ORDER BY attempt'),
      latestJobs: db.prepare(
        'SELECT j.* FROM cluster_jobs j WHERE j.attempt = (SELECT MAX(attempt) FROM cluster_jobs WHERE run_id = j.run_id) ORDER BY j.submitted_at DESC',
      ),
      findByJobId: db.prepare('SELECT * FROM cluster_jobs WHERE job_id = ? ORDER BY submitted_at DESC LIMIT 1'),
      offsets: db.prepare('SELECT path, offset, lines, first_step AS firstStep FROM cluster_logs WHERE run_id = ?'),
      setOffset: db.prepare(
        'INSERT OR REPLACE INTO cluster_logs (run_id, path, offset, lines, first_step) VALUES (?, ?, ?, ?, ?)',
      ),
    };
  }

  saveCluster(input: ClusterSettingsInput | ClusterSettings): ClusterSettings {
    const settings = parseClusterSettings(input, `cluster "${(input as { name?: unknown }).name ?? '?'}"`);
    const time = now();
    this.statements.upsertCluster.run(settings.name, settings.kind, JSON.stringify(settings), time, time);
    return settings;
  }

  getCluster(name: string): ClusterSettings | null {
    const row = this.statements.getCluster.get(name) as Row | undefined;
    return row ? parseClusterSettings(JSON.parse(row.settings as string), `cluster "${name}" in ${this.registry.file}`) : null;
  }

  requireCluster(name: string): ClusterSettings {
    const settings = this.getCluster(name);
    if (settings) return settings;
    const known = this.listClusters().map((cluster) => cluster.name);
    throw new Error(
      `no cluster "${name}"; ${known.length ? `known clusters: ${known.join(', ')}` : 'add one with `vswin cluster add`'}`,
    );
  }

  listClusters(): ClusterSettings[] {
    return (this.statements.listClusters.all() as Row[]).map((row) =>
      parseClusterSettings(JSON.parse(row.settings as string), `cluster "${row.name}"`),
    );
  }

  removeCluster(name: string): boolean {
    return this.statements.removeCluster.run(name).changes > 0;
  }

  addJob(job: ClusterJob): void {
    this.statements.insertJob.run(job);
  }

  updateJob(
    job: Pick<ClusterJob, 'runId' | 'attempt' | 'state' | 'schedulerState' | 'reason' | 'exitCode' | 'message' | 'finishedAt'>,
  ): void {
    this.statements.updateJob.run(
      job.state,
      job.schedulerState,
      job.reason,
      job.exitCode,
      job.message,
      now(),
      job.finishedAt,
      job.runId,
      job.attempt,
    );
  }

  latestJob(runId: string): ClusterJob | null {
    const row = this.statements.latestJob.get(runId) as Row | undefined;
    return row ? toJob(row) : null;
  }

  /** The run's current job, found by run id or by the scheduler's job id. */
  requireJob(idOrJobId: string): ClusterJob {
    const job =
      this.latestJob(idOrJobId) ??
      (() => {
        const row = this.statements.findByJobId.get(idOrJobId) as Row | undefined;
        return row ? this.latestJob(row.run_id as string) : null;
      })();
    if (job) return job;
    const known = this.listJobs()
      .slice(0, 5)
      .map((entry) => `${entry.runId} (job ${entry.jobId})`);
    throw new Error(
      `no cluster job for "${idOrJobId}" (a run id or a job id); ${known.length ? `recent: ${known.join(', ')}` : 'nothing was submitted yet'}`,
    );
  }

  attempts(runId: string): ClusterJob[] {
    return (this.statements.jobsOfRun.all(runId) as Row[]).map(toJob);
  }

  /** The latest attempt of every cluster run, newest first. */
  listJobs(): ClusterJob[] {
    return (this.statements.latestJobs.all() as Row[]).map(toJob);
  }

  logOffsets(runId: string): Map<string, LogOffset> {
    return new Map((this.statements.offsets.all(runId) as LogOffset[]).map((row) => [row.path, row]));
  }

  setLogOffset(runId: string, offset: LogOffset): void {
    this.statements.setOffset.run(runId, offset.path, offset.offset, offset.lines, offset.firstStep);
  }
}

function toJob(row: Row): ClusterJob {
  return {
    runId: row.run_id as string,
    cluster: row.cluster as string,
    jobId: row.job_id as string,
    attempt: row.attempt as number,
    flavor: row.flavor as ClusterJob['flavor'],
    remoteDir: row.remote_dir as string,
    gpus: row.gpus as number,
    nodes: row.nodes as number,
    itersPerEpoch: row.iters_per_epoch as number,
    loggedLrToBase: row.logged_lr_to_base as number,
    state: row.state as JobState,
    schedulerState: row.scheduler_state as string,
    reason: row.reason as string | null,
    exitCode: row.exit_code as number | null,
    message: row.message as string | null,
    submittedAt: row.submitted_at as string,
    updatedAt: row.updated_at as string,
    finishedAt: row.finished_at as string | null,
  };
}
