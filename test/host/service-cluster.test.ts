// The workbench service routes cluster.* and jobs.* like its other commands: through the same
// token-checked WebSocket, with errors naming the field, the value received and what was expected;
// an unknown cluster or run is named with the known ones. (The routes against a real Slurm:
// test/cluster/service-routing.test.ts.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchWorkbench, type LaunchedWorkbench } from '../../core/host/service/launch.ts';
import { COMMAND_NAMES, type ServiceMessage, type WorkbenchEvent } from '../../core/protocol/workbench.ts';
import { CLUSTER_COMMAND_NAMES, type ClusterEvent } from '../../core/protocol/cluster.ts';
import { ClusterStore } from '../../core/cluster/store.ts';

let home: string;
let launched: LaunchedWorkbench;
let socket: WebSocket;
const events: WorkbenchEvent[] = [];
let nextId = 1;

function open(url: string, headers: Record<string, string> = {}): Promise<{ socket: WebSocket | null; status: number | null }> {
  return new Promise((resolve) => {
    const client = new WebSocket(url, { headers });
    client.on('open', () => resolve({ socket: client, status: null }));
    client.on('unexpected-response', (_request, response) => resolve({ socket: null, status: response.statusCode ?? 0 }));
    client.on('error', () => resolve({ socket: null, status: -1 }));
  });
}

/** One command over the socket; resolves with the result or rejects with the service's error text. */
function call(command: string, args: unknown): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const onMessage = (data: WebSocket.RawData) => {
      const message = JSON.parse(String(data)) as ServiceMessage;
      if (message.kind !== 'result' || message.id !== id) return;
      socket.off('message', onMessage);
      if (message.ok) resolve(message.result);
      else reject(new Error(message.error));
    };
    socket.on('message', onMessage);
    socket.send(JSON.stringify({ id, command, args }));
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'vswin-service-cluster-'));
  launched = await launchWorkbench({
    home,
    demo: false,
    backend: 'cpu',
    staticDir: join(home, 'no-ui'),
    clusterPollSeconds: 0.5,
  });
  const { port, token } = launched.service;
  const connected = await open(`ws://127.0.0.1:${port}/ws?token=${token}`);
  if (!connected.socket) throw new Error(`could not connect: ${connected.status}`);
  socket = connected.socket;
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as ServiceMessage;
    if (message.kind === 'event') events.push(message.event);
  });
});

afterAll(async () => {
  socket?.close();
  await launched?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('cluster routes of the workbench service', () => {
  it('lists every command of the cluster contract among the workbench commands', () => {
    for (const name of CLUSTER_COMMAND_NAMES) expect(COMMAND_NAMES).toContain(name);
    expect(COMMAND_NAMES).toContain('jobs.log');
  });

  it('refuses a socket without the token, or from a foreign origin, for cluster commands as for the others', async () => {
    const { port, token } = launched.service;
    expect((await open(`ws://127.0.0.1:${port}/ws`)).status).toBe(401);
    expect((await open(`ws://127.0.0.1:${port}/ws?token=wrong-${token}`)).status).toBe(401);
    expect((await open(`ws://127.0.0.1:${port}/ws?token=${token}`, { Origin: 'http://evil.example' })).status).toBe(403);
  });

  it('saves, lists and removes a cluster', async () => {
    const saved = (await call('cluster.save', {
      name: 'hpc',
      kind: 'slurm',
      host: 'me@login.example',
      partition: 'gpu',
      remoteRoot: '/scratch/me/runs',
    })) as { name: string; gpusPerNode: number; flavor: string };
    expect(saved).toMatchObject({ name: 'hpc', gpusPerNode: 8, flavor: '1.x' });
    expect(((await call('cluster.list', {})) as { name: string }[]).map((c) => c.name)).toEqual(['hpc']);
    expect(await call('cluster.remove', { name: 'hpc' })).toEqual({ removed: true });
    expect(await call('cluster.remove', { name: 'hpc' })).toEqual({ removed: false });
    expect(await call('cluster.list', {})).toEqual([]);
  });

  it('names the bad field, the value received and what was expected', async () => {
    await expect(call('cluster.save', { name: 'bad name', kind: 'pbs', host: 'x' })).rejects.toThrow(
      /name: letters, digits.*\(received "bad name"\)[\s\S]*kind: .*\(received "pbs"\)/,
    );
    await expect(call('cluster.save', { name: 'a', kind: 'slurm', host: 'x', gpusPerNode: 0 })).rejects.toThrow(
      /gpusPerNode: .*\(received 0\)/,
    );
    await expect(call('cluster.save', { name: 'a', kind: 'slurm', host: 'x', colour: 'red' })).rejects.toThrow(
      /unknown field\(s\) colour/,
    );
    await call('cluster.save', { name: 'hpc', kind: 'slurm', host: 'me@login.example' });
    await expect(call('cluster.preview', { config: {}, cluster: 'hpc', gpus: 0 })).rejects.toThrow(
      /cluster\.preview: invalid arguments \(gpus: .*\(received 0\)\)/,
    );
    await expect(call('cluster.submit', { config: 'not an object', cluster: 'hpc' })).rejects.toThrow(
      /cluster\.submit: invalid arguments \(config: .*\(received "not an object"\)\)/,
    );
    await expect(call('cluster.preview', { config: {}, cluster: 'hpc', flavor: '2.x' })).rejects.toThrow(
      /flavor: .*\(received "2\.x"\)/,
    );
    await expect(call('cluster.submit', { config: {}, cluster: 'hpc', environment: { 'BAD-NAME': '1' } })).rejects.toThrow(
      'cluster.submit: invalid arguments (environment: "BAD-NAME" is not a shell variable name (expected letters, digits and "_", not starting with a digit) (received {"BAD-NAME":"1"}))',
    );
    await expect(call('jobs.cancel', {})).rejects.toThrow(/jobs\.cancel: invalid arguments \(runId: .*\(received nothing\)\)/);
    await expect(call('jobs.pull', { runId: 'r' })).rejects.toThrow(/jobs\.pull: invalid arguments \(which: /);
    await expect(call('jobs.log', { runId: 7 })).rejects.toThrow(/jobs\.log: runId: expected a run id or a job id, received 7/);
    await expect(call('jobs.list', { refresh: 'yes' })).rejects.toThrow(
      /jobs\.list: expected \{ refresh\?: boolean \}, received \{"refresh":"yes"\}/,
    );
  });

  it('names an unknown cluster with the known ones, and an unknown run', async () => {
    await expect(call('cluster.check', { name: 'nowhere' })).rejects.toThrow('no cluster "nowhere"; known clusters: hpc');
    await expect(call('cluster.preview', { config: { extends: 'k400-swin-t' }, cluster: 'nowhere' })).rejects.toThrow(
      /no cluster "nowhere"; known clusters: hpc/,
    );
    for (const command of ['jobs.sync', 'jobs.cancel', 'jobs.resume', 'jobs.log', 'jobs.pull']) {
      await expect(
        call(command, { runId: 'no-such-run', ...(command === 'jobs.pull' ? { which: 'best' } : {}) }),
        command,
      ).rejects.toThrow(/no cluster job for "no-such-run" \(a run id or a job id\); nothing was submitted yet/);
    }
    await expect(call('jobs.clone', { runId: 'no-such-run' })).rejects.toThrow(/no run "no-such-run" in .*registry\.sqlite/);
    expect(await call('jobs.list', { refresh: true })).toEqual([]);
  });

  it('still names unknown commands, listing the cluster ones too', async () => {
    await expect(call('cluster.explode', {})).rejects.toThrow(
      /unknown command "cluster.explode"; expected one of settings.get, .*cluster.list, .*jobs.log/,
    );
  });

  it('the watcher reports a job whose cluster cannot be reached as an error event, and keeps the job', async () => {
    const registry = launched.workbench.registry;
    await call('cluster.save', {
      name: 'gone',
      kind: 'slurm',
      host: 'nosuchhost.invalid',
      connectTimeoutSeconds: 2,
      commandTimeoutSeconds: 5,
    });
    // A job of an earlier session on a cluster that no longer resolves (as after a restart, or a rename of the host).
    const time = new Date().toISOString();
    registry.createRun({
      id: 'run-gone',
      name: 'gone-run',
      config: {},
      configPath: null,
      datasetId: null,
      projectVersion: 'test',
      backend: 'slurm:gone',
      seed: 0,
      gitCommit: null,
      runDir: join(home, 'runs', 'run-gone'),
      epochs: 3,
    });
    new ClusterStore(registry).addJob({
      runId: 'run-gone',
      cluster: 'gone',
      jobId: '41',
      attempt: 1,
      flavor: '1.x',
      remoteDir: '/scratch/run-gone',
      gpus: 8,
      nodes: 1,
      itersPerEpoch: 10,
      loggedLrToBase: 10,
      state: 'running',
      schedulerState: 'RUNNING',
      reason: null,
      exitCode: null,
      message: null,
      submittedAt: time,
      updatedAt: time,
      finishedAt: null,
    });
    const deadline = Date.now() + 20_000;
    let error: Extract<ClusterEvent, { kind: 'cluster-job-error' }> | undefined;
    while (!error && Date.now() < deadline) {
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
      error = events
        .map((event) => (event.kind === 'cluster' ? event.event : null))
        .find(
          (event): event is Extract<ClusterEvent, { kind: 'cluster-job-error' }> =>
            event?.kind === 'cluster-job-error' && event.runId === 'run-gone',
        );
    }
    expect(error?.message).toMatch(/does not resolve/);
    const rows = (await call('jobs.list', {})) as {
      runId: string;
      state: string;
      runName: string;
      elapsedSeconds: number | null;
    }[];
    expect(rows.find((row) => row.runId === 'run-gone')).toMatchObject({
      state: 'running',
      runName: 'gone-run',
      elapsedSeconds: null,
    });
    await expect(call('jobs.list', { refresh: true })).resolves.toHaveLength(1);
  });

  it('reports each command as a job, like the other commands', async () => {
    const finished = events.filter(
      (event): event is Extract<WorkbenchEvent, { kind: 'job-finished' }> => event.kind === 'job-finished',
    );
    expect(
      finished.some(
        (event) => event.command === 'cluster.check' && !event.ok && /no cluster "nowhere"/.test(event.message ?? ''),
      ),
    ).toBe(true);
    expect(finished.some((event) => event.command === 'cluster.list' && event.ok)).toBe(true);
  });
});
