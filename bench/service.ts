// npm run bench:service — command latency of a running `vswin serve` under load: N WebSocket clients
// each send M commands (runs.list, runs.curves of a long run, runs.checkpoints, settings.get) while a
// training run works in the same service, and again with no training, on a registry that also holds a
// 500k-row run. Prints p50/p95/max per phase, their ratio, and the load average.
//
// Usage: npm run bench:service [-- --clients 8 --commands 50 --rows 500000]
// Loopback only, temporary home, random port; everything it starts is stopped at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { demoRunConfig, ensureDemoDataset } from '../core/host/service/demo.ts';
import { launchWorkbench } from '../core/host/service/launch.ts';
import { Registry, type MetricRow } from '../core/registry/registry.ts';

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name}: expected a positive integer, received "${process.argv[index + 1]}"`);
  return value;
}

const clients = argument('clients', 8);
const commandsPerClient = argument('commands', 50);
const rows = argument('rows', 500_000);
const demo = { classes: 3, perClass: 4, frames: 8, size: 32 };

/** A registry run with `rows` iteration metric rows, like a long run of an earlier session. */
function seedLongRun(home: string): void {
  const registry = Registry.open(home);
  registry.createRun({
    id: 'long-run',
    name: 'long run',
    config: {},
    configPath: null,
    datasetId: null,
    projectVersion: 'bench',
    backend: 'wasm',
    seed: 0,
    gitCommit: null,
    runDir: join(home, 'runs', 'long-run'),
    epochs: 10,
  });
  const steps = Math.ceil(rows / 4);
  for (let start = 0; start < steps; start += 5000) {
    const batch: MetricRow[] = [];
    for (let step = start; step < Math.min(steps, start + 5000); step++)
      for (const name of ['loss', 'lr', 'grad_norm', 'top1'])
        batch.push({ scope: 'iteration', split: 'train', step, epoch: 1, name, value: Math.random() });
    registry.recordProgress('long-run', 0, start, batch);
  }
  registry.setStatus('long-run', 'completed');
  registry.close();
}

function open(port: number, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token}`);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends commands one after another on one socket; returns each round trip in ms. */
async function client(socket: WebSocket, count: number, offset: number): Promise<[string, number][]> {
  const pending = new Map<number, (ok: boolean) => void>();
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { kind: string; id?: number; ok?: boolean };
    if (message.kind === 'result' && message.id !== undefined) pending.get(message.id)?.(message.ok === true);
  });
  const commands: [string, unknown][] = [
    ['runs.list', {}],
    ['runs.curves', { runIds: ['long-run'] }],
    ['runs.checkpoints', {}],
    ['settings.get', {}],
  ];
  const times: [string, number][] = [];
  for (let i = 0; i < count; i++) {
    const id = offset + i;
    const [command, args] = commands[i % commands.length];
    const started = performance.now();
    const ok = await new Promise<boolean>((resolve) => {
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, command, args }));
    });
    pending.delete(id);
    if (!ok) throw new Error(`${command} failed during the bench`);
    times.push([command, performance.now() - started]);
  }
  return times;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Latency {
  p50: number;
  p95: number;
  max: number;
  count: number;
}

function summarise(times: number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted[sorted.length - 1], count: sorted.length };
}

async function phase(port: number, token: string): Promise<Record<string, Latency>> {
  const sockets = await Promise.all(Array.from({ length: clients }, () => open(port, token)));
  try {
    const all = (await Promise.all(sockets.map((socket, i) => client(socket, commandsPerClient, i * 100_000)))).flat();
    const result: Record<string, Latency> = { all: summarise(all.map(([, ms]) => ms)) };
    for (const command of new Set(all.map(([name]) => name)))
      result[command] = summarise(all.filter(([name]) => name === command).map(([, ms]) => ms));
    return result;
  } finally {
    for (const socket of sockets) socket.close();
  }
}

const home = mkdtempSync(join(tmpdir(), 'vswin-bench-service-'));
try {
  seedLongRun(home);
  const launched = await launchWorkbench({ home, backend: 'wasm', demo });
  try {
    const { port, token } = launched.service;
    const idle = await phase(port, token);
    const dataset = await ensureDemoDataset(home, demo);
    const config = {
      ...demoRunConfig(dataset),
      epochs: 50,
      batch_size: 3,
      data: { ...(demoRunConfig(dataset).data as object), workers: 1 },
    };
    const { runId } = (await launched.workbench.dispatch(
      'train.start',
      { config, name: 'bench' },
      {
        jobId: 'bench',
        progress: () => undefined,
        emit: () => undefined,
      },
    )) as { runId: string };
    await new Promise((resolve) => setTimeout(resolve, 3000)); // past start-up, into the training loop
    const training = await phase(port, token);
    const load = loadavg();
    await launched.workbench.dispatch(
      'train.control',
      { runId, command: 'stop' },
      { jobId: 'bench', progress: () => undefined, emit: () => undefined },
    );
    await launched.workbench.training.wait(runId);
    const row = (name: string, r: Latency) =>
      [name.padEnd(34), r.count.toString().padStart(6), ...[r.p50, r.p95, r.max].map((ms) => ms.toFixed(2).padStart(9))].join(
        ' ',
      );
    console.log(`bench:service — ${clients} clients x ${commandsPerClient} commands, one after another on each client`);
    console.log(`registry: one run of ${rows} metric rows plus the bench's own training run; ${cpus().length} cores`);
    console.log(
      ['phase: command'.padEnd(34), 'calls'.padStart(6), ...['p50 ms', 'p95 ms', 'max ms'].map((h) => h.padStart(9))].join(' '),
    );
    for (const [name, result] of [
      ['idle', idle],
      ['while training', training],
    ] as const)
      for (const [command, latency] of Object.entries(result)) console.log(row(`${name}: ${command}`, latency));
    console.log(`p95 while training / idle (all commands): ${(training.all.p95 / idle.all.p95).toFixed(2)}x`);
    console.log(`load average (1, 5, 15 min): ${load.map((value) => value.toFixed(2)).join(', ')}`);
  } finally {
    await launched.close();
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}
