// A live curve chart that never re-renders React: Plotly.react once, then at most one extendTraces
// per animation frame with every point that arrived since (architecture.md, convention 11).
import Plotly, { type Trace } from 'plotly.js-strict-dist-min';
import { PointQueue, Smoother } from './point-queue.ts';

let webgl: boolean | null = null;
/** WebGL traces draw hundreds of thousands of points; without WebGL, SVG traces still work. */
export function lineTraceType(): 'scattergl' | 'scatter' {
  if (webgl === null) {
    try {
      webgl = Boolean(document.createElement('canvas').getContext('webgl'));
    } catch {
      webgl = false;
    }
  }
  return webgl ? 'scattergl' : 'scatter';
}

export interface SeriesSpec {
  name: string;
  /** 'markers+lines' for sparse per-epoch values. */
  mode?: string;
  /** Adds a smoothed companion trace drawn over a faded raw trace. */
  smooth?: boolean;
  color?: string;
}

export interface LiveChartStats {
  flushes: number;
  points: number;
  latencies: number[];
}

export class LiveChart {
  private readonly queue = new PointQueue();
  private readonly smoothers: Smoother[] = [];
  /** Trace index of series i, and of its smoothed companion (or -1). */
  private readonly rawIndex: number[] = [];
  private readonly smoothIndex: number[] = [];
  private frame = 0;
  private ready: Promise<unknown>;
  private logScale = false;
  readonly stats: LiveChartStats = { flushes: 0, points: 0, latencies: [] };

  constructor(private readonly element: HTMLElement, private readonly series: SeriesSpec[], private readonly layout: { title: string; xTitle: string; yTitle: string }, private smoothing = 0.6) {
    this.ready = this.draw();
  }

  private traces(): Trace[] {
    const traces: Trace[] = [];
    this.rawIndex.length = 0;
    this.smoothIndex.length = 0;
    this.smoothers.length = 0;
    for (const spec of this.series) {
      this.rawIndex.push(traces.length);
      const history = this.queue.history.get(traces.length);
      traces.push({ type: lineTraceType(), mode: spec.mode ?? 'lines', name: spec.name, x: history ? [...history.x] : [], y: history ? [...history.y] : [], line: { color: spec.color, width: 1 }, opacity: spec.smooth && this.smoothing > 0 ? 0.35 : 1 });
      const smoother = new Smoother(spec.smooth ? this.smoothing : 0);
      this.smoothers.push(smoother);
      if (spec.smooth && this.smoothing > 0) {
        this.smoothIndex.push(traces.length);
        const raw = history?.y ?? [];
        traces.push({ type: lineTraceType(), mode: 'lines', name: `${spec.name} (smoothed)`, x: history ? [...history.x] : [], y: raw.map((v) => smoother.next(v)), line: { color: spec.color, width: 2 } });
      } else {
        this.smoothIndex.push(-1);
      }
    }
    return traces;
  }

  private draw(): Promise<unknown> {
    const style = getComputedStyle(document.documentElement);
    const text = style.getPropertyValue('--text').trim() || '#222';
    const grid = style.getPropertyValue('--grid').trim() || '#ddd';
    return Plotly.react(
      this.element,
      this.traces(),
      {
        title: { text: this.layout.title, font: { size: 14, color: text } },
        xaxis: { title: { text: this.layout.xTitle }, color: text, gridcolor: grid },
        yaxis: { title: { text: this.layout.yTitle }, type: this.logScale ? 'log' : 'linear', color: text, gridcolor: grid },
        paper_bgcolor: 'rgba(0,0,0,0)',
        plot_bgcolor: 'rgba(0,0,0,0)',
        legend: { orientation: 'h', font: { color: text } },
        margin: { l: 55, r: 15, t: 35, b: 40 },
        // Keeps the user's zoom and pan while points stream in.
        uirevision: 'live',
        autosize: true,
      },
      { displaylogo: false, responsive: true },
    );
  }

  /** Queues one point of series `series`; drawn on the next animation frame. */
  push(series: number, x: number, y: number, sentAt?: number): void {
    const raw = this.rawIndex[series];
    this.queue.push(raw, x, y, sentAt);
    const smooth = this.smoothIndex[series];
    if (smooth >= 0) this.queue.push(smooth, x, this.smoothers[series].next(y));
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    this.frame = 0;
    const drained = this.queue.drain();
    if (!drained) return;
    this.ready = this.ready.then(async () => {
      await Plotly.extendTraces(this.element, { x: drained.x, y: drained.y }, drained.indices);
      this.stats.flushes += 1;
      this.stats.points += drained.x.reduce((sum, xs) => sum + xs.length, 0);
      const now = Date.now();
      for (const sent of drained.sentAt) this.stats.latencies.push(now - sent);
      this.element.dataset.points = String(this.stats.points);
    });
  }

  setSmoothing(weight: number): void {
    this.smoothing = weight;
    this.ready = this.ready.then(() => this.draw());
  }

  setLogScale(on: boolean): void {
    this.logScale = on;
    this.ready = this.ready.then(() => Plotly.relayout(this.element, { 'yaxis.type': on ? 'log' : 'linear' }));
  }

  /** Redraws with the current theme colours. */
  restyle(): void {
    this.ready = this.ready.then(() => this.draw());
  }

  clear(): void {
    this.queue.clear();
    this.ready = this.ready.then(() => this.draw());
  }

  dispose(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    Plotly.purge(this.element);
  }
}
