// Tracking against a backend whose "cluster" is a local folder: log bytes arrive in small chunks
// that cut lines, a resumed run starts a second file, and the registry must hold exactly what a
// fresh reader of the finished logs would (mergeLogs), whatever the chunking.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClusterBackend, WorkDirSnapshot } from '../../core/cluster/backend.ts';
import { checkpointKind } from '../../core/cluster/backend.ts';
import { mergeLogs, parseLogChunk } from '../../core/cluster/log-parser.ts';
import { ClusterStore, parseClusterSettings } from '../../core/cluster/store.ts';
import { syncJob } from '../../core/cluster/tracking.ts';
import type { EngineFlavor, JobStatus } from '../../core/protocol/cluster.ts';
import { Registry } from '../../core/registry/registry.ts';

const root = mkdtempSync(join(tmpdir(), 'vswin-tracking-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A backend over a local folder, with a job state the test sets. */
class FolderBackend implements ClusterBackend {
  readonly settings = parseClusterSettings({ name: 'folder', kind: 'slurm', host: 'nowhere' });
  state: JobStatus = {
    state: 'running',
    schedulerState: 'RUNNING',
    reason: null,
    exitCode: null,
    signal: null,
    nodes: 'n1',
    elapsedSeconds: 10,
    message: null,
  };
  preflight = async () => ({ cluster: 'folder', ok: true, checks: [] });
  upload = async () => '';
  submit = async () => '1';
  status = async () => this.state;
  cancel = async () => undefined;
  readFrom = async (path: string, offset: number, maxBytes: number) =>
    new Uint8Array(readFileSync(path).subarray(offset, offset + maxBytes));
  listCheckpoints = async () => [];
  pull = async () => undefined;
  outputTail = async () => 'last line of the output';
  async snapshot(
    _jobId: string,
    remoteDir: string,
    flavor: EngineFlavor,
    offsets: ReadonlyMap<string, number>,
    maxBytes = 1000,
  ): Promise<WorkDirSnapshot> {
    const work = join(remoteDir, 'work');
    const logs: string[] = [];
    const walk = (dir: string, prefix: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path, `${prefix}${name}/`);
        else if (flavor === '0.x' ? name.endsWith('.log.json') : name === 'scalars.json') logs.push(`${prefix}${name}`);
      }
    };
    if (existsSync(work)) walk(work, 'work/');
    const chunks = logs.flatMap((path) => {
      const bytes = readFileSync(join(remoteDir, path));
      const offset = offsets.get(path) ?? 0;
      return bytes.length > offset ? [{ path, offset, bytes: new Uint8Array(bytes.subarray(offset, offset + maxBytes)) }] : [];
    });
    const checkpoints = existsSync(work)
      ? readdirSync(work)
          .filter((name) => name.endsWith('.pth'))
          .map((name) => ({ name, path: join(work, name), bytes: 1, modifiedAt: '', ...checkpointKind(name) }))
      : [];
    return {
      status: this.state,
      exists: existsSync(remoteDir),
      logFiles: logs.map((path) => ({ path, bytes: statSync(join(remoteDir, path)).size })),
      chunks,
      checkpoints,
    };
  }
}

function setup(name: string, flavor: EngineFlavor, itersPerEpoch: number) {
  const home = join(root, name);
  const remoteDir = join(home, 'remote');
  mkdirSync(join(remoteDir, 'work'), { recursive: true });
  const registry = Registry.open(home);
  const store = new ClusterStore(registry);
  store.saveCluster({ name: 'folder', kind: 'slurm', host: 'nowhere' });
  registry.createRun({
    id: name,
    name,
    config: {},
    configPath: null,
    datasetId: null,
    projectVersion: '0',
    backend: 'slurm:folder',
    seed: 0,
    gitCommit: null,
    runDir: home,
    epochs: 3,
  });
  const time = new Date().toISOString();
  store.addJob({
    runId: name,
    cluster: 'folder',
    jobId: '1',
    attempt: 1,
    flavor,
    remoteDir,
    gpus: 1,
    nodes: 1,
    itersPerEpoch,
    loggedLrToBase: 10,
    state: 'submitted',
    schedulerState: 'SUBMITTED',
    reason: null,
    exitCode: null,
    message: null,
    submittedAt: time,
    updatedAt: time,
    finishedAt: null,
  });
  return { registry, remoteDir };
}

const goldenDir = new URL('./golden/', import.meta.url);
const golden = (path: string) => readFileSync(new URL(path, goldenDir), 'utf8');

describe('syncJob over small chunks', () => {
  for (const [flavor, files] of [
    ['0.x', ['0x/20240301_101500.log.json', '0x/20240301_113000.log.json']],
    ['1.x', ['1x/20240301_101500/vis_data/scalars.json', '1x/20240301_113000/vis_data/scalars.json']],
  ] as const) {
    it(`${flavor}: lines cut across polls and a resumed file give the same rows as one full read`, async () => {
      const { registry, remoteDir } = setup(`chunks-${flavor}`, flavor, 4);
      const backend = new FolderBackend();
      const factory = () => backend;
      const target = (path: string) => join(remoteDir, 'work', path.replace(/^[01]x\//, ''));
      // The first run's log grows while we poll, ending in a line the engine never finished.
      const first = golden(files[0]);
      mkdirSync(join(target(files[0]), '..'), { recursive: true });
      let problems = 0;
      for (let at = 0; at < first.length; at += 50) {
        appendFileSync(target(files[0]), first.slice(at, at + 50));
        for (let poll = 0; poll < 3; poll++)
          problems += (await syncJob(registry, `chunks-${flavor}`, { factory, maxBytes: 37 })).problems.length;
      }
      // The resumed run's file appears.
      mkdirSync(join(target(files[1]), '..'), { recursive: true });
      appendFileSync(target(files[1]), golden(files[1]));
      for (let poll = 0; poll < 12; poll++)
        problems += (await syncJob(registry, `chunks-${flavor}`, { factory, maxBytes: 37 })).problems.length;
      backend.state = { ...backend.state, state: 'completed', schedulerState: 'COMPLETED', exitCode: 0 };
      const last = await syncJob(registry, `chunks-${flavor}`, { factory, maxBytes: 37 });

      const context = { flavor, itersPerEpoch: 4, loggedLrToBase: 10 };
      const expected = mergeLogs(
        files.map((path) => ({ path, records: parseLogChunk(flavor, new Uint8Array(Buffer.from(golden(path))), path).records })),
        context,
      );
      const stored = registry.metrics(`chunks-${flavor}`).filter((row) => !(row.scope === 'epoch' && row.split === 'train'));
      const key = (row: { scope: string; split: string; step: number; name: string }) =>
        `${row.scope}|${row.split}|${row.step}|${row.name}`;
      expect(new Map(stored.map((row) => [key(row), row.value]))).toEqual(new Map(expected.map((row) => [key(row), row.value])));
      // The first run's superseded lines leave nothing behind (their extra metric included).
      expect(stored.some((row) => row.name === 'loss_aux')).toBe(false);
      // The damaged line of the 0.x golden file is reported once, with its line number.
      expect(problems).toBe(flavor === '0.x' ? 1 : 0);
      expect(last.status.state).toBe('completed');
      expect(registry.getRun(`chunks-${flavor}`)).toMatchObject({ status: 'completed', epochsDone: 2 });
      // The run started when the job did (Slurm's elapsed time before the first running poll), once.
      const started = Date.parse(registry.getRun(`chunks-${flavor}`)!.startedAt!);
      expect(started).toBeLessThanOrEqual(Date.now() - 10_000);
      expect(started).toBeGreaterThan(Date.now() - 120_000);
      // Finished epochs get an epoch-level train loss (mean of the logged ones).
      expect(
        registry
          .metrics(`chunks-${flavor}`)
          .some((row) => row.scope === 'epoch' && row.split === 'train' && row.name === 'loss' && row.step === 1),
      ).toBe(true);
      registry.close();
    });
  }

  it('reports a failed job with its last output, once', async () => {
    const { registry } = setup('failed', '0.x', 4);
    const backend = new FolderBackend();
    backend.state = {
      ...backend.state,
      state: 'failed',
      schedulerState: 'FAILED',
      exitCode: 3,
      message: 'FAILED with exit code 3',
    };
    const result = await syncJob(registry, 'failed', { factory: () => backend });
    expect(result.status.message).toBe(
      'FAILED with exit code 3; the job wrote no engine log; last output: last line of the output',
    );
    expect(registry.getRun('failed')).toMatchObject({ status: 'failed', message: result.status.message });
    expect(new ClusterStore(registry).latestJob('failed')).toMatchObject({ state: 'failed', exitCode: 3 });
    // Never ran (no log): no start time is made up.
    expect(registry.getRun('failed')!.startedAt).toBeNull();
    registry.close();
  });
});
