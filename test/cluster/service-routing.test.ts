// The workbench service against a real one-node Slurm + sshd (local-cluster.ts) and the stand-in
// engine: a WebSocket client adds the cluster, checks it, previews and submits a launch, and
// receives the job watcher's events while the job runs; the run's curves come from runs.curves
// before it ends; cancel, the log view and a pull reach the registry's checkpoint list; after a
// restart of the service the watcher re-attaches a running job.
// Skipped, with the reason printed, only when the daemons cannot start here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchWorkbench, type LaunchedWorkbench } from '../../core/host/service/launch.ts';
import { recognizerKeys } from '../../core/model/keys.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { modelConfigOf, resolveRunConfig } from '../../core/train/run-config.ts';
import type {
  ClusterEvent,
  ClusterJob,
  LaunchPreview,
  PreflightReport,
  PulledCheckpoint,
  SyncResult,
} from '../../core/protocol/cluster.ts';
import type {
  CheckpointSummary,
  ClusterJobLog,
  ClusterJobRow,
  RunCurves,
  ServiceMessage,
} from '../../core/protocol/workbench.ts';
import { clusterUnavailableReason, startLocalCluster, writeStandInDataset, type LocalCluster } from './local-cluster.ts';

const unavailable = clusterUnavailableReason();
if (unavailable) console.warn(`[cluster service routing] skipped: ${unavailable}`);

const engineDir = fileURLToPath(new URL('./stand-in/engine', import.meta.url));

describe.skipIf(unavailable !== null)('the workbench service drives a real Slurm', () => {
  let cluster: LocalCluster;
  let work: string;
  let launched: LaunchedWorkbench;
  let socket: WebSocket;
  let nextId = 1;
  const clusterEvents: { event: ClusterEvent; at: number }[] = [];
  let config: Record<string, unknown>;

  function call<T>(command: string, args: unknown): Promise<T> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (data: WebSocket.RawData) => {
        const message = JSON.parse(String(data)) as ServiceMessage;
        if (message.kind !== 'result' || message.id !== id) return;
        socket.off('message', onMessage);
        if (message.ok) resolve(message.result as T);
        else reject(new Error(message.error));
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify({ id, command, args }));
    });
  }

  async function waitForEvent(what: string, seconds: number, match: (result: SyncResult) => boolean): Promise<SyncResult> {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      const found = clusterEvents.find(({ event }) => event.kind === 'cluster-job' && match(event.result));
      if (found && found.event.kind === 'cluster-job') return found.event.result;
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    const seen = clusterEvents.map(({ event }) =>
      event.kind === 'cluster-job' ? `${event.result.job.runId}:${event.result.status.state}` : `error ${event.message}`,
    );
    throw new Error(`no cluster event for ${what} within ${seconds} s; seen: ${seen.join(', ')}`);
  }

  /** Starts the service on the test's home and connects a client that records the cluster events. */
  async function start(): Promise<void> {
    launched = await launchWorkbench({
      home: join(work, 'home'),
      demo: false,
      backend: 'cpu',
      staticDir: join(work, 'no-ui'),
      clusterPollSeconds: 0.5,
    });
    socket = await new Promise<WebSocket>((resolveSocket, reject) => {
      const client = new WebSocket(`ws://127.0.0.1:${launched.service.port}/ws?token=${launched.service.token}`);
      client.on('open', () => resolveSocket(client));
      client.on('error', reject);
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as ServiceMessage;
      if (message.kind === 'event' && message.event.kind === 'cluster')
        clusterEvents.push({ event: message.event.event, at: Date.now() });
    });
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vswin-service-routing-'));
    const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    cluster = await startLocalCluster();
    writeStandInDataset(work);
    config = {
      extends: 'k400-swin-t',
      model: { variant: 'micro', num_classes: 4 },
      data: { train_ann: join(work, 'train.txt'), val_ann: join(work, 'val.txt'), root: join(work, 'videos') },
      epochs: 2,
      batch_size: 1,
      update_interval: 1,
      evaluation: { interval: 1 },
    };
    const keys = [...recognizerKeys(parseModelConfig(modelConfigOf(resolveRunConfig(config, work))))].map(([key, spec]) => [
      key,
      spec.shape,
    ]);
    writeFileSync(join(work, 'keys.json'), JSON.stringify(keys));
    await start();
    await call('cluster.save', {
      name: 'local',
      kind: 'slurm',
      host: cluster.host,
      sshConfigFile: cluster.sshConfigFile,
      partition: cluster.partition,
      engineDir,
      python,
      remoteRoot: join(work, 'remote'),
      flavor: '0.x',
      cpusPerTask: 1,
      connectTimeoutSeconds: 5,
      commandTimeoutSeconds: 20,
      environment: { VSWIN_STANDIN_KEYS: join(work, 'keys.json') },
    });
  }, 60_000);

  afterAll(async () => {
    socket?.close();
    await launched?.close();
    cluster?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 30_000);

  it('checks, previews, submits and streams the job and its curves to the client', async () => {
    const report = await call<PreflightReport>('cluster.check', { name: 'local', launch: { config, cluster: 'local', gpus: 2 } });
    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(report.checks.map((check) => check.name)).toEqual(
      expect.arrayContaining(['ssh', 'scheduler', 'partition', 'gpus', 'data-root', 'annotations']),
    );

    const launch = {
      config,
      cluster: 'local',
      gpus: 2,
      name: 'routed',
      logInterval: 1,
      environment: { VSWIN_STANDIN_SLEEP: '0.4' },
    };
    const preview = await call<LaunchPreview>('cluster.preview', launch);
    const sbatch = preview.files.find((file) => file.path === 'job.sbatch')?.content ?? '';
    expect(sbatch).toMatch(/#SBATCH --gres=gpu:2/);
    // The per-run environment of the launch form reaches the job script.
    expect(sbatch).toMatch(/export VSWIN_STANDIN_SLEEP="0\.4"/);
    expect(preview.manifest).toMatchObject({ gpus: 2, nodes: 1, itersPerEpoch: 8, flavor: '0.x' });

    // With the preview's run id, the files submitted are the files shown.
    const job = await call<ClusterJob>('cluster.submit', { ...launch, runId: preview.runId });
    expect(job).toMatchObject({
      runId: preview.runId,
      remoteDir: preview.remoteDir,
      cluster: 'local',
      state: 'submitted',
      gpus: 2,
    });
    await expect(call('cluster.submit', { ...launch, runId: preview.runId })).rejects.toThrow(
      `cluster.submit: runId: run "${preview.runId}" exists already`,
    );
    const running = await waitForEvent(
      'metrics while running',
      40,
      (r) => r.job.runId === job.runId && r.status.state === 'running' && r.metricsWritten > 0,
    );
    expect(running.status.elapsedSeconds).not.toBeNull();
    // The curves the Runs page overlays, read while the job still runs.
    const [curves] = await call<RunCurves[]>('runs.curves', { runIds: [job.runId] });
    const livePoints = curves.series['iter:train:loss']?.length ?? 0;
    expect(livePoints).toBeGreaterThan(0);
    expect(livePoints).toBeLessThan(16);
    const row = (await call<ClusterJobRow[]>('jobs.list', {})).find((entry) => entry.runId === job.runId)!;
    expect(row).toMatchObject({ runName: 'routed', gpus: 2, epochs: 2 });
    expect(row.lastLoss).toBeGreaterThan(0);
    expect(row.lastIteration).toBeGreaterThanOrEqual(0);

    await waitForEvent('completion', 40, (r) => r.job.runId === job.runId && r.status.state === 'completed');
    const [final] = await call<RunCurves[]>('runs.curves', { runIds: [job.runId] });
    expect(final.series['iter:train:loss']).toHaveLength(16);
    expect(final.series['epoch:val:top1']?.map((point) => point.value)).toEqual([0.2, 0.4]);
    const done = (await call<ClusterJobRow[]>('jobs.list', {})).find((entry) => entry.runId === job.runId)!;
    expect(done).toMatchObject({
      state: 'completed',
      runStatus: 'completed',
      epochsDone: 2,
      lastValTop1: 0.4,
      lastIteration: 15,
    });
    expect(done.checkpoints?.map((checkpoint) => checkpoint.name)).toEqual(
      expect.arrayContaining(['epoch_1.pth', 'epoch_2.pth', 'latest.pth']),
    );

    const log = await call<ClusterJobLog>('jobs.log', { runId: job.runId });
    expect(log.outputFile).toBe(`slurm-${job.jobId}.out`);
    expect(log.output).toMatch(/stand-in: done/);
    expect(log.engineLogFile).toMatch(/^work\/\d{8}_\d{6}\.log\.json$/);
    expect(log.engineLog.trim().split('\n').at(-1)).toMatch(/"mode": "val"/);

    const pulled = await call<PulledCheckpoint>('jobs.pull', { runId: job.runId, which: 'best' });
    expect(pulled.remote.name).toBe('best_top1_acc_epoch_2.pth');
    const listed = (await call<CheckpointSummary[]>('runs.checkpoints', {})).find(
      (checkpoint) => checkpoint.path === pulled.localPath,
    );
    expect(listed).toMatchObject({ runId: job.runId, runName: 'routed', epoch: 2, reasons: ['best'], metric: 0.4 });
  }, 120_000);

  it('cancels a running job, and every client hears of it at once', async () => {
    const job = await call<ClusterJob>('cluster.submit', {
      config,
      cluster: 'local',
      gpus: 1,
      name: 'to-cancel',
      check: false,
      environment: { VSWIN_STANDIN_SLEEP: '5' },
    });
    await waitForEvent('running', 30, (r) => r.job.runId === job.runId && r.status.state === 'running');
    const before = clusterEvents.length;
    const result = await call<SyncResult>('jobs.cancel', { runId: job.runId });
    expect(['cancelled', 'running']).toContain(result.status.state);
    expect(
      clusterEvents.slice(before).some(({ event }) => event.kind === 'cluster-job' && event.result.job.runId === job.runId),
    ).toBe(true);
    await waitForEvent('cancelled', 30, (r) => r.job.runId === job.runId && r.status.state === 'cancelled');
    const row = (await call<ClusterJobRow[]>('jobs.list', {})).find((entry) => entry.runId === job.runId)!;
    expect(row).toMatchObject({ state: 'cancelled', runStatus: 'stopped' });
    expect(clusterEvents.filter(({ event }) => event.kind === 'cluster-job-error')).toEqual([]);
  }, 60_000);

  it('re-attaches a running job after the service restarts, and its curves continue without gaps or doubles', async () => {
    const job = await call<ClusterJob>('cluster.submit', {
      config,
      cluster: 'local',
      gpus: 2,
      name: 'restarted',
      logInterval: 1,
      check: false,
      environment: { VSWIN_STANDIN_SLEEP: '0.5' },
    });
    await waitForEvent(
      'metrics before the restart',
      30,
      (r) => r.job.runId === job.runId && r.status.state === 'running' && r.metricsWritten > 0,
    );
    socket.close();
    await launched.close();
    clusterEvents.length = 0;
    await start();
    await waitForEvent('completion after the restart', 40, (r) => r.job.runId === job.runId && r.status.state === 'completed');
    const [curves] = await call<RunCurves[]>('runs.curves', { runIds: [job.runId] });
    // Curve points count iterations from 1 (core/app/runs.ts).
    expect(curves.series['iter:train:loss']?.map((point) => point.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect((await call<ClusterJobRow[]>('jobs.list', {})).find((entry) => entry.runId === job.runId)).toMatchObject({
      state: 'completed',
      epochsDone: 2,
    });
  }, 90_000);
});
