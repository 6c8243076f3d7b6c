// Runs and checkpoint comparison: the runs table (status, best metric, only the config fields that
// differ), overlaid curves, CSV export; metrics of two or more checkpoints side by side, per-class
// accuracy, confusion matrices whose cells list and play their clips, flipped videos, weight change.
import { useEffect, useMemo, useState } from 'react';
import { ErrorText, JobProgress, percent, useCheckpoints } from '../../app/components.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { Plot } from '../../charts/Plot.tsx';
import { lineTraceType } from '../../charts/live-chart.ts';
import { decimate } from '../../charts/point-queue.ts';
import { useWorkbench } from '../../state/store.ts';
import type { Comparison, RunCurves } from '../../../core/protocol/workbench.ts';
import { differingFields } from './run-columns.ts';
import { JobsTable } from '../cluster/JobsTable.tsx';

function RunsTable() {
  const runs = useWorkbench((s) => s.runs);
  const setRuns = useWorkbench((s) => s.setRuns);
  const selected = useWorkbench((s) => s.selectedRuns);
  const toggle = useWorkbench((s) => s.toggleRun);
  const status = useWorkbench((s) => s.status);
  // Cluster runs have no training events here: the job watcher's events bring their state and metrics.
  const clusterRevision = useWorkbench((s) => s.clusterRevision);
  const clusterChanged = useWorkbench((s) => s.clusterChangedRuns);
  const [curves, setCurves] = useState<RunCurves[]>([]);
  const csv = useCommand('runs.csv');
  useEffect(() => {
    void bridge()
      .call('runs.list', {})
      .then(setRuns)
      .catch(() => undefined);
  }, [setRuns, status, clusterRevision]);
  const selectedChanged = clusterChanged.some((id) => selected.includes(id)) ? clusterRevision : 0;
  useEffect(() => {
    if (selected.length === 0) return setCurves([]);
    void bridge()
      .call('runs.curves', { runIds: selected })
      .then(setCurves)
      .catch(() => undefined);
  }, [selected, selectedChanged]);
  const columns = useMemo(() => differingFields(runs), [runs]);
  const names = new Map(runs.map((r) => [r.id, r.name]));
  // Long runs are min/max-decimated: the overlay stays responsive with many runs of many iterations.
  const lossTraces = curves.map((c) => {
    const points = c.series['iter:train:loss'] ?? [];
    const shown = decimate(
      points.map((p) => p.step),
      points.map((p) => p.value),
      1000,
    );
    return { type: lineTraceType(), mode: 'lines', name: `${names.get(c.runId) ?? c.runId} train loss`, x: shown.x, y: shown.y };
  });
  const accuracyTraces = curves.map((c) => ({
    type: 'scatter',
    mode: 'lines+markers',
    name: `${names.get(c.runId) ?? c.runId} val top-1`,
    x: (c.series['epoch:val:top1'] ?? []).map((p) => p.step),
    y: (c.series['epoch:val:top1'] ?? []).map((p) => p.value),
  }));
  return (
    <section className="panel" aria-labelledby="runs-heading">
      <h2 id="runs-heading">Runs ({runs.length})</h2>
      {runs.length === 0 ? (
        <p className="muted">No runs yet: start one on the Training page.</p>
      ) : (
        <div style={{ overflowX: 'auto' }}>
          <table aria-label="Runs">
            <thead>
              <tr>
                <th>Select</th>
                <th>Name</th>
                <th>Status</th>
                <th className="num">Epochs</th>
                <th className="num">Best</th>
                <th>Backend</th>
                {columns.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr key={run.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select run ${run.name}`}
                      checked={selected.includes(run.id)}
                      onChange={() => toggle(run.id)}
                    />
                  </td>
                  <td title={run.id}>{run.name}</td>
                  <td>{run.status}</td>
                  <td className="num">
                    {run.epochsDone}/{run.epochs}
                  </td>
                  <td className="num">{run.bestMetric ? `${run.bestMetric.name} ${percent(run.bestMetric.value)}` : '–'}</td>
                  <td>{run.backend}</td>
                  {columns.map((c) => (
                    <td key={c}>{run.flatConfig[c] ?? '–'}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="row">
        <button
          type="button"
          disabled={selected.length === 0 || csv.busy}
          onClick={async () => {
            const result = await csv.run({ runIds: selected });
            if (!result) return;
            const url = URL.createObjectURL(new Blob([result.csv], { type: 'text/csv' }));
            const link = document.createElement('a');
            link.href = url;
            link.download = 'runs.csv';
            link.click();
            setTimeout(() => URL.revokeObjectURL(url), 1000);
          }}
        >
          Export selected as CSV
        </button>
        <span className="muted">Select runs to overlay their curves.</span>
      </div>
      <ErrorText error={csv.error} />
      {curves.length > 0 && (
        <div className="grid2">
          <Plot
            label="Train loss of the selected runs"
            data={lossTraces}
            layout={{ title: { text: 'Train loss' }, xaxis: { title: { text: 'iteration' } } }}
          />
          <Plot
            label="Validation top-1 of the selected runs"
            data={accuracyTraces}
            layout={{ title: { text: 'Val top-1' }, xaxis: { title: { text: 'epoch' } } }}
          />
        </div>
      )}
    </section>
  );
}

function ClipList({
  comparison,
  cell,
}: {
  comparison: Comparison;
  cell: { checkpoint: number; truth: number; predicted: number };
}) {
  const videos = comparison.videos
    .map((video, index) => ({ video, index }))
    .filter(
      ({ video, index }) =>
        video.label === cell.truth && comparison.checkpoints[cell.checkpoint].predictions[index] === cell.predicted,
    );
  return (
    <div role="region" aria-label="Clips of the selected cell">
      <h2>
        {videos.length} clip(s): true {comparison.classNames[cell.truth]}, predicted {comparison.classNames[cell.predicted]} by{' '}
        {comparison.checkpoints[cell.checkpoint].label}
      </h2>
      <table>
        <thead>
          <tr>
            <th>Clip</th>
            <th>Video</th>
            {comparison.checkpoints.map((c) => (
              <th key={c.checkpoint}>{c.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {videos.map(({ video, index }) => (
            <tr key={video.path}>
              <td>
                <code>{video.path}</code>
              </td>
              <td>
                <video src={video.url} controls muted loop preload="metadata" aria-label={`Play ${video.path}`} width={96} />
              </td>
              {comparison.checkpoints.map((c) => (
                <td key={c.checkpoint} className={c.predictions[index] === video.label ? 'ok' : 'error'}>
                  {comparison.classNames[c.predictions[index]]}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ComparisonView({ comparison }: { comparison: Comparison }) {
  const [cell, setCell] = useState<{ checkpoint: number; truth: number; predicted: number } | null>(null);
  const classNames = comparison.classNames;
  const bars = comparison.checkpoints.map((c) => ({ type: 'bar', name: c.label, x: classNames, y: c.perClassAccuracy }));
  return (
    <div data-testid="comparison">
      <h2>Metrics</h2>
      <table aria-label="Metrics side by side">
        <thead>
          <tr>
            <th>Checkpoint</th>
            <th>Views (clips x crops)</th>
            <th className="num">Top-1</th>
            <th className="num">Top-5</th>
            <th className="num">Mean class accuracy</th>
          </tr>
        </thead>
        <tbody>
          {comparison.checkpoints.map((c) => (
            <tr key={c.checkpoint}>
              <td title={c.checkpoint}>{c.label}</td>
              <td>
                {c.views.clips} x {c.views.crops}
              </td>
              <td className="num">{percent(c.top1)}</td>
              <td className="num">{percent(c.top5)}</td>
              <td className="num">{percent(c.meanClassAccuracy)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Plot
        label="Per-class accuracy of each checkpoint"
        data={bars}
        layout={{ title: { text: 'Per-class accuracy' }, barmode: 'group', yaxis: { range: [0, 1] } }}
        height={280}
      />
      <h2>Confusion matrices (click a cell to list and play its clips)</h2>
      <div className="grid2">
        {comparison.checkpoints.map((c, k) => (
          <Plot
            key={c.checkpoint}
            testId={`confusion-${k}`}
            label={`Confusion matrix of ${c.label}: rows are true classes, columns predicted`}
            data={[
              {
                type: 'heatmap',
                z: c.confusion,
                x: classNames,
                y: classNames,
                colorscale: 'Blues',
                reversescale: true,
                showscale: false,
                texttemplate: '%{z}',
              },
            ]}
            layout={{
              title: { text: c.label },
              xaxis: { title: { text: 'predicted' } },
              yaxis: { title: { text: 'true' }, autorange: 'reversed' },
            }}
            height={300}
            onClickPoint={(point) =>
              setCell({
                checkpoint: k,
                truth: classNames.indexOf(String(point.y)),
                predicted: classNames.indexOf(String(point.x)),
              })
            }
          />
        ))}
      </div>
      <div className="row">
        <label htmlFor="cell-checkpoint">Or pick a cell:</label>
        <select
          id="cell-checkpoint"
          aria-label="Checkpoint of the cell"
          onChange={(e) =>
            setCell((old) => ({ truth: old?.truth ?? 0, predicted: old?.predicted ?? 0, checkpoint: Number(e.target.value) }))
          }
        >
          {comparison.checkpoints.map((c, k) => (
            <option key={c.checkpoint} value={k}>
              {c.label}
            </option>
          ))}
        </select>
        <select
          aria-label="True class"
          onChange={(e) =>
            setCell((old) => ({
              checkpoint: old?.checkpoint ?? 0,
              predicted: old?.predicted ?? 0,
              truth: Number(e.target.value),
            }))
          }
        >
          {classNames.map((n, i) => (
            <option key={n} value={i}>
              true {n}
            </option>
          ))}
        </select>
        <select
          aria-label="Predicted class"
          onChange={(e) =>
            setCell((old) => ({ checkpoint: old?.checkpoint ?? 0, truth: old?.truth ?? 0, predicted: Number(e.target.value) }))
          }
        >
          {classNames.map((n, i) => (
            <option key={n} value={i}>
              predicted {n}
            </option>
          ))}
        </select>
      </div>
      {cell && <ClipList comparison={comparison} cell={cell} />}
      <h2>Videos whose prediction flipped ({comparison.flipped.length})</h2>
      {comparison.flipped.length === 0 ? (
        <p className="muted">Every checkpoint predicts the same class for every video.</p>
      ) : (
        <table aria-label="Flipped predictions">
          <thead>
            <tr>
              <th>Video</th>
              <th>True</th>
              {comparison.checkpoints.map((c) => (
                <th key={c.checkpoint}>{c.label}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {comparison.flipped.map((f) => (
              <tr key={f.video}>
                <td>
                  <code>{comparison.videos[f.video].path}</code>
                </td>
                <td>{classNames[comparison.videos[f.video].label]}</td>
                {f.predictions.map((p, k) => (
                  <td key={k} className={p === comparison.videos[f.video].label ? 'ok' : 'error'}>
                    {classNames[p]}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>
        Weight change per block ({comparison.weightChange.labels[1]} vs {comparison.weightChange.labels[0]})
      </h2>
      <Plot
        label="Relative L2 weight change per block, stages by blocks"
        data={[
          {
            type: 'heatmap',
            z: comparison.weightChange.stages.map((row) => [
              ...row,
              ...new Array(Math.max(...comparison.weightChange.stages.map((r) => r.length)) - row.length).fill(null),
            ]),
            y: comparison.weightChange.stages.map((_, s) => `stage ${s + 1}`),
            x: Array.from(
              { length: Math.max(...comparison.weightChange.stages.map((r) => r.length)) },
              (_, b) => `block ${b + 1}`,
            ),
            colorscale: 'Viridis',
            texttemplate: '%{z:.3f}',
          },
        ]}
        layout={{ title: { text: '‖W₂ − W₁‖ / ‖W₁‖' }, yaxis: { autorange: 'reversed' } }}
        height={260}
      />
    </div>
  );
}

function CompareCheckpoints() {
  const checkpoints = useCheckpoints();
  const datasets = useWorkbench((s) => s.datasets);
  const comparison = useWorkbench((s) => s.comparison);
  const setComparison = useWorkbench((s) => s.setComparison);
  const [chosen, setChosen] = useState<string[]>([]);
  const [datasetIndex, setDatasetIndex] = useState(0);
  const [views, setViews] = useState('1x1');
  const command = useCommand('compare.checkpoints');
  const dataset = datasets[datasetIndex];
  return (
    <section className="panel" aria-labelledby="compare-heading">
      <h2 id="compare-heading">Compare checkpoints</h2>
      {checkpoints.length < 2 ? (
        <p className="muted">Needs two or more checkpoints: train a run (each epoch writes one).</p>
      ) : (
        <fieldset>
          <legend>Checkpoints (pick two to four)</legend>
          {checkpoints.map((c) => (
            <div key={c.path}>
              <input
                type="checkbox"
                id={`cp-${c.path}`}
                checked={chosen.includes(c.path)}
                onChange={() =>
                  setChosen((old) => (old.includes(c.path) ? old.filter((p) => p !== c.path) : [...old, c.path].slice(-4)))
                }
              />
              <label htmlFor={`cp-${c.path}`}>
                {c.runName} epoch {c.epoch} ({c.reasons.join(', ')}){c.metric !== null ? ` val ${percent(c.metric)}` : ''}
              </label>
            </div>
          ))}
        </fieldset>
      )}
      <div className="row">
        <label htmlFor="compare-dataset">Evaluate on</label>
        <select id="compare-dataset" value={datasetIndex} onChange={(e) => setDatasetIndex(Number(e.target.value))}>
          {datasets.map((d, i) => (
            <option key={d.trainAnn} value={i}>
              {d.name}: {d.valAnn ? 'val' : 'train'} list
            </option>
          ))}
        </select>
        <label htmlFor="compare-views">Views (clips x crops)</label>
        <select id="compare-views" value={views} onChange={(e) => setViews(e.target.value)}>
          <option value="1x1">1 x 1 (validation)</option>
          <option value="2x1">2 x 1</option>
          <option value="4x3">4 x 3 (official K400 test)</option>
        </select>
        <button
          type="button"
          className="primary"
          disabled={chosen.length < 2 || !dataset || command.busy}
          onClick={async () => {
            if (!dataset) return;
            const [clips, crops] = views.split('x').map(Number);
            const result = await command.run({
              checkpoints: chosen,
              annFile: dataset.valAnn ?? dataset.trainAnn,
              root: dataset.root,
              views: { clips, crops: crops === 3 ? 3 : 1 },
            });
            if (result) setComparison(result);
          }}
        >
          {command.busy ? 'Comparing…' : 'Compare'}
        </button>
      </div>
      <JobProgress command="compare.checkpoints" />
      <ErrorText error={command.error} />
      {comparison && <ComparisonView comparison={comparison} />}
    </section>
  );
}

export function RunsPage() {
  return (
    <>
      <h1 tabIndex={-1}>Runs and checkpoints</h1>
      <RunsTable />
      <JobsTable title="Cluster jobs of these runs" />
      <CompareCheckpoints />
    </>
  );
}
