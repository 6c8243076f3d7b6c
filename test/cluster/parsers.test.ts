import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointKind } from '../../core/cluster/backend.ts';
import { quote, toPython, tuple } from '../../core/cluster/python-literal.ts';
import { parseSlurmStatus, slurmSeconds } from '../../core/cluster/slurm-backend.ts';
import { classifySshFailure, remotePath } from '../../core/cluster/ssh.ts';
import { ClusterStore, parseClusterSettings } from '../../core/cluster/store.ts';
import { cloneSubmission, pickCheckpoint } from '../../core/cluster/tracking.ts';
import { parseTorchrunStatus } from '../../core/cluster/torchrun-backend.ts';
import { Registry } from '../../core/registry/registry.ts';
import type { RemoteCheckpoint } from '../../core/protocol/cluster.ts';

const scontrol = (fields: string) =>
  `J JobId=12 JobName=vswin-x UserId=root(0) ${fields} RunTime=00:01:05 TimeLimit=UNLIMITED NodeList=vm Command=/tmp/job.sbatch`;

describe('Slurm state', () => {
  it('reads scontrol: state, pending reason, exit code and signal', () => {
    expect(
      parseSlurmStatus('12', [
        scontrol('JobState=PENDING Reason=Resources Dependency=(null)'),
        'Q PENDING|Resources|0:00|',
        'X ',
      ]),
    ).toMatchObject({ state: 'pending', reason: 'Resources', message: 'pending: Resources', exitCode: null });
    expect(parseSlurmStatus('12', [scontrol('JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0')])).toMatchObject({
      state: 'failed',
      exitCode: 3,
      signal: 0,
      message: 'FAILED with exit code 3: NonZeroExitCode',
      elapsedSeconds: 65,
      nodes: 'vm',
    });
    expect(parseSlurmStatus('12', [scontrol('JobState=CANCELLED Reason=None ExitCode=0:15')])).toMatchObject({
      state: 'cancelled',
      signal: 15,
      reason: null,
    });
    expect(parseSlurmStatus('12', [scontrol('JobState=TIMEOUT Reason=TimeLimit ExitCode=0:0')]).state).toBe('timeout');
    expect(parseSlurmStatus('12', [scontrol('JobState=COMPLETING Reason=None')]).state).toBe('running');
  });

  it('falls back to squeue, then to the status file the job wrote, then says what is unknown', () => {
    expect(parseSlurmStatus('12', ['J ', 'Q RUNNING|None|1:02:03|vm', 'X '])).toMatchObject({
      state: 'running',
      elapsedSeconds: 3723,
      nodes: 'vm',
    });
    expect(parseSlurmStatus('12', ['J ', 'Q ', 'X {"job_id": "12", "exit_code": 0, "finished_at": "t"}'])).toMatchObject({
      state: 'completed',
      exitCode: 0,
      schedulerState: 'GONE',
    });
    expect(parseSlurmStatus('12', ['J ', 'Q ', 'X {"job_id": "12", "exit_code": 2}'])).toMatchObject({
      state: 'failed',
      exitCode: 2,
    });
    // 143 is a cancel only when the batch script itself got SIGTERM; a rank killed by srun after
    // another rank failed is a failure. Status files without "terminated" keep the old reading.
    expect(parseSlurmStatus('12', ['J ', 'Q ', 'X {"job_id": "12", "exit_code": 143, "terminated": 1}'])).toMatchObject({
      state: 'cancelled',
      exitCode: 143,
    });
    const killed = parseSlurmStatus('12', ['J ', 'Q ', 'X {"job_id": "12", "exit_code": 143, "terminated": 0}']);
    expect(killed).toMatchObject({ state: 'failed', exitCode: 143 });
    expect(killed.message).toMatch(/srun stops the others when one fails/);
    expect(parseSlurmStatus('12', ['J ', 'Q ', 'X {"job_id": "12", "exit_code": 143}']).state).toBe('cancelled');
    const unknown = parseSlurmStatus('12', ['J ', 'Q ', 'X ']);
    expect(unknown.state).toBe('unknown');
    expect(unknown.message).toMatch(/does not know job 12 and the job wrote no status file/);
  });

  it('converts Slurm durations', () => {
    expect(slurmSeconds('1-02:03:04')).toBe(93784);
    expect(slurmSeconds('05:06')).toBe(306);
    expect(slurmSeconds('UNLIMITED')).toBeNull();
  });
});

describe('torchrun state', () => {
  it('tells running, completed, failed, cancelled and vanished apart', () => {
    expect(parseTorchrunStatus('7', ['R', 'X ']).state).toBe('running');
    expect(parseTorchrunStatus('7', ['X {"exit_code": 0}']).state).toBe('completed');
    expect(parseTorchrunStatus('7', ['X {"exit_code": 1}'])).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(parseTorchrunStatus('7', ['K', 'X {"exit_code": 143}']).state).toBe('cancelled');
    expect(parseTorchrunStatus('7', ['X ']).message).toMatch(/process 7 is gone and wrote no status file/);
  });
});

describe('ssh failures', () => {
  it('names the cause from the client message', () => {
    expect(classifySshFailure('ssh: Could not resolve hostname x: Name or service not known').kind).toBe('unknown-host');
    expect(classifySshFailure('ssh: connect to host 127.0.0.1 port 1: Connection refused').kind).toBe('refused-connection');
    expect(classifySshFailure('root@127.0.0.1: Permission denied (publickey).').kind).toBe('refused-key');
    expect(classifySshFailure('Host key verification failed.').kind).toBe('host-key');
    expect(classifySshFailure('ssh: connect to host 10.0.0.1 port 22: Connection timed out').kind).toBe('timeout');
    expect(classifySshFailure('something else').kind).toBe('ssh-failed');
  });

  it('quotes remote paths, keeping ~ for the remote home', () => {
    expect(remotePath("~/runs/it's")).toBe(`"$HOME"/'runs/it'\\''s'`);
    expect(execFileSync('bash', ['-c', `HOME=/h; echo ${remotePath("~/a b/it's")}`], { encoding: 'utf8' }).trim()).toBe(
      "/h/a b/it's",
    );
  });
});

describe('checkpoint names', () => {
  it('classifies both flavours and picks by name, epoch, latest and best', () => {
    expect(checkpointKind('best_top1_acc_epoch_5.pth')).toEqual({ kind: 'best', epoch: 5 });
    expect(checkpointKind('best_acc_top1_epoch_12.pth')).toEqual({ kind: 'best', epoch: 12 });
    expect(checkpointKind('epoch_3.pth')).toEqual({ kind: 'epoch', epoch: 3 });
    expect(checkpointKind('latest.pth')).toEqual({ kind: 'latest', epoch: null });
    const entry = (name: string, kind: RemoteCheckpoint['kind'], epoch: number | null): RemoteCheckpoint => ({
      name,
      path: `/w/${name}`,
      bytes: 1,
      modifiedAt: '',
      epoch,
      kind,
    });
    const list = [
      entry('epoch_1.pth', 'epoch', 1),
      entry('epoch_2.pth', 'epoch', 2),
      entry('best_acc_top1_epoch_1.pth', 'best', 1),
      entry('last_checkpoint', 'latest', 2),
    ];
    expect(pickCheckpoint(list, 'latest').epoch).toBe(2);
    expect(pickCheckpoint(list, 'best').name).toBe('best_acc_top1_epoch_1.pth');
    expect(pickCheckpoint(list, '1').name).toBe('epoch_1.pth');
    expect(pickCheckpoint(list, 'epoch_2.pth').epoch).toBe(2);
    expect(() => pickCheckpoint(list, '9')).toThrow(
      /no checkpoint "9" .*holds epoch_1.pth, epoch_2.pth, best_acc_top1_epoch_1.pth/,
    );
  });
});

describe('python literals', () => {
  it('writes tuples, None, booleans and escaped strings that Python reads back', () => {
    const text = toPython({ a: tuple(1, 2), b: null, c: true, d: "it's \\ \n", e: [1.5, 1e-7], f: tuple(3) });
    const value = execFileSync(
      'python3',
      ['-c', `import json; v = ${text}; print(json.dumps([v, type(v['a']).__name__, type(v['f']).__name__]))`],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(value)).toEqual([
      { a: [1, 2], b: null, c: true, d: "it's \\ \n", e: [1.5, 1e-7], f: [3] },
      'tuple',
      'tuple',
    ]);
    expect(quote('\u0001')).toBe("'\\x01'");
    expect(() => toPython({ 'not-an-identifier': 1 })).toThrow(/not a Python identifier/);
  });
});

describe('cluster settings and jobs in the registry', () => {
  const home = mkdtempSync(join(tmpdir(), 'vswin-cluster-store-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('validates settings field by field with the value received', () => {
    expect(() => parseClusterSettings({ name: 'bad name', kind: 'pbs', host: 'h', gpusPerNode: 0 })).toThrow(
      /name: .*received "bad name"[\s\S]*kind: .*received "pbs"[\s\S]*gpusPerNode: .*received 0/,
    );
    expect(parseClusterSettings({ name: 'lab', kind: 'slurm', host: 'login' })).toMatchObject({
      flavor: '1.x',
      gpusPerNode: 8,
      connectTimeoutSeconds: 10,
      partition: null,
    });
  });

  it('keeps clusters and job attempts, finds a job by run or job id, and clones a run for editing', () => {
    const registry = Registry.open(home);
    try {
      const store = new ClusterStore(registry);
      store.saveCluster({ name: 'lab', kind: 'slurm', host: 'login', partition: 'a100' });
      store.saveCluster({ name: 'lab', kind: 'slurm', host: 'login2' });
      expect(store.listClusters().map((c) => [c.name, c.host, c.partition])).toEqual([['lab', 'login2', null]]);
      const config = {
        description: '',
        model: {
          variant: 'micro',
          backbone: {},
          num_classes: 4,
          drop_path_rate: null,
          head_dropout: 0.5,
          pretrained: null,
          load_from: null,
        },
        data: {
          train_ann: '/t.txt',
          val_ann: null,
          root: '/v',
          val_root: null,
          classes: null,
          pipeline: { preset: 'small' },
          workers: 1,
        },
        optimizer: {
          type: 'adamw',
          lr: 0.001,
          weight_decay: 0.02,
          betas: [0.9, 0.999],
          eps: 1e-8,
          paramwise: 'official',
          clip_grad_norm: null,
        },
        epochs: 2,
        batch_size: 1,
      };
      registry.createRun({
        id: 'r1',
        name: 'first',
        config,
        configPath: null,
        datasetId: null,
        projectVersion: '0',
        backend: 'slurm:lab',
        seed: 0,
        gitCommit: null,
        runDir: '/tmp/r1',
        epochs: 2,
      });
      const job = {
        runId: 'r1',
        cluster: 'lab',
        jobId: '41',
        attempt: 1,
        flavor: '1.x' as const,
        remoteDir: '/r/r1',
        gpus: 2,
        nodes: 1,
        itersPerEpoch: 3,
        loggedLrToBase: 10,
        state: 'cancelled' as const,
        schedulerState: 'CANCELLED',
        reason: null,
        exitCode: 0,
        message: null,
        submittedAt: 't1',
        updatedAt: 't1',
        finishedAt: 't1',
      };
      store.addJob(job);
      store.addJob({
        ...job,
        jobId: '57',
        attempt: 2,
        state: 'running',
        schedulerState: 'RUNNING',
        finishedAt: null,
        submittedAt: 't2',
      });
      expect(store.requireJob('r1').jobId).toBe('57');
      expect(store.requireJob('41').attempt).toBe(2);
      expect(store.listJobs().map((j) => j.jobId)).toEqual(['57']);
      expect(() => store.requireJob('nope')).toThrow(/no cluster job for "nope" .*recent: r1 \(job 57\)/);
      store.setLogOffset('r1', { path: 'work/a.log.json', offset: 120, lines: 3, firstStep: 0 });
      expect(store.logOffsets('r1').get('work/a.log.json')).toEqual({
        path: 'work/a.log.json',
        offset: 120,
        lines: 3,
        firstStep: 0,
      });
      const clone = cloneSubmission(registry, 'r1');
      expect(clone).toMatchObject({ cluster: 'lab', gpus: 2, nodes: 1, flavor: '1.x', name: 'first (copy)' });
      expect(clone.config.epochs).toBe(2);
    } finally {
      registry.close();
    }
  });
});
