// runs.list and runs.curves on a registry holding one 500k-row run (a K400 run has ~1.8M): the list
// comes from indexed aggregates and answers in well under 100 ms; curves come decimated from SQLite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workbench } from '../../core/host/service/commands.ts';
import { Registry, type MetricRow } from '../../core/registry/registry.ts';
import type { RunSummary } from '../../core/protocol/workbench.ts';

const home = mkdtempSync(join(tmpdir(), 'vswin-runs-scale-'));
const iterations = 125_000; // x 4 iteration metrics = 500,000 rows
let workbench: Workbench;

function newRun(registry: Registry, id: string, metric?: string) {
  registry.createRun({
    id,
    name: id,
    config: metric ? { evaluation: { metric } } : {},
    configPath: null,
    datasetId: null,
    projectVersion: 'test',
    backend: 'wasm',
    seed: 0,
    gitCommit: null,
    runDir: join(home, 'runs', id),
    epochs: 10,
  });
}

beforeAll(() => {
  const registry = Registry.open(home);
  newRun(registry, 'long');
  newRun(registry, 'short', 'mean_class_accuracy');
  for (let start = 0; start < iterations; start += 5000) {
    const rows: MetricRow[] = [];
    for (let step = start; step < start + 5000; step++) {
      const epoch = Math.floor(step / 12_500) + 1;
      for (const name of ['loss', 'lr', 'grad_norm', 'top1'])
        rows.push({ scope: 'iteration', split: 'train', step, epoch, name, value: name === 'loss' ? 1 / (1 + step) : step });
    }
    registry.recordProgress('long', Math.floor(start / 12_500), start + 5000, rows);
  }
  const epochs: MetricRow[] = [];
  for (let epoch = 1; epoch <= 10; epoch++)
    epochs.push({ scope: 'epoch', split: 'val', step: epoch, epoch, name: 'top1', value: epoch / 20 });
  registry.recordProgress('long', 10, iterations, epochs);
  registry.recordProgress('short', 1, 3, [
    { scope: 'iteration', split: 'train', step: 0, epoch: 1, name: 'loss', value: 2 },
    { scope: 'epoch', split: 'val', step: 1, epoch: 1, name: 'mean_class_accuracy', value: 0.25 },
    { scope: 'epoch', split: 'val', step: 1, epoch: 1, name: 'top1', value: 0.75 },
  ]);
  registry.close();
  workbench = new Workbench({ home, version: 'test', mediaUrl: (path) => path });
}, 120_000);

afterAll(async () => {
  await workbench?.close();
  rmSync(home, { recursive: true, force: true });
});

const context = { jobId: 'test', progress: () => undefined, emit: () => undefined };

describe('runs.list at scale', () => {
  it('lists a registry with a 500k-row run in well under 100 ms, with the best metrics', async () => {
    await workbench.dispatch('runs.list', {}, context); // statement caches warm
    const times: number[] = [];
    let runs: RunSummary[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      runs = (await workbench.dispatch('runs.list', {}, context)) as RunSummary[];
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    console.log(
      `runs.list with a 500,000-row run: median ${times[10].toFixed(2)} ms, max ${times[19].toFixed(2)} ms over 20 calls`,
    );
    expect(times[10]).toBeLessThan(100);
    const byId = Object.fromEntries(runs.map((run) => [run.id, run]));
    expect(byId.long.bestMetric).toEqual({ name: 'top1', value: 0.5 });
    expect(byId.short.bestMetric).toEqual({ name: 'mean_class_accuracy', value: 0.25 });
    expect(byId.long.epochsDone).toBe(10);
  });

  it('returns the curves of the long run decimated to about maxPoints, keeping the first and last steps', async () => {
    const [curves] = (await workbench.dispatch('runs.curves', { runIds: ['long'], maxPoints: 1000 }, context)) as {
      series: Record<string, { step: number; value: number }[]>;
    }[];
    const lr = curves.series['iter:train:lr'];
    expect(lr.length).toBeGreaterThan(900);
    expect(lr.length).toBeLessThanOrEqual(1001);
    // Curve points count iterations from 1 (core/app/runs.ts); the registry stores them from 0.
    expect(lr.at(-1)!.step).toBe(iterations);
    // lr's value is its stored (0-based) step: every stride-th step is kept, and the last one.
    const stride = Math.ceil(iterations / 1000);
    expect(lr.slice(0, 2)).toEqual([
      { step: 1, value: 0 },
      { step: stride + 1, value: stride },
    ]);
    expect(lr.every((point) => point.value === point.step - 1)).toBe(true);
    expect(curves.series['epoch:val:top1']).toHaveLength(10);
    const [short] = (await workbench.dispatch('runs.curves', { runIds: ['short'] }, context)) as {
      series: Record<string, { step: number; value: number }[]>;
    }[];
    expect(short.series['iter:train:loss']).toEqual([{ step: 1, value: 2 }]);
  });
});
