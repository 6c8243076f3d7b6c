// End to end on a real one-node Slurm + sshd on 127.0.0.1 (local-cluster.ts), with the stand-in
// training script (stand-in/engine/tools/train.py) in place of mmaction2. Skipped, with the reason
// printed, only when the daemons cannot start here (not root, packages missing).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStore } from '../../core/cluster/store.ts';
import { ClusterCommandHandler, startClusterWatcher } from '../../core/cluster/service.ts';
import {
  cancelJob,
  checkCluster,
  prepareSubmission,
  pullCheckpoint,
  resumeJob,
  submitRun,
  syncJob,
  type SyncDetails,
} from '../../core/cluster/tracking.ts';
import { RemoteError } from '../../core/cluster/ssh.ts';
import { recognizerKeys } from '../../core/model/keys.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { loadCheckpoint } from '../../core/model/weights/checkpoint.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';
import { initBackend } from '../../core/engine/backend.ts';
import { tf } from '../../core/engine/tf.ts';
import { Registry } from '../../core/registry/registry.ts';
import { readCheckpointInfo } from '../../core/host/service/inference.ts';
import { modelConfigOf, resolveRunConfig, type RunConfig } from '../../core/train/run-config.ts';
import type { ClusterEvent, ClusterSettingsInput, JobState } from '../../core/protocol/cluster.ts';
import { finishedJobStates } from '../../core/protocol/cluster.ts';
import { clusterUnavailableReason, startLocalCluster, writeStandInDataset, type LocalCluster } from './local-cluster.ts';

const unavailable = clusterUnavailableReason();
if (unavailable) console.warn(`[cluster integration] skipped: ${unavailable}`);

const engineDir = fileURLToPath(new URL('./stand-in/engine', import.meta.url));

describe.skipIf(unavailable !== null)('Slurm over SSH with the stand-in engine', () => {
  let cluster: LocalCluster;
  let work: string;
  let registry: Registry;
  let store: ClusterStore;
  let baseConfig: RunConfig;
  let python: string;

  const settings = (overrides: Partial<ClusterSettingsInput> & { name: string }): ClusterSettingsInput => ({
    kind: 'slurm',
    host: cluster.host,
    sshConfigFile: cluster.sshConfigFile,
    partition: cluster.partition,
    engineDir,
    python,
    remoteRoot: join(work, 'remote'),
    dataRoot: join(work, 'videos'),
    flavor: '0.x',
    gpusPerNode: 8,
    cpusPerTask: 1,
    connectTimeoutSeconds: 5,
    commandTimeoutSeconds: 20,
    environment: { VSWIN_STANDIN_KEYS: join(work, 'keys.json') },
    ...overrides,
  });

  /** Polls a job until `done` holds for the result; bounded. */
  async function pollUntil(runId: string, seconds: number, done: (result: SyncDetails) => boolean): Promise<SyncDetails[]> {
    const seen: SyncDetails[] = [];
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      const result = await syncJob(registry, runId, { noLogWarningSeconds: 2 });
      seen.push(result);
      if (done(result)) return seen;
      await new Promise((resolveWait) => setTimeout(resolveWait, 400));
    }
    throw new Error(
      `run ${runId} did not reach the expected state within ${seconds} s; states seen: ${[...new Set(seen.map((r) => r.status.state))].join(' -> ')}; last message: ${seen.at(-1)?.status.message}`,
    );
  }

  const states = (seen: SyncDetails[]): JobState[] =>
    seen.map((r) => r.status.state).filter((state, i, all) => state !== all[i - 1]);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vswin-cluster-test-'));
    python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    cluster = await startLocalCluster();
    writeStandInDataset(work);
    baseConfig = resolveRunConfig(
      {
        extends: 'k400-swin-t',
        model: { variant: 'micro', num_classes: 4 },
        data: { train_ann: 'train.txt', val_ann: 'val.txt', root: 'videos' },
        epochs: 3,
        batch_size: 1,
        update_interval: 1,
        evaluation: { interval: 1 },
      },
      work,
    );
    const keys = [...recognizerKeys(parseModelConfig(modelConfigOf(baseConfig)))].map(([key, spec]) => [key, spec.shape]);
    writeFileSync(join(work, 'keys.json'), JSON.stringify(keys));
    registry = Registry.open(join(work, 'home'));
    store = new ClusterStore(registry);
    store.saveCluster(settings({ name: 'local' }));
    await initBackend('cpu');
  }, 60_000);

  afterAll(() => {
    registry?.close();
    cluster?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 30_000);

  it('preflight passes every check on the local cluster', async () => {
    const prepared = prepareSubmission(store, { config: baseConfig, configPath: null, cluster: 'local', gpus: 1 });
    const report = await checkCluster(store, 'local', prepared);
    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(report.checks.map((check) => check.name).sort()).toEqual([
      'annotations',
      'base-config',
      'data-root',
      'decoder',
      'engine',
      'gpus',
      'partition',
      'scheduler',
      'ssh',
    ]);
    expect(report.checks.find((check) => check.name === 'gpus')?.detail).toMatch(/8 GPU/);
    // The engine's Python imports the pipelines' decoder (decord by default; the stand-in ships one).
    expect(report.checks.find((check) => check.name === 'decoder')?.detail).toMatch(/^decord \(decord 0\.0\.0-standin\)/);
    expect(report.ok).toBe(true);
  }, 30_000);

  it('runs two jobs: curves stream while the first runs, the second pends for resources, checkpoints pull and load', async () => {
    // 16 videos over 8 ranks, micro-batch 1: 2 iterations per epoch, 3 epochs, 1 s each (time to see it running under load).
    const first = await submitRun(registry, {
      config: baseConfig,
      configPath: null,
      cluster: 'local',
      gpus: 8,
      logInterval: 1,
      environment: { VSWIN_STANDIN_SLEEP: '1', VSWIN_STANDIN_NAN_ITER: '2' },
    });
    // All 8 GPUs are taken: this one waits with Slurm's pending reason.
    const second = await submitRun(registry, {
      config: baseConfig,
      configPath: null,
      cluster: 'local',
      gpus: 2,
      flavor: '1.x',
      logInterval: 1,
      environment: { VSWIN_STANDIN_SLEEP: '0.2' },
    });
    expect(first.itersPerEpoch).toBe(2);

    const firstSeen = await pollUntil(first.runId, 40, (r) => r.status.state === 'running' && r.metricsWritten > 0);
    // Metrics are in the registry while the job still runs.
    const live = registry.metrics(first.runId).filter((row) => row.scope === 'iteration' && row.name === 'loss');
    expect(live.length).toBeGreaterThan(0);
    expect(registry.getRun(first.runId)?.status).toBe('running');
    // Slurm gives the reason at its next scheduling pass, not at submission.
    const pending = (await pollUntil(second.runId, 10, (r) => r.status.state !== 'pending' || r.status.reason !== null)).at(-1)!;
    expect(pending.status.state).toBe('pending');
    expect(pending.status.reason).toMatch(/Resources|Priority/);
    expect(registry.getRun(second.runId)?.message).toMatch(/^pending: /);

    firstSeen.push(...(await pollUntil(first.runId, 40, (r) => r.status.state === 'completed')));
    expect(states(firstSeen)).toEqual(expect.arrayContaining(['running', 'completed']));
    const run = registry.getRun(first.runId)!;
    expect(run.status).toBe('completed');
    expect(run.epochsDone).toBe(3);
    const rows = registry.metrics(first.runId);
    const losses = rows.filter((row) => row.scope === 'iteration' && row.name === 'loss');
    expect(losses.map((row) => row.step)).toEqual([0, 1, 2, 3, 4, 5]);
    // The NaN loss of iteration 2 is kept as a gap, not dropped.
    expect(losses[1].value).toBeNull();
    expect(losses[0].value).toBeCloseTo(1.4 * Math.exp(-0.05), 6);
    // Logged LR is the backbone group's (0.1x); the registry holds the head LR, scaled for 8 GPUs x 1 clip.
    expect(rows.find((row) => row.name === 'lr')?.value).toBeCloseTo((0.001 * 8) / 64, 10);
    expect(
      rows.filter((row) => row.scope === 'epoch' && row.split === 'val' && row.name === 'top1').map((row) => row.value),
    ).toEqual([0.2, 0.4, 0.6000000000000001]);

    const secondSeen = await pollUntil(second.runId, 40, (r) => r.status.state === 'completed');
    expect(states([pending, ...secondSeen])[0]).toBe('pending');
    expect(secondSeen.at(-1)?.checkpoints.map((c) => c.name)).toEqual(
      expect.arrayContaining(['epoch_1.pth', 'epoch_3.pth', 'best_acc_top1_epoch_3.pth', 'last_checkpoint']),
    );
    expect(registry.metrics(second.runId).filter((row) => row.scope === 'iteration' && row.name === 'loss')).toHaveLength(3 * 8);

    // 0.x latest.pth (a link) and 1.x best (backbone.norm3) both load into the model after the pull.
    const pulledLatest = await pullCheckpoint(registry, first.runId, 'latest');
    expect(pulledLatest.remote.epoch).toBe(3);
    const pulledBest = await pullCheckpoint(registry, second.runId, 'best');
    expect(pulledBest.notes.join(' ')).toMatch(/renamed backbone\.norm3\.\* .*to backbone\.norm\.\*/);
    // What the comparison and attention pages read: the model config, classes and pipeline.
    const info = readCheckpointInfo(pulledBest.localPath);
    expect(info.config.backbone.embed_dim).toBe(16);
    expect(info.classes).toHaveLength(4);
    expect(registry.checkpoints(second.runId).find((c) => c.path === pulledBest.localPath)).toMatchObject({
      epoch: 3,
      reasons: ['best'],
      metricName: 'top1',
      metricValue: 0.6000000000000001,
    });
    expect(registry.checkpoints(second.runId).map((c) => c.path)).toContain(pulledBest.localPath);
    const before = tf.memory().numTensors;
    for (const pulled of [pulledLatest, pulledBest]) {
      const model = createVideoSwin(modelConfigOf(baseConfig));
      const report = model.loadStateDict(loadCheckpoint(pulled.localPath).stateDict, { strict: true });
      expect(report.missing).toEqual([]);
      const input = tf.zeros([1, 3, 4, 32, 32]);
      const logits = model.predict(input);
      expect(logits.shape).toEqual([1, 4]);
      expect(Number.isFinite(logits.dataSync()[0])).toBe(true);
      logits.dispose();
      input.dispose();
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);

  it('failure, cancel + resume, and a job that never logs show their states', async () => {
    const failing = await submitRun(registry, {
      config: baseConfig,
      configPath: null,
      cluster: 'local',
      gpus: 1,
      logInterval: 1,
      environment: { VSWIN_STANDIN_SLEEP: '0.05', VSWIN_STANDIN_FAIL_EPOCH: '2', VSWIN_STANDIN_EXIT_CODE: '3' },
    });
    const cancelled = await submitRun(registry, {
      config: { ...baseConfig, epochs: 2 },
      configPath: null,
      cluster: 'local',
      gpus: 1,
      logInterval: 4,
      environment: { VSWIN_STANDIN_SLEEP: '0.25' },
    });
    const silent = await submitRun(registry, {
      config: baseConfig,
      configPath: null,
      cluster: 'local',
      gpus: 1,
      environment: { VSWIN_STANDIN_SLEEP: '1', VSWIN_STANDIN_SILENT: '1' },
    });

    // Cancel after the first epoch's checkpoint (16 iterations per epoch at 1 GPU), then resume.
    await pollUntil(cancelled.runId, 40, (r) => r.checkpoints.some((c) => c.name === 'epoch_1.pth'));
    const afterCancel = await cancelJob(registry, cancelled.runId);
    const cancelledFinal =
      afterCancel.status.state === 'cancelled'
        ? afterCancel
        : (await pollUntil(cancelled.runId, 20, (r) => r.status.state === 'cancelled')).at(-1)!;
    expect(cancelledFinal.status.state).toBe('cancelled');
    expect(registry.getRun(cancelled.runId)?.status).toBe('stopped');
    const resumed = await resumeJob(registry, cancelled.runId);
    expect(resumed.attempt).toBe(2);

    const failed = (await pollUntil(failing.runId, 40, (r) => r.status.state === 'failed')).at(-1)!;
    expect(failed.status.exitCode).toBe(3);
    expect(failed.status.schedulerState).toBe('FAILED');
    expect(registry.getRun(failing.runId)?.status).toBe('failed');
    expect(registry.getRun(failing.runId)?.message).toMatch(/exit code 3.*failing at epoch 2 as asked/);
    // Polling an ended job again keeps the message with the job's last output.
    expect((await syncJob(registry, failing.runId)).status.message).toMatch(/failing at epoch 2 as asked/);
    expect(registry.getRun(failing.runId)?.message).toMatch(/failing at epoch 2 as asked/);

    const quiet = (
      await pollUntil(
        silent.runId,
        40,
        (r) => r.status.state === 'running' && /without writing an engine log/.test(r.status.message ?? ''),
      )
    ).at(-1)!;
    expect(quiet.logFiles).toEqual([]);
    await cancelJob(registry, silent.runId);

    const done = (await pollUntil(cancelled.runId, 60, (r) => r.status.state === 'completed')).at(-1)!;
    expect(done.logFiles).toHaveLength(2);
    expect(new ClusterStore(registry).attempts(cancelled.runId).map((job) => job.state)).toEqual(['cancelled', 'completed']);
    // The resumed log continues from epoch 2: every iteration has one loss, none twice.
    const steps = registry
      .metrics(cancelled.runId)
      .filter((row) => row.scope === 'iteration' && row.name === 'loss')
      .map((row) => row.step);
    expect(steps).toEqual(Array.from({ length: 8 }, (_, i) => i * 4 + 3));
    expect(registry.getRun(cancelled.runId)?.epochsDone).toBe(2);
  }, 150_000);

  it('the vswin CLI adds the cluster, submits, follows the log and pulls a checkpoint', async () => {
    const home = join(work, 'cli-home');
    const vswin = fileURLToPath(new URL('../../bin/vswin.js', import.meta.url));
    const run = (...args: string[]) =>
      execFileSync(process.execPath, [vswin, ...args], {
        encoding: 'utf8',
        env: { ...process.env, VSWIN_HOME: home },
        timeout: 60_000,
      });
    const configFile = join(work, 'cli-run.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        extends: 'k400-swin-t',
        model: { variant: 'micro', num_classes: 4 },
        data: { train_ann: 'train.txt', val_ann: 'val.txt', root: 'videos' },
        epochs: 2,
        batch_size: 2,
        update_interval: 1,
        evaluation: { interval: 1 },
      }),
    );
    run(
      'cluster',
      'add',
      'cli',
      '--host',
      cluster.host,
      '--ssh-config',
      cluster.sshConfigFile,
      '--partition',
      cluster.partition,
      '--engine-dir',
      engineDir,
      '--python',
      python,
      '--remote-root',
      join(work, 'remote-cli'),
      '--data-root',
      join(work, 'videos'),
      '--flavor',
      '0.x',
      '--cpus-per-task',
      '1',
      '--env',
      `VSWIN_STANDIN_KEYS=${join(work, 'keys.json')}`,
      '--env',
      'VSWIN_STANDIN_SLEEP=0.1',
      '--timeout',
      '20',
    );
    const submitted = run('submit', configFile, '--cluster', 'cli', '--gpus', '2', '--log-interval', '1');
    const runId = /submitted run (\S+) to cli as job (\d+)/.exec(submitted)?.[1];
    expect(runId).toBeDefined();
    const log = run('jobs', 'log', runId!, '--follow', '--interval', '1');
    expect(log).toMatch(/train epoch 1 iter 1 {2}lr [\d.e-]+ {2}loss /);
    expect(log).toMatch(/val {3}epoch 2 .*top1_acc 0\.4/);
    expect(log).toMatch(/-- job \d+ completed/);
    expect(run('jobs', 'pull', runId!, 'best')).toMatch(/registered as checkpoint \d+/);
    const cloneFile = join(work, 'cli-clone.json');
    expect(run('jobs', 'clone', runId!, '--out', cloneFile)).toMatch(
      /vswin submit .*cli-clone\.json --cluster cli --gpus 2 --nodes 1 --flavor 0\.x/,
    );
    expect(JSON.parse(readFileSync(cloneFile, 'utf8')).epochs).toBe(2);
  }, 120_000);

  it('the service handlers preview and submit a launch, and the watcher streams the job to the UI', async () => {
    const handler = new ClusterCommandHandler(registry, work);
    expect(handler.handles('cluster.submit')).toBe(true);
    const launch = {
      config: {
        extends: 'k400-swin-t',
        model: { variant: 'micro', num_classes: 4 },
        data: { train_ann: 'train.txt', val_ann: 'val.txt', root: 'videos' },
        epochs: 2,
        batch_size: 4,
        update_interval: 1,
      },
      cluster: 'local',
      gpus: 1,
      flavor: '1.x' as const,
      logInterval: 1,
    };
    const preview = await handler.handle('cluster.preview', launch);
    expect(preview.files.map((file) => file.path)).toContain('job.sbatch');
    expect(preview.manifest.itersPerEpoch).toBe(4);
    await expect(handler.handle('cluster.submit', { ...launch, gpus: 0 })).rejects.toThrow(
      /cluster.submit: invalid arguments \(gpus: /,
    );
    const job = await handler.handle('cluster.submit', launch);
    const events: ClusterEvent[] = [];
    const watcher = startClusterWatcher(registry, { intervalSeconds: 0.3, onEvent: (event) => events.push(event) });
    try {
      const deadline = Date.now() + 40_000;
      while (
        Date.now() < deadline &&
        !events.some((e) => e.kind === 'cluster-job' && e.result.job.runId === job.runId && e.result.status.state === 'completed')
      )
        await new Promise((r) => setTimeout(r, 200));
    } finally {
      await watcher.stop();
    }
    const mine = events.filter(
      (e): e is Extract<ClusterEvent, { kind: 'cluster-job' }> => e.kind === 'cluster-job' && e.result.job.runId === job.runId,
    );
    expect(mine.at(-1)?.result.status.state).toBe('completed');
    expect(mine.reduce((sum, e) => sum + e.result.metricsWritten, 0)).toBeGreaterThan(0);
    expect(events.filter((e) => e.kind === 'cluster-job-error')).toEqual([]);
    const row = (await handler.handle('jobs.list', {})).find((summary) => summary.runId === job.runId);
    expect(row).toMatchObject({ state: 'completed', runStatus: 'completed', epochs: 2, epochsDone: 2 });
    const clone = await handler.handle('jobs.clone', { runId: job.runId });
    expect(clone).toMatchObject({ cluster: 'local', gpus: 1, flavor: '1.x' });
  }, 60_000);

  it('torchrun on one machine over SSH: preflight, a completed run, a cancelled one', async () => {
    const bin = fileURLToPath(new URL('./stand-in/bin', import.meta.url));
    store.saveCluster(
      settings({
        name: 'box',
        kind: 'torchrun',
        partition: null,
        torchrun: join(bin, 'torchrun'),
        setup: [`export PATH=${bin}:$PATH`],
        environment: { VSWIN_STANDIN_KEYS: join(work, 'keys.json'), STANDIN_PYTHON: python },
      }),
    );
    const report = await checkCluster(
      store,
      'box',
      prepareSubmission(store, { config: baseConfig, configPath: null, cluster: 'box', gpus: 2 }),
    );
    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(report.checks.find((check) => check.name === 'gpus')?.detail).toMatch(/8 GPU/);
    const quick = await submitRun(registry, {
      config: baseConfig,
      configPath: null,
      cluster: 'box',
      gpus: 2,
      logInterval: 1,
      environment: { VSWIN_STANDIN_SLEEP: '0.05' },
    });
    const slow = await submitRun(registry, {
      config: baseConfig,
      configPath: null,
      cluster: 'box',
      gpus: 2,
      logInterval: 1,
      environment: { VSWIN_STANDIN_SLEEP: '5' },
    });
    expect(quick.jobId).toMatch(/^\d+$/);
    const finished = (await pollUntil(quick.runId, 40, (r) => finishedJobStates.includes(r.status.state))).at(-1)!;
    expect(finished.status.state).toBe('completed');
    // 16 videos over 2 processes, micro-batch 1: 8 iterations per epoch, 3 epochs.
    expect(registry.metrics(quick.runId).filter((row) => row.scope === 'iteration' && row.name === 'loss')).toHaveLength(24);
    await pollUntil(slow.runId, 20, (r) => r.status.state === 'running');
    const stopped = await cancelJob(registry, slow.runId);
    const final =
      stopped.status.state === 'cancelled'
        ? stopped
        : (await pollUntil(slow.runId, 20, (r) => r.status.state === 'cancelled')).at(-1)!;
    expect(final.status.state).toBe('cancelled');
    expect(registry.getRun(slow.runId)?.status).toBe('stopped');
    expect(
      await submitRun(registry, { config: baseConfig, configPath: null, cluster: 'box', gpus: 1, nodes: 2 }).catch(
        (error: Error) => error.message,
      ),
    ).toMatch(/one machine \(torchrun\); received 2 nodes/);
  }, 90_000);

  // Slurm enforces --time=1 after about 72 s here: too slow for every run (VSWIN_SLOW_TESTS=1 runs it).
  it.runIf(process.env.VSWIN_SLOW_TESTS === '1')(
    'a job over its time limit ends as timeout',
    async () => {
      store.saveCluster(settings({ name: 'short', timeLimit: '1' }));
      const job = await submitRun(registry, {
        config: baseConfig,
        configPath: null,
        cluster: 'short',
        gpus: 1,
        environment: { VSWIN_STANDIN_SLEEP: '30' },
      });
      const final = (await pollUntil(job.runId, 150, (r) => finishedJobStates.includes(r.status.state))).at(-1)!;
      expect(final.status.state).toBe('timeout');
      expect(final.status.message).toMatch(/time limit/);
      expect(registry.getRun(job.runId)?.status).toBe('failed');
    },
    180_000,
  );

  it('bad inputs give clear errors, never a hang', async () => {
    store.saveCluster(settings({ name: 'nowhere', host: 'nosuchhost.invalid' }));
    store.saveCluster(settings({ name: 'badkey', host: cluster.badKeyHost }));
    store.saveCluster(settings({ name: 'closed', host: cluster.closedPortHost }));
    store.saveCluster(settings({ name: 'nopartition', partition: 'nosuchpartition' }));
    const started = Date.now();
    const ssh = async (name: string) => (await checkCluster(store, name)).checks.find((check) => check.name === 'ssh')!;
    expect((await ssh('nowhere')).detail).toMatch(/does not resolve/);
    expect((await ssh('badkey')).detail).toMatch(/refused the key/);
    expect((await ssh('closed')).detail).toMatch(/connection was refused/);
    const partition = (await checkCluster(store, 'nopartition')).checks.find((check) => check.name === 'partition')!;
    expect(partition).toMatchObject({ ok: false });
    expect(partition.detail).toMatch(/no partition nosuchpartition; partitions: gpu/);
    const refused = await submitRun(registry, { config: baseConfig, configPath: null, cluster: 'nopartition', gpus: 1 }).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(RemoteError);
    expect((refused as RemoteError).kind).toBe('missing-partition');
    expect((refused as Error).message).toMatch(/invalid partition/i);
    const failedRun = registry
      .listRuns()
      .find((run) => run.status === 'failed' && /submission to nopartition failed/.test(run.message ?? ''));
    expect(failedRun).toBeDefined();
    expect(() => store.requireCluster('missing')).toThrow(/no cluster "missing"; known clusters: /);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});
