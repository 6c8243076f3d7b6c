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

/** The curves of a run keyed "iter:SPLIT:NAME" / "epoch:SPLIT:NAME", every step 1-based. */
export function runCurves(registry: Registry, runId: string): RunCurves {
  const series: RunCurves['series'] = {};
  for (const row of registry.metrics(runId)) {
    if (row.value === null) continue;
    const key = `${row.scope === 'iteration' ? 'iter' : 'epoch'}:${row.split}:${row.name}`;
    (series[key] ??= []).push({ step: pointStep(row), value: row.value });
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
