// Runs and checkpoint comparison: the runs table (status, best metric, only the config fields that
// differ), overlaid curves, CSV export; metrics of two or more checkpoints side by side, per-class
// accuracy, confusion matrices whose cells list and play their clips, flipped videos, weight change.
import { useEffect, useMemo, useRef, useState } from 'react';
import { ErrorText, JobProgress, percent, useCheckpoints } from '../../app/components.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { Plot } from '../../charts/Plot.tsx';
import { lineTraceType } from '../../charts/live-chart.ts';
import { decimate } from '../../charts/point-queue.ts';
import { useWorkbench, workbenchStore } from '../../state/store.ts';
import type { Comparison, RunCurves } from '../../../core/protocol/workbench.ts';
import { differingFields, metricLabel } from './run-columns.ts';
import { JobsTable } from '../cluster/JobsTable.tsx';

type XAxis = 'step' | 'relative';

/** One chart of the selected runs: any recorded metric, against its step or the fraction of the run done. */
function MetricOverlay({
  curves,
  names,
  metrics,
  initial,
  id,
}: {
  curves: RunCurves[];
  names: Map<string, string>;
  metrics: string[];
  initial: string;
  id: string;
}) {
  const [metric, setMetric] = useState(initial);
  const [axis, setAxis] = useState<XAxis>('step');
  const chosen = metrics.includes(metric) ? metric : (metrics[0] ?? metric);
  const unit = chosen.startsWith('iter:') ? 'iteration' : 'epoch';
  // Long runs are min/max-decimated: the overlay stays responsive with many runs of many iterations.
  const traces = curves.map((c) => {
    const points = c.series[chosen] ?? [];
    const last = points.length ? points[points.length - 1].step : 1;
    // Steps arrive 1-based (iterations and epochs, as core/app/runs.ts encodes them).
    const x = points.map((p) => (axis === 'relative' ? p.step / Math.max(1, last) : p.step));
    const shown = decimate(
      x,
      points.map((p) => p.value),
      1000,
    );
    return {
      type: unit === 'iteration' ? lineTraceType() : 'scatter',
      mode: unit === 'iteration' ? 'lines' : 'lines+markers',
      name: `${names.get(c.runId) ?? c.runId}`,
      x: shown.x,
      y: shown.y,
    };
  });
  return (
    <div>
      <div className="row">
        <label htmlFor={`${id}-metric`}>Metric</label>
        <select id={`${id}-metric`} value={chosen} onChange={(e) => setMetric(e.target.value)}>
          {metrics.map((m) => (
            <option key={m} value={m}>
              {metricLabel(m)}
            </option>
          ))}
        </select>
        <label htmlFor={`${id}-axis`}>x-axis</label>
        <select id={`${id}-axis`} value={axis} onChange={(e) => setAxis(e.target.value as XAxis)}>
          <option value="step">{unit}</option>
          <option value="relative">fraction of the run (runs of different lengths side by side)</option>
        </select>
      </div>
      <Plot
        label={`${metricLabel(chosen)} of the selected runs`}
        data={traces}
        layout={{
          title: { text: metricLabel(chosen) },
          xaxis: { title: { text: axis === 'relative' ? 'fraction of the run' : unit } },
        }}
      />
    </div>
  );
}

/** Runs the service can continue from their last checkpoint (a run that was going when the service died is interrupted). */
const RESUMABLE = new Set(['interrupted', 'stopped', 'failed']);

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
  const resume = useCommand('train.resume');
  const setPage = useWorkbench((s) => s.setPage);
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
  // The Epochs column already shows epochs done of planned: not repeated as a config column.
  const columns = useMemo(() => differingFields(runs).filter((field) => field !== 'epochs'), [runs]);
  const selectedRuns = runs.filter((r) => selected.includes(r.id));
  const diff = differingFields(selectedRuns);
  const names = new Map(runs.map((r) => [r.id, r.name]));
  const metrics = useMemo(() => [...new Set(curves.flatMap((c) => Object.keys(c.series)))].sort(), [curves]);
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
                  <td>
                    {run.status}
                    {RESUMABLE.has(run.status) && (
                      <button
                        type="button"
                        aria-label={`Resume ${run.name}`}
                        disabled={resume.busy}
                        onClick={async () => {
                          const result = await resume.run({ runId: run.id });
                          if (!result) return;
                          workbenchStore.setState({ runId: result.runId, runName: run.name, status: 'starting' });
                          setPage('train');
                        }}
                      >
                        Resume
                      </button>
                    )}
                  </td>
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
        <span className="muted">
          Select runs to overlay their curves and list the parameters that differ. The registry keeps no wall-clock time per
          point, so the x-axis is the step or the fraction of the run.
        </span>
      </div>
      <ErrorText error={csv.error ?? resume.error} />
      {selectedRuns.length >= 2 && (
        <>
          <h3>Parameters that differ between the selected runs</h3>
          {diff.length === 0 ? (
            <p className="muted">The selected runs have the same config.</p>
          ) : (
            <table aria-label="Parameters that differ">
              <thead>
                <tr>
                  <th>Parameter</th>
                  {selectedRuns.map((r) => (
                    <th key={r.id}>{r.name}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {diff.map((field) => (
                  <tr key={field}>
                    <td>
                      <code>{field}</code>
                    </td>
                    {selectedRuns.map((r) => (
                      <td key={r.id}>{r.flatConfig[field] ?? '(not set)'}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {curves.length > 0 && (
        <div className="grid2">
          <MetricOverlay curves={curves} names={names} metrics={metrics} initial="iter:train:loss" id="overlay-left" />
          <MetricOverlay curves={curves} names={names} metrics={metrics} initial="epoch:val:top1" id="overlay-right" />
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
  const [playing, setPlaying] = useState<string | null>(null);
  const shown = videos.find(({ video }) => video.path === playing)?.video ?? videos[0]?.video ?? null;
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
              <th key={c.checkpoint}>{c.label} (confidence)</th>
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
                <button type="button" onClick={() => setPlaying(video.path)} aria-label={`Open ${video.path} in the player`}>
                  <video src={video.url} muted preload="metadata" width={96} aria-hidden="true" />
                </button>
              </td>
              {comparison.checkpoints.map((c) => (
                <td key={c.checkpoint} className={c.predictions[index] === video.label ? 'ok' : 'error'}>
                  {comparison.classNames[c.predictions[index]]} ({percent(c.confidence[index])})
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {shown && <ClipPlayer key={shown.path} path={shown.path} url={shown.url} />}
    </div>
  );
}

/** Browsers do not report a video's frame rate: a step is 1/25 s, one frame of the usual 25 fps clips. */
const FRAME_STEP_SECONDS = 1 / 25;

/** A large player for one clip with frame stepping (the videos are a few seconds long). */
function ClipPlayer({ path, url }: { path: string; url: string }) {
  const video = useRef<HTMLVideoElement>(null);
  const [time, setTime] = useState(0);
  const step = (frames: number) => {
    const element = video.current;
    if (!element) return;
    element.pause();
    element.currentTime = Math.min(Math.max(0, element.currentTime + frames * FRAME_STEP_SECONDS), element.duration || Infinity);
  };
  return (
    <figure className="clip-player" aria-label={`Player of ${path}`}>
      <video
        ref={video}
        src={url}
        controls
        muted
        loop
        preload="auto"
        aria-label={`Play ${path}`}
        onTimeUpdate={(e) => setTime(e.currentTarget.currentTime)}
        onSeeked={(e) => setTime(e.currentTarget.currentTime)}
      />
      <figcaption className="row">
        <button type="button" onClick={() => step(-1)}>
          ◀ Previous frame
        </button>
        <button type="button" onClick={() => step(1)}>
          Next frame ▶
        </button>
        <span data-testid="clip-time">
          {time.toFixed(2)} s (frame {Math.round(time / FRAME_STEP_SECONDS) + 1} at 25 fps)
        </span>
        <code>{path}</code>
      </figcaption>
    </figure>
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
      <div className="row cell-picker">
        <label htmlFor="cell-checkpoint">Or pick a cell:</label>
        <select
          id="cell-checkpoint"
          aria-label="Checkpoint of the cell"
          value={cell?.checkpoint ?? 0}
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
          value={cell?.truth ?? 0}
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
          value={cell?.predicted ?? 0}
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
