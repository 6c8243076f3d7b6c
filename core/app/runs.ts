// A run's metrics as people read them, for both doors: the curves of the Training and Runs pages,
// the CSV of the Runs page and of `vswin runs export`. One encoding: iterations and epochs count
// from 1 (the registry stores the global iteration 0-based and the completed epoch 1-based; its
// `epoch` column is the 0-based index of the epoch a row belongs to).
import type { MetricRow, Registry } from '../registry/registry.ts';
import type { RunCurves } from '../protocol/workbench.ts';

/** The 1-based x of a metric row: iteration number for iteration rows, epoch number for epoch rows. */
export function pointStep(row: Pick<MetricRow, 'scope' | 'step'>): number {
  return row.scope === 'iteration' ? row.step + 1 : row.step;
}

/**
 * The curves of a run keyed "iter:SPLIT:NAME" / "epoch:SPLIT:NAME", every step 1-based. Iteration
 * curves of long runs come decimated by the registry to about `maxPoints` points each (every k-th
 * iteration and the last), so no client receives, nor the service serialises, millions of rows.
 */
export function runCurves(registry: Registry, runId: string, maxPoints = 4000): RunCurves {
  const series: RunCurves['series'] = {};
  for (const [key, points] of Object.entries(registry.curves(runId, maxPoints).series)) {
    const scope: MetricRow['scope'] = key.startsWith('iter:') ? 'iteration' : 'epoch';
    series[key] = points.map((point) => ({ step: pointStep({ scope, step: point.step }), value: point.value }));
  }
  return { runId, series };
}

export const METRICS_CSV_HEADER = ['run_id', 'run_name', 'scope', 'split', 'step', 'epoch', 'metric', 'value'];

/** Metric rows of runs for CSV: step as in runCurves, epoch 1-based. */
export function metricsCsvRows(registry: Registry, runIds: string[]): unknown[][] {
  const rows: unknown[][] = [];
  for (const runId of runIds) {
    const run = registry.requireRun(runId);
    for (const m of registry.metrics(runId))
      rows.push([run.id, run.name, m.scope, m.split, pointStep(m), m.epoch + 1, m.name, m.value]);
  }
  return rows;
}
