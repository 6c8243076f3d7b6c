import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, newRunId, Registry, toCsv } from '../../core/registry/registry.ts';

const homes: string[] = [];
function home(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vswin-registry-'));
  homes.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of homes.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const newRun = (id: string, runDir: string) => ({
  id,
  name: 'test run',
  config: { epochs: 2, note: 'a "quoted", value' },
  configPath: null,
  datasetId: null,
  projectVersion: '0.1.0',
  backend: 'cpu',
  seed: 7,
  gitCommit: null,
  runDir,
  epochs: 2,
});

describe('run registry', () => {
  it('applies the numbered migrations once, in WAL mode', () => {
    const dir = home();
    const registry = Registry.open(dir);
    expect(registry.schemaVersion).toBe(loadMigrations().length);
    expect(registry.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = (
      registry.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]
    ).map((t) => t.name);
    expect(tables).toEqual([
      'checkpoints',
      'cluster_jobs',
      'cluster_logs',
      'clusters',
      'datasets',
      'evaluations',
      'metrics',
      'predictions',
      'runs',
      'skipped_samples',
    ]);
    registry.close();
    // Re-opening does not re-run migrations (they would fail on existing tables).
    const again = Registry.open(dir);
    expect(again.schemaVersion).toBe(loadMigrations().length);
    again.close();
  });

  it('refuses a registry from a newer workbench with a clear message', () => {
    const dir = home();
    Registry.open(dir).close();
    const raw = new Database(join(dir, 'registry.sqlite'));
    raw.pragma('user_version = 99');
    raw.close();
    expect(() => Registry.open(dir)).toThrow(/schema version 99, newer than this workbench knows/);
  });

  it('stores runs, metrics, checkpoints, evaluations and predictions, and exports CSV', () => {
    const dir = home();
    const registry = Registry.open(dir);
    const datasetId = registry.upsertDataset({
      name: 'demo',
      root: '/d',
      trainAnn: '/d/train.txt',
      valAnn: '/d/val.txt',
      classNames: ['a', 'b'],
      numClasses: 2,
    });
    expect(
      registry.upsertDataset({
        name: 'demo2',
        root: '/d',
        trainAnn: '/d/train.txt',
        valAnn: '/d/val.txt',
        classNames: ['a', 'b'],
        numClasses: 2,
      }),
    ).toBe(datasetId);
    const id = newRunId();
    expect(id).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}$/);
    registry.createRun({ ...newRun(id, join(dir, 'runs', id)), datasetId });
    registry.markRunning(id, 'cpu');
    registry.recordProgress(id, 0, 2, [
      { scope: 'iteration', split: 'train', step: 0, epoch: 0, name: 'loss', value: 1.5 },
      { scope: 'iteration', split: 'train', step: 1, epoch: 0, name: 'loss', value: 1.25 },
    ]);
    registry.recordProgress(id, 1, 2, [{ scope: 'epoch', split: 'val', step: 1, epoch: 0, name: 'top1', value: 0.5 }]);
    const checkpointId = registry.addCheckpoint({
      runId: id,
      epoch: 1,
      iteration: 2,
      path: '/x/epoch_1.safetensors',
      statePath: '/x/epoch_1.state.safetensors',
      reasons: ['last', 'best'],
      metricName: 'top1',
      metricValue: 0.5,
    });
    registry.markCheckpointDeleted(checkpointId);
    expect(registry.checkpoints(id)).toEqual([]);
    expect(registry.checkpoints(id, true)[0].reasons).toEqual(['last', 'best']);
    const evaluationId = registry.addEvaluation({
      runId: id,
      checkpointPath: '/x/epoch_1.safetensors',
      annFile: '/d/val.txt',
      root: '/d',
      report: {
        views: { clips: 4, crops: 3 },
        metrics: { top1: 0.5, top5: 1, meanClassAccuracy: 0.5, count: 2 },
        perClass: { precision: [1, 0], recall: [1, 0], support: [1, 1] },
        confusion: [
          [1, 0],
          [1, 0],
        ],
        classNames: ['a', 'b'],
      },
      predictions: [
        { index: 0, video: 'a/1.mp4', label: 0, topClasses: [0, 1], topScores: [0.9, 0.1] },
        { index: 1, video: 'b/1.mp4', label: 1, topClasses: [0, 1], topScores: [0.6, 0.4] },
      ],
    });
    expect(registry.predictions(evaluationId)[1]).toEqual({
      index: 1,
      video: 'b/1.mp4',
      label: 1,
      topClasses: [0, 1],
      topScores: [0.6, 0.4],
    });
    expect(registry.evaluations(id)[0]).toMatchObject({ clips: 4, crops: 3, top1: 0.5 });
    registry.setStatus(id, 'completed');
    const run = registry.requireRun(id);
    expect(run).toMatchObject({ status: 'completed', epochsDone: 1, iteration: 2, datasetId });
    expect(run.finishedAt).not.toBeNull();

    registry.truncateMetrics(id, 1, 0);
    expect(registry.metrics(id).map((m) => `${m.scope}:${m.step}`)).toEqual(['iteration:0']);

    const files = registry.exportCsv(join(dir, 'export', 'runs.csv'));
    expect(files.map((f) => f.slice(dir.length))).toEqual([
      '/export/runs.csv',
      '/export/runs-metrics.csv',
      '/export/runs-evaluations.csv',
    ]);
    const runsCsv = readFileSync(files[0], 'utf8').split('\n');
    expect(runsCsv[0].split(',').slice(0, 3)).toEqual(['id', 'name', 'status']);
    expect(runsCsv[1]).toContain(`${id},test run,completed`);
    // The config JSON contains quotes and a comma: it must be one quoted cell.
    expect(runsCsv[1]).toContain('"{""epochs"":2,""note"":""a \\""quoted\\"", value""}"');
    expect(readFileSync(files[1], 'utf8')).toBe(`run_id,scope,split,step,epoch,name,value\n${id},iteration,train,1,1,loss,1.5\n`);
    expect(() => registry.requireRun('nope')).toThrow(`no run "nope"`);
    registry.close();
  });

  it('quotes CSV cells only when needed', () => {
    expect(
      toCsv(
        ['a', 'b'],
        [
          [1, 'x,y'],
          [null, 'line\nbreak'],
        ],
      ),
    ).toBe('a,b\n1,"x,y"\n,"line\nbreak"\n');
  });

  it('marks a run whose process was SIGKILLed as interrupted on the next open', async () => {
    const dir = home();
    const registry = Registry.open(dir);
    const id = newRunId();
    registry.createRun(newRun(id, join(dir, 'runs', id)));
    // A real child process owns the run, then dies without a chance to clean up.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('spawn', resolve));
    registry.markRunning(id, 'cpu', child.pid);
    expect(registry.recoverInterrupted()).toEqual([]);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    registry.close();
    const reopened = Registry.open(dir);
    const run = reopened.requireRun(id);
    expect(run.status).toBe('interrupted');
    expect(run.message).toContain(`--resume ${id}`);
    reopened.close();
  });
});
