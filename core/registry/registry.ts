// The run registry: one SQLite file under the workbench home (better-sqlite3, synchronous). WAL
// keeps readers (the UI, `vswin runs list`) unblocked while a run writes; statements are prepared
// once; batches go through db.transaction; schema changes are numbered .sql migrations tracked in
// PRAGMA user_version. A run whose process died (SIGKILL, power loss) is found on open and marked
// 'interrupted' so it can be resumed.
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { processAlive, writeFileAtomicSync } from '../files/atomic.ts';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CheckpointReason, EvaluationReport, RunStatus, VideoPrediction } from '../protocol/train.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
export const REGISTRY_FILE = 'registry.sqlite';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The numbered migrations, in order; file names are `NNNN-description.sql`. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const match = /^(\d+)-(.+)\.sql$/.exec(file);
      if (!match) throw new Error(`${join(dir, file)}: migration files must be named NNNN-description.sql`);
      return { version: Number(match[1]), name: match[2], sql: readFileSync(join(dir, file), 'utf8') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`${dir}: migration ${m.version} (${m.name}) breaks the sequence; expected version ${i + 1}`);
  });
  return migrations;
}

export interface RunRecord {
  id: string;
  name: string;
  status: RunStatus;
  config: unknown;
  configPath: string | null;
  datasetId: number | null;
  projectVersion: string;
  backend: string;
  seed: number;
  gitCommit: string | null;
  runDir: string;
  host: string | null;
  pid: number | null;
  epochs: number;
  epochsDone: number;
  iteration: number;
  message: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  heartbeatAt: string | null;
}

export interface NewRun {
  id: string;
  name: string;
  config: unknown;
  configPath: string | null;
  datasetId: number | null;
  projectVersion: string;
  backend: string;
  seed: number;
  gitCommit: string | null;
  runDir: string;
  epochs: number;
}

export interface MetricRow {
  scope: 'iteration' | 'epoch';
  split: 'train' | 'val';
  step: number;
  epoch: number;
  name: string;
  value: number | null;
}

export interface RunCurveSet {
  series: Record<string, { step: number; value: number }[]>;
  /** Every stride-th iteration step was kept (1: all of them). */
  stride: number;
}

const finishedStatuses = new Set<RunStatus>(['completed', 'stopped', 'failed', 'interrupted']);

export interface SkippedSampleRecord {
  epoch: number;
  split: 'train' | 'val';
  path: string;
  reason: string;
}

export interface CheckpointRecord {
  id: number;
  runId: string;
  epoch: number;
  iteration: number;
  path: string;
  statePath: string | null;
  reasons: CheckpointReason[];
  metricName: string | null;
  metricValue: number | null;
  createdAt: string;
  deletedAt: string | null;
}

export interface EvaluationRecord {
  id: number;
  runId: string | null;
  checkpointPath: string;
  annFile: string;
  root: string;
  clips: number;
  crops: number;
  top1: number;
  top5: number;
  meanClassAccuracy: number;
  count: number;
  createdAt: string;
}

const now = (): string => new Date().toISOString();

type Row = Record<string, unknown>;

export class Registry {
  readonly db: Database.Database;
  readonly file: string;
  private readonly statements: ReturnType<Registry['prepare']>;
  private readonly curveCache = new Map<string, RunCurveSet>();

  private constructor(file: string) {
    this.file = file;
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable at every checkpoint of the WAL and never corrupts on a process kill.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.statements = this.prepare();
  }

  /** Opens (creating and migrating as needed) the registry of a workbench home folder. */
  static open(home: string): Registry {
    const registry = new Registry(join(home, REGISTRY_FILE));
    registry.recoverInterrupted();
    return registry;
  }

  static openFile(file: string): Registry {
    const registry = new Registry(file);
    registry.recoverInterrupted();
    return registry;
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const migrations = loadMigrations();
    const current = this.schemaVersion;
    const latest = migrations.length;
    if (current > latest) {
      throw new Error(
        `${this.file}: the registry has schema version ${current}, newer than this workbench knows (${latest}); update the workbench`,
      );
    }
    for (const migration of migrations.slice(current)) {
      this.db.transaction(() => {
        this.db.exec(migration.sql);
        this.db.pragma(`user_version = ${migration.version}`);
      })();
    }
  }

  private prepare() {
    const db = this.db;
    return {
      findDataset: db.prepare('SELECT id FROM datasets WHERE root = ? AND train_ann = ? AND val_ann IS ?'),
      insertDataset: db.prepare(
        'INSERT INTO datasets (name, root, train_ann, val_ann, class_names, num_classes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      updateDataset: db.prepare('UPDATE datasets SET name = ?, class_names = ?, num_classes = ? WHERE id = ?'),
      insertRun: db.prepare(
        `INSERT INTO runs (id, name, status, config, config_path, dataset_id, project_version, backend, seed, git_commit, run_dir, epochs, created_at)
         VALUES (@id, @name, 'created', @config, @configPath, @datasetId, @projectVersion, @backend, @seed, @gitCommit, @runDir, @epochs, @createdAt)`,
      ),
      getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
      listRuns: db.prepare('SELECT * FROM runs ORDER BY created_at DESC, id DESC'),
      startRun: db.prepare(
        "UPDATE runs SET status = 'running', host = ?, pid = ?, backend = ?, started_at = COALESCE(started_at, ?), heartbeat_at = ?, finished_at = NULL, message = NULL WHERE id = ?",
      ),
      setStatus: db.prepare('UPDATE runs SET status = ?, message = ?, finished_at = ?, heartbeat_at = ? WHERE id = ?'),
      progress: db.prepare('UPDATE runs SET epochs_done = ?, iteration = ?, heartbeat_at = ? WHERE id = ?'),
      setDataset: db.prepare('UPDATE runs SET dataset_id = ? WHERE id = ?'),
      live: db.prepare("SELECT id, host, pid FROM runs WHERE status IN ('running', 'paused')"),
      interrupt: db.prepare(
        "UPDATE runs SET status = 'interrupted', message = ?, finished_at = NULL WHERE id = ? AND status IN ('running', 'paused')",
      ),
      insertMetric: db.prepare(
        'INSERT OR REPLACE INTO metrics (run_id, scope, split, step, epoch, name, value) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      truncateIterationMetrics: db.prepare("DELETE FROM metrics WHERE run_id = ? AND scope = 'iteration' AND step >= ?"),
      truncateEpochMetrics: db.prepare("DELETE FROM metrics WHERE run_id = ? AND scope = 'epoch' AND step > ?"),
      metrics: db.prepare(
        'SELECT scope, split, step, epoch, name, value FROM metrics WHERE run_id = ? ORDER BY scope, step, split, name',
      ),
      // Summaries and curves read through the primary key (run_id, scope, split, step, name): a prefix
      // seek per run, never a scan of a long run's iteration rows.
      bestValMetric: db.prepare(
        "SELECT MAX(value) AS best FROM metrics WHERE run_id = ? AND scope = 'epoch' AND split = 'val' AND name = ?",
      ),
      bestCheckpointMetric: db.prepare('SELECT MAX(metric_value) AS best FROM checkpoints WHERE run_id = ?'),
      lastIterationStep: db.prepare("SELECT MAX(step) AS last FROM metrics WHERE run_id = ? AND scope = 'iteration'"),
      epochMetrics: db.prepare(
        "SELECT scope, split, step, epoch, name, value FROM metrics WHERE run_id = ? AND scope = 'epoch' ORDER BY step, split, name",
      ),
      iterationCurve: db.prepare(
        "SELECT split, name, step, value FROM metrics WHERE run_id = ? AND scope = 'iteration' AND value IS NOT NULL",
      ),
      // Every k-th step (and the last): filtered inside the primary-key range, no sort, no temporary b-tree.
      iterationCurveDecimated: db.prepare(
        'SELECT split, name, step, value FROM metrics ' +
          "WHERE run_id = ? AND scope = 'iteration' AND value IS NOT NULL AND (step % CAST(? AS INTEGER) = 0 OR step = ?)",
      ),
      insertSkip: db.prepare(
        'INSERT OR REPLACE INTO skipped_samples (run_id, epoch, split, path, reason) VALUES (?, ?, ?, ?, ?)',
      ),
      skips: db.prepare('SELECT epoch, split, path, reason FROM skipped_samples WHERE run_id = ? ORDER BY epoch, split, path'),
      skipCounts: db.prepare(
        'SELECT epoch, split, COUNT(*) AS count FROM skipped_samples WHERE run_id = ? GROUP BY epoch, split ORDER BY epoch, split',
      ),
      lastMetric: db.prepare(
        'SELECT step, value FROM metrics WHERE run_id = ? AND scope = ? AND split = ? AND name = ? AND value IS NOT NULL ORDER BY step DESC LIMIT 1',
      ),
      allMetrics: db.prepare(
        'SELECT run_id, scope, split, step, epoch, name, value FROM metrics ORDER BY run_id, scope, step, split, name',
      ),
      insertCheckpoint: db.prepare(
        'INSERT INTO checkpoints (run_id, epoch, iteration, path, state_path, reasons, metric_name, metric_value, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      checkpoints: db.prepare('SELECT * FROM checkpoints WHERE run_id = ? ORDER BY epoch, id'),
      deleteCheckpoint: db.prepare('UPDATE checkpoints SET deleted_at = ? WHERE id = ?'),
      insertEvaluation: db.prepare(
        `INSERT INTO evaluations (run_id, checkpoint_path, ann_file, root, clips, crops, top1, top5, mean_class_accuracy, count, per_class, confusion, class_names, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertPrediction: db.prepare(
        'INSERT INTO predictions (evaluation_id, video_index, video, label, top_classes, top_scores) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      evaluations: db.prepare('SELECT * FROM evaluations WHERE run_id IS ? ORDER BY id'),
      allEvaluations: db.prepare('SELECT * FROM evaluations ORDER BY id'),
      predictions: db.prepare('SELECT * FROM predictions WHERE evaluation_id = ? ORDER BY video_index'),
    };
  }

  close(): void {
    this.db.close();
  }

  /** Marks runs whose process is gone as interrupted; returns their ids. */
  recoverInterrupted(): string[] {
    const here = hostname();
    const recovered: string[] = [];
    for (const row of this.statements.live.all() as { id: string; host: string | null; pid: number | null }[]) {
      // A run on another machine (shared home folder) cannot be probed; leave it to that machine.
      if (row.host !== here || row.pid === null || row.pid === process.pid || processAlive(row.pid)) continue;
      this.statements.interrupt.run(
        `process ${row.pid} ended without finishing the run (killed or crashed); resume it with --resume ${row.id}`,
        row.id,
      );
      recovered.push(row.id);
    }
    return recovered;
  }

  /** Finds or registers a dataset by its root and annotation files. */
  upsertDataset(dataset: {
    name: string;
    root: string;
    trainAnn: string;
    valAnn: string | null;
    classNames: string[];
    numClasses: number;
  }): number {
    const existing = this.statements.findDataset.get(dataset.root, dataset.trainAnn, dataset.valAnn) as
      { id: number } | undefined;
    const names = JSON.stringify(dataset.classNames);
    if (existing) {
      this.statements.updateDataset.run(dataset.name, names, dataset.numClasses, existing.id);
      return existing.id;
    }
    return Number(
      this.statements.insertDataset.run(
        dataset.name,
        dataset.root,
        dataset.trainAnn,
        dataset.valAnn,
        names,
        dataset.numClasses,
        now(),
      ).lastInsertRowid,
    );
  }

  createRun(run: NewRun): RunRecord {
    this.statements.insertRun.run({ ...run, config: JSON.stringify(run.config), createdAt: now() });
    return this.getRun(run.id) as RunRecord;
  }

  getRun(id: string): RunRecord | null {
    const row = this.statements.getRun.get(id) as Row | undefined;
    return row ? toRun(row) : null;
  }

  /** The run, or an error listing a few known ids. */
  requireRun(id: string): RunRecord {
    const run = this.getRun(id);
    if (run) return run;
    const known = this.listRuns()
      .slice(0, 5)
      .map((r) => r.id);
    throw new Error(
      `no run "${id}" in ${this.file}${known.length ? `; recent runs: ${known.join(', ')}` : ' (the registry is empty)'}`,
    );
  }

  listRuns(): RunRecord[] {
    return (this.statements.listRuns.all() as Row[]).map(toRun);
  }

  setRunDataset(id: string, datasetId: number): void {
    this.statements.setDataset.run(datasetId, id);
  }

  markRunning(id: string, backend: string, pid = process.pid): void {
    const time = now();
    this.statements.startRun.run(hostname(), pid, backend, time, time, id);
  }

  /** Records when a run started elsewhere (a cluster job) began, once; status, host and pid stay as they are. */
  markStarted(id: string, at: string = now()): void {
    this.db.prepare('UPDATE runs SET started_at = COALESCE(started_at, ?) WHERE id = ?').run(at, id);
  }

  setStatus(id: string, status: RunStatus, message: string | null = null): void {
    const time = now();
    const finished = status === 'completed' || status === 'stopped' || status === 'failed' ? time : null;
    this.statements.setStatus.run(status, message, finished, time, id);
  }

  /** Progress, iteration metrics and the heartbeat in one transaction (one fsync-free WAL append). */
  recordProgress(id: string, epochsDone: number, iteration: number, metrics: MetricRow[]): void {
    this.db.transaction(() => {
      for (const m of metrics) this.statements.insertMetric.run(id, m.scope, m.split, m.step, m.epoch, m.name, m.value);
      this.statements.progress.run(epochsDone, iteration, now(), id);
    })();
  }

  /** Forgets metrics recorded after a checkpoint, before a resumed run records them again. */
  truncateMetrics(id: string, fromIteration: number, epochsDone: number): void {
    this.db.transaction(() => {
      this.statements.truncateIterationMetrics.run(id, fromIteration);
      this.statements.truncateEpochMetrics.run(id, epochsDone);
    })();
  }

  metrics(id: string): (MetricRow & { value: number | null })[] {
    return this.statements.metrics.all(id) as MetricRow[];
  }

  /** The epoch-scope metrics of a run (a few rows per epoch), without its iteration rows. */
  epochMetrics(id: string): (MetricRow & { value: number | null })[] {
    return this.statements.epochMetrics.all(id) as MetricRow[];
  }

  /**
   * Each run with its best metric, from indexed aggregates (cost independent of how many iteration
   * rows a run has): the best checkpoint's metric when one was recorded, else the highest validation
   * value of `metricOf(run)`.
   */
  runSummaries(metricOf: (run: RunRecord) => string): { run: RunRecord; best: { name: string; value: number } | null }[] {
    return this.listRuns().map((run) => {
      const name = metricOf(run);
      const fromCheckpoint = (this.statements.bestCheckpointMetric.get(run.id) as { best: number | null }).best;
      const value = fromCheckpoint ?? (this.statements.bestValMetric.get(run.id, name) as { best: number | null }).best;
      return { run, best: value === null ? null : { name, value } };
    });
  }

  /**
   * A run's curves keyed `iter|epoch:split:name`, in step order. Epoch curves come whole; iteration
   * curves of long runs are decimated here to about `maxPoints` points each (every k-th step, and the
   * last one), so a client never receives, nor the service serialises, millions of rows.
   */
  curves(id: string, maxPoints = 2000): RunCurveSet {
    // A finished run's rows no longer change: its decimated curves are computed once per open registry.
    const run = this.getRun(id);
    const key = run && finishedStatuses.has(run.status) ? `${id}\n${maxPoints}\n${run.iteration}\n${run.epochsDone}` : null;
    const cached = key === null ? undefined : this.curveCache.get(key);
    if (cached) return cached;
    const computed = this.computeCurves(id, maxPoints);
    if (key !== null) {
      this.curveCache.set(key, computed);
      if (this.curveCache.size > 32) this.curveCache.delete(this.curveCache.keys().next().value as string);
    }
    return computed;
  }

  private computeCurves(id: string, maxPoints: number): RunCurveSet {
    const series: Record<string, { step: number; value: number }[]> = {};
    for (const row of this.epochMetrics(id))
      if (row.value !== null) (series[`epoch:${row.split}:${row.name}`] ??= []).push({ step: row.step, value: row.value });
    const last = (this.statements.lastIterationStep.get(id) as { last: number | null }).last ?? 0;
    const stride = Math.max(1, Math.ceil((last + 1) / Math.max(1, maxPoints)));
    const rows = (
      stride === 1 ? this.statements.iterationCurve.all(id) : this.statements.iterationCurveDecimated.all(id, stride, last)
    ) as { split: string; name: string; step: number; value: number }[];
    for (const row of rows) (series[`iter:${row.split}:${row.name}`] ??= []).push({ step: row.step, value: row.value });
    for (const [key, points] of Object.entries(series)) if (key.startsWith('iter:')) points.sort((a, b) => a.step - b.step);
    return { series, stride };
  }

  /** Records the samples a loader skipped in one epoch (1-based, as epoch metrics) of a run. */
  addSkippedSamples(runId: string, epoch: number, split: 'train' | 'val', samples: { path: string; reason: string }[]): void {
    if (samples.length === 0) return;
    this.db.transaction(() => {
      for (const sample of samples) this.statements.insertSkip.run(runId, epoch, split, sample.path, sample.reason);
    })();
  }

  skippedSamples(runId: string): SkippedSampleRecord[] {
    return this.statements.skips.all(runId) as SkippedSampleRecord[];
  }

  /** Skipped samples per epoch and split, and the total over the run. */
  skippedCounts(runId: string): { total: number; byEpoch: { epoch: number; split: 'train' | 'val'; count: number }[] } {
    const byEpoch = this.statements.skipCounts.all(runId) as { epoch: number; split: 'train' | 'val'; count: number }[];
    return { total: byEpoch.reduce((sum, row) => sum + row.count, 0), byEpoch };
  }

  /** The latest recorded value of one metric of a run (highest step), or null. */
  lastMetric(
    id: string,
    scope: MetricRow['scope'],
    split: MetricRow['split'],
    name: string,
  ): { step: number; value: number } | null {
    return (this.statements.lastMetric.get(id, scope, split, name) as { step: number; value: number } | undefined) ?? null;
  }

  addCheckpoint(checkpoint: Omit<CheckpointRecord, 'id' | 'createdAt' | 'deletedAt'>): number {
    const info = this.statements.insertCheckpoint.run(
      checkpoint.runId,
      checkpoint.epoch,
      checkpoint.iteration,
      checkpoint.path,
      checkpoint.statePath,
      JSON.stringify(checkpoint.reasons),
      checkpoint.metricName,
      checkpoint.metricValue,
      now(),
    );
    return Number(info.lastInsertRowid);
  }

  checkpoints(runId: string, includeDeleted = false): CheckpointRecord[] {
    const rows = (this.statements.checkpoints.all(runId) as Row[]).map(toCheckpoint);
    return includeDeleted ? rows : rows.filter((c) => c.deletedAt === null);
  }

  markCheckpointDeleted(id: number): void {
    this.statements.deleteCheckpoint.run(now(), id);
  }

  addEvaluation(entry: {
    runId: string | null;
    checkpointPath: string;
    annFile: string;
    root: string;
    report: EvaluationReport;
    predictions: VideoPrediction[];
  }): number {
    return this.db.transaction(() => {
      const { report } = entry;
      const info = this.statements.insertEvaluation.run(
        entry.runId,
        entry.checkpointPath,
        entry.annFile,
        entry.root,
        report.views.clips,
        report.views.crops,
        report.metrics.top1,
        report.metrics.top5,
        report.metrics.meanClassAccuracy,
        report.metrics.count,
        JSON.stringify(report.perClass),
        JSON.stringify(report.confusion),
        JSON.stringify(report.classNames),
        now(),
      );
      const id = Number(info.lastInsertRowid);
      for (const p of entry.predictions)
        this.statements.insertPrediction.run(
          id,
          p.index,
          p.video,
          p.label,
          JSON.stringify(p.topClasses),
          JSON.stringify(p.topScores),
        );
      return id;
    })();
  }

  evaluations(runId: string | null): EvaluationRecord[] {
    return (this.statements.evaluations.all(runId) as Row[]).map(toEvaluation);
  }

  predictions(evaluationId: number): VideoPrediction[] {
    return (this.statements.predictions.all(evaluationId) as Row[]).map((r) => ({
      index: r.video_index as number,
      video: r.video as string,
      label: r.label as number,
      topClasses: JSON.parse(r.top_classes as string),
      topScores: JSON.parse(r.top_scores as string),
    }));
  }

  /**
   * Writes runs, metrics and evaluations as CSV: `out` gets the runs, `<stem>-metrics.csv` and
   * `<stem>-evaluations.csv` beside it. Each file is written atomically. Returns the paths.
   */
  exportCsv(out: string): string[] {
    const stem = out.endsWith('.csv') ? out.slice(0, -4) : out;
    const runsFile = out.endsWith('.csv') ? out : `${out}.csv`;
    const runs = this.listRuns();
    const runColumns = [
      'id',
      'name',
      'status',
      'epochs',
      'epochsDone',
      'iteration',
      'backend',
      'projectVersion',
      'seed',
      'gitCommit',
      'createdAt',
      'startedAt',
      'finishedAt',
      'runDir',
      'message',
      'config',
    ] as const;
    const runRows = runs.map((r) => runColumns.map((c) => (c === 'config' ? JSON.stringify(r.config) : r[c])));
    // People read iterations and epochs from 1 (core/app/runs.ts: the same encoding as the curves and the Runs page's CSV).
    const metricRows = (this.statements.allMetrics.all() as Row[]).map((m) => [
      m.run_id,
      m.scope,
      m.split,
      m.scope === 'iteration' ? (m.step as number) + 1 : m.step,
      (m.epoch as number) + 1,
      m.name,
      m.value,
    ]);
    const evaluationRows = (this.statements.allEvaluations.all() as Row[]).map((e) => [
      e.id,
      e.run_id,
      e.checkpoint_path,
      e.ann_file,
      `${e.clips}x${e.crops}`,
      e.top1,
      e.top5,
      e.mean_class_accuracy,
      e.count,
      e.created_at,
    ]);
    const files: [string, string[], unknown[][]][] = [
      [runsFile, [...runColumns], runRows],
      [`${stem}-metrics.csv`, ['run_id', 'scope', 'split', 'step', 'epoch', 'name', 'value'], metricRows],
      [
        `${stem}-evaluations.csv`,
        ['id', 'run_id', 'checkpoint', 'ann_file', 'views', 'top1', 'top5', 'mean_class_accuracy', 'count', 'created_at'],
        evaluationRows,
      ],
    ];
    for (const [file, header, rows] of files) writeFileAtomicSync(file, toCsv(header, rows));
    return files.map(([file]) => file);
  }
}

export function toCsv(header: string[], rows: unknown[][]): string {
  const cell = (value: unknown): string => {
    if (value === null || value === undefined) return '';
    const text = String(value);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\n') + '\n';
}

function toRun(r: Row): RunRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    status: r.status as RunStatus,
    config: JSON.parse(r.config as string),
    configPath: r.config_path as string | null,
    datasetId: r.dataset_id as number | null,
    projectVersion: r.project_version as string,
    backend: r.backend as string,
    seed: r.seed as number,
    gitCommit: r.git_commit as string | null,
    runDir: r.run_dir as string,
    host: r.host as string | null,
    pid: r.pid as number | null,
    epochs: r.epochs as number,
    epochsDone: r.epochs_done as number,
    iteration: r.iteration as number,
    message: r.message as string | null,
    createdAt: r.created_at as string,
    startedAt: r.started_at as string | null,
    finishedAt: r.finished_at as string | null,
    heartbeatAt: r.heartbeat_at as string | null,
  };
}

function toCheckpoint(r: Row): CheckpointRecord {
  return {
    id: r.id as number,
    runId: r.run_id as string,
    epoch: r.epoch as number,
    iteration: r.iteration as number,
    path: r.path as string,
    statePath: r.state_path as string | null,
    reasons: JSON.parse(r.reasons as string),
    metricName: r.metric_name as string | null,
    metricValue: r.metric_value as number | null,
    createdAt: r.created_at as string,
    deletedAt: r.deleted_at as string | null,
  };
}

function toEvaluation(r: Row): EvaluationRecord {
  return {
    id: r.id as number,
    runId: r.run_id as string | null,
    checkpointPath: r.checkpoint_path as string,
    annFile: r.ann_file as string,
    root: r.root as string,
    clips: r.clips as number,
    crops: r.crops as number,
    top1: r.top1 as number,
    top5: r.top5 as number,
    meanClassAccuracy: r.mean_class_accuracy as number,
    count: r.count as number,
    createdAt: r.created_at as string,
  };
}

/** A sortable, readable run id: UTC time plus 4 random hex digits. */
export function newRunId(date = new Date()): string {
  const stamp = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const suffix = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0');
  return `${stamp}-${suffix}`;
}

/** The workbench home: explicit option, else VSWIN_HOME, else ~/.vswin. */
export function workbenchHome(option?: string): string {
  if (option) return option;
  if (process.env.VSWIN_HOME) return process.env.VSWIN_HOME;
  return join(process.env.HOME ?? process.cwd(), '.vswin');
}
