// Training: start, pause, stop, resume; live curves (loss, lr, val loss, top-1, top-5) streamed into
// Plotly with extendTraces; smoothing and log scale; throughput, ETA, backend and the run's log.
import { useEffect, useRef, useState } from 'react';
import { ErrorText } from '../../app/components.tsx';
import { useCommand } from '../../app/use-command.ts';
import { bridge } from '../../bridge/client.ts';
import { LiveChart } from '../../charts/live-chart.ts';
import { useWorkbench, workbenchStore } from '../../state/store.ts';
import { parseConfigText } from '../config/config-edit.ts';
import type { TrainEvent } from '../../../core/protocol/workbench.ts';

declare global {
  interface Window {
    /** Chart statistics read by the end-to-end tests and the UI benchmark. */
    __vswinCharts?: Record<string, LiveChart['stats']>;
  }
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return '–';
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m > 0 ? `${m} min ${s} s` : `${s} s`;
}

function Stats() {
  const status = useWorkbench((s) => s.status);
  const backend = useWorkbench((s) => s.backend);
  const iteration = useWorkbench((s) => s.iteration);
  const total = useWorkbench((s) => s.totalIterations);
  const epoch = useWorkbench((s) => s.epoch);
  const epochs = useWorkbench((s) => s.epochs);
  const speed = useWorkbench((s) => s.clipsPerSecond);
  const eta = useWorkbench((s) => s.etaSeconds);
  const valTop1 = useWorkbench((s) => s.valTop1);
  const skipped = useWorkbench((s) => s.skipped);
  return (
    <div className="stats" role="status" aria-label="Training status">
      <div>
        <span className="muted">Status</span>
        <span className="value" data-testid="train-status">
          {status}
        </span>
      </div>
      <div>
        <span className="muted">Epoch</span>
        <span className="value">
          {epoch}/{epochs}
        </span>
      </div>
      <div>
        <span className="muted">Iteration</span>
        <span className="value">
          {iteration}/{total}
        </span>
      </div>
      <div>
        <span className="muted">Throughput</span>
        <span className="value">{speed.toFixed(1)} clips/s</span>
      </div>
      <div>
        <span className="muted">ETA</span>
        <span className="value">{formatEta(eta)}</span>
      </div>
      <div>
        <span className="muted">Val top-1</span>
        <span className="value" data-testid="val-top1">
          {valTop1 === null ? '–' : `${(valTop1 * 100).toFixed(1)}%`}
        </span>
      </div>
      <div title="Unreadable or too short videos left out of this run's epochs; vswin runs show RUN_ID lists them with the reason">
        <span className="muted">Skipped samples</span>
        <span className="value" data-testid="skipped-samples">
          {skipped}
        </span>
      </div>
      <div>
        <span className="muted">Backend</span>
        <span className="value">{backend || '–'}</span>
      </div>
    </div>
  );
}

function Log() {
  const log = useWorkbench((s) => s.log);
  const end = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (end.current) end.current.scrollTop = end.current.scrollHeight;
  }, [log]);
  return (
    <pre ref={end} className="log" aria-label="Training log" tabIndex={0}>
      {log.join('\n')}
    </pre>
  );
}

interface Charts {
  loss: LiveChart;
  lr: LiveChart;
  accuracy: LiveChart;
}

function Curves() {
  const lossElement = useRef<HTMLDivElement>(null);
  const lrElement = useRef<HTMLDivElement>(null);
  const accuracyElement = useRef<HTMLDivElement>(null);
  const charts = useRef<Charts | null>(null);
  const [smoothing, setSmoothing] = useState(0.6);
  const [logScale, setLogScale] = useState(false);
  const [overlay, setOverlay] = useState<string[]>([]);
  const theme = useWorkbench((s) => s.theme);
  const runs = useWorkbench((s) => s.runs);
  const setRuns = useWorkbench((s) => s.setRuns);
  const currentRun = useWorkbench((s) => s.runId);
  const status = useWorkbench((s) => s.status);

  useEffect(() => {
    if (!lossElement.current || !lrElement.current || !accuracyElement.current) return;
    const made: Charts = {
      loss: new LiveChart(
        lossElement.current,
        [
          { name: 'train loss', smooth: true, color: '#2456c7' },
          { name: 'val loss', mode: 'lines+markers', color: '#d9480f' },
        ],
        { title: 'Loss', xTitle: 'iteration', yTitle: 'cross-entropy' },
      ),
      lr: new LiveChart(lrElement.current, [{ name: 'learning rate', color: '#2b8a3e' }], {
        title: 'Learning rate',
        xTitle: 'iteration',
        yTitle: 'lr',
      }),
      accuracy: new LiveChart(
        accuracyElement.current,
        [
          { name: 'val top-1', mode: 'lines+markers', color: '#2456c7' },
          { name: 'val top-5', mode: 'lines+markers', color: '#7048e8' },
          { name: 'train top-1', mode: 'lines+markers', color: '#868e96' },
        ],
        { title: 'Accuracy', xTitle: 'epoch', yTitle: 'accuracy' },
      ),
    };
    charts.current = made;
    window.__vswinCharts = { loss: made.loss.stats, lr: made.lr.stats, accuracy: made.accuracy.stats };
    let perEpoch = 1;
    const draw = (event: TrainEvent, sentAt?: number) => {
      switch (event.kind) {
        case 'run-started':
          perEpoch = event.iterationsPerEpoch;
          if (!event.resumed) for (const chart of Object.values(made)) chart.clear();
          else {
            made.loss.dropAfter(event.startIteration);
            made.lr.dropAfter(event.startIteration);
            made.accuracy.dropAfter(event.startEpoch);
          }
          return;
        case 'iteration':
          made.loss.push(0, event.iteration + 1, event.loss, sentAt);
          made.lr.push(0, event.iteration + 1, event.lr);
          return;
        case 'epoch':
          if (event.val) {
            made.loss.push(1, (event.epoch + 1) * perEpoch, event.val.loss, sentAt);
            made.accuracy.push(0, event.epoch + 1, event.val.top1);
            made.accuracy.push(1, event.epoch + 1, event.val.top5);
          }
          made.accuracy.push(2, event.epoch + 1, event.train.top1);
          return;
        case 'checkpoint':
        case 'paused':
        case 'resumed':
        case 'run-finished':
          return;
        default: {
          const unknown: never = event;
          throw new Error(`unknown training event ${JSON.stringify(unknown)}`);
        }
      }
    };
    // A run already going when the page opens: draw its history from the registry first.
    const current = workbenchStore.getState().runId;
    if (current) {
      void bridge()
        .call('runs.curves', { runIds: [current] })
        .then(([curves]) => {
          const total = workbenchStore.getState().totalIterations;
          const epochs = workbenchStore.getState().epochs;
          perEpoch = epochs > 0 ? Math.max(1, Math.round(total / epochs)) : 1;
          for (const p of curves?.series['iter:train:loss'] ?? []) made.loss.push(0, p.step, p.value);
          for (const p of curves?.series['iter:train:lr'] ?? []) made.lr.push(0, p.step, p.value);
          for (const p of curves?.series['epoch:val:loss'] ?? []) made.loss.push(1, p.step * perEpoch, p.value);
          for (const p of curves?.series['epoch:val:top1'] ?? []) made.accuracy.push(0, p.step, p.value);
          for (const p of curves?.series['epoch:val:top5'] ?? []) made.accuracy.push(1, p.step, p.value);
          for (const p of curves?.series['epoch:train:top1'] ?? []) made.accuracy.push(2, p.step, p.value);
        })
        .catch(() => undefined);
    }
    const unsubscribe = bridge().onEvent((event) => {
      if (event.kind !== 'train') return;
      const runId = workbenchStore.getState().runId;
      if (runId && event.event.runId !== runId) return;
      draw(event.event, event.sentAt);
    });
    return () => {
      unsubscribe();
      for (const chart of Object.values(made)) chart.dispose();
      charts.current = null;
    };
  }, []);

  useEffect(() => {
    void bridge()
      .call('runs.list', {})
      .then(setRuns)
      .catch(() => undefined);
  }, [setRuns, status]);

  useEffect(() => {
    // Finished runs under the live curve: a background layer drawn once (see LiveChart.setBackground).
    const names = new Map(workbenchStore.getState().runs.map((r) => [r.id, r.name]));
    if (overlay.length === 0) {
      charts.current?.loss.setBackground([]);
      return;
    }
    void bridge()
      .call('runs.curves', { runIds: overlay })
      .then((curves) =>
        charts.current?.loss.setBackground(
          curves.map((c) => {
            const points = c.series['iter:train:loss'] ?? [];
            return { name: names.get(c.runId) ?? c.runId, x: points.map((p) => p.step), y: points.map((p) => p.value) };
          }),
        ),
      )
      .catch(() => undefined);
  }, [overlay]);

  useEffect(() => {
    charts.current?.loss.setSmoothing(smoothing);
  }, [smoothing]);
  useEffect(() => {
    charts.current?.loss.setLogScale(logScale);
    charts.current?.lr.setLogScale(logScale);
  }, [logScale]);
  useEffect(() => {
    if (!charts.current) return;
    for (const chart of Object.values(charts.current)) chart.restyle();
  }, [theme]);

  return (
    <section className="panel" aria-labelledby="curves-heading">
      <h2 id="curves-heading">Curves</h2>
      <div className="row">
        <label htmlFor="smoothing">Smoothing</label>
        <input
          id="smoothing"
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={smoothing}
          onChange={(e) => setSmoothing(Number(e.target.value))}
        />
        <span>{smoothing.toFixed(2)}</span>
        <input id="log-scale" type="checkbox" checked={logScale} onChange={(e) => setLogScale(e.target.checked)} />
        <label htmlFor="log-scale">Log scale</label>
        <label htmlFor="overlay-runs">Overlay runs</label>
        <select
          id="overlay-runs"
          multiple
          size={Math.min(4, Math.max(2, runs.length))}
          value={overlay}
          onChange={(e) => setOverlay([...e.target.selectedOptions].map((o) => o.value))}
        >
          {runs
            .filter((r) => r.id !== currentRun)
            .map((r) => (
              <option key={r.id} value={r.id}>
                {r.name} ({r.status})
              </option>
            ))}
        </select>
      </div>
      <div className="grid2">
        <div
          ref={lossElement}
          className="plot"
          role="img"
          aria-label="Loss curves: train loss per iteration, validation loss per epoch"
          data-testid="loss-chart"
        />
        <div
          ref={accuracyElement}
          className="plot"
          role="img"
          aria-label="Accuracy per epoch: validation top-1 and top-5, train top-1"
          data-testid="accuracy-chart"
        />
        <div ref={lrElement} className="plot" role="img" aria-label="Learning rate per iteration" data-testid="lr-chart" />
      </div>
    </section>
  );
}

/** When the demo recipe's run ends, what it reached and what `vswin demo` (the same recipe) promises. */
function DemoResult() {
  const presetName = useWorkbench((s) => s.presetName);
  const status = useWorkbench((s) => s.status);
  const valTop1 = useWorkbench((s) => s.valTop1);
  if (presetName !== 'demo-micro' || status !== 'completed' || valTop1 === null) return null;
  return (
    <p role="status" aria-label="Demo result" className={valTop1 >= 0.9 ? undefined : 'muted'}>
      The demo finished at {(valTop1 * 100).toFixed(1)}% validation top-1. It is the recipe <code>vswin demo</code> runs; with its
      60 epochs it reaches at least 90%.
    </p>
  );
}

export function TrainPage() {
  const configText = useWorkbench((s) => s.configText);
  const presetName = useWorkbench((s) => s.presetName);
  const runId = useWorkbench((s) => s.runId);
  const status = useWorkbench((s) => s.status);
  const setStarting = useWorkbench((s) => s.setStarting);
  const [name, setName] = useState('');
  const start = useCommand('train.start');
  const control = useCommand('train.control');
  const resume = useCommand('train.resume');
  const parsed = parseConfigText(configText);
  const presets = useWorkbench((s) => s.presets);
  const preset = presets.find((p) => p.name === presetName);
  // Compared as parsed values: whitespace alone is not an edit.
  const edited = Boolean(preset && parsed.ok && JSON.stringify(parsed.value) !== JSON.stringify(preset.config));
  const running = status === 'running' || status === 'starting';
  return (
    <>
      <h1 tabIndex={-1}>Training</h1>
      <section className="panel" aria-labelledby="run-heading">
        <h2 id="run-heading">Run</h2>
        <p className="muted" data-testid="train-config">
          Config: {presetName || 'none'}
          {edited ? ', edited' : ''} (edit it on the Config page).
        </p>
        <div className="row">
          <label htmlFor="run-name">Run name</label>
          <input id="run-name" value={name} placeholder={presetName} onChange={(e) => setName(e.target.value)} />
          <button
            type="button"
            className="primary"
            disabled={!parsed.ok || running || status === 'paused' || start.busy}
            onClick={async () => {
              if (!parsed.ok) return;
              const runName = name || presetName || 'run';
              setStarting(runName);
              const result = await start.run({ config: parsed.value, name: runName });
              if (!result) workbenchStore.setState({ status: 'failed' });
              else if (!workbenchStore.getState().runId || workbenchStore.getState().runId !== result.runId)
                workbenchStore.setState({ runId: result.runId });
            }}
          >
            Start
          </button>
          <button
            type="button"
            disabled={status !== 'running' || !runId}
            onClick={() => runId && void control.run({ runId, command: 'pause' })}
          >
            Pause
          </button>
          <button
            type="button"
            disabled={!runId || !(status === 'paused' || status === 'stopped' || status === 'failed' || status === 'interrupted')}
            onClick={() => {
              if (!runId) return;
              if (status === 'paused') void control.run({ runId, command: 'resume' });
              else void resume.run({ runId });
            }}
          >
            Resume
          </button>
          <button
            type="button"
            disabled={!runId || !(status === 'running' || status === 'paused')}
            onClick={() => runId && void control.run({ runId, command: 'stop' })}
          >
            Stop
          </button>
        </div>
        {!parsed.ok && <ErrorText error={`The config is not valid JSON: ${parsed.message}`} />}
        <ErrorText error={start.error ?? control.error ?? resume.error} />
        <Stats />
        <DemoResult />
      </section>
      <Curves />
      <section className="panel" aria-labelledby="log-heading">
        <h2 id="log-heading">Log</h2>
        <Log />
      </section>
    </>
  );
}
