// A live curve chart that never re-renders React: Plotly.react once, then at most one extendTraces
// per animation frame with every point that arrived since (architecture.md, convention 11).
import Plotly, { type Trace } from 'plotly.js-strict-dist-min';
import { decimate, PointQueue, Smoother } from './point-queue.ts';

/**
 * Most points a trace shows. Plotly redraws every trace on each extendTraces, so the cost of a frame
 * follows the points on screen: longer traces are min/max-decimated from the full history, and
 * re-decimated (a rare full redraw) when appended points take them past the limit again.
 */
export const MAX_SHOWN_POINTS = 2000;

let webgl: boolean | null = null;
/** WebGL traces draw hundreds of thousands of points; without WebGL, SVG traces still work. */
export function lineTraceType(): 'scattergl' | 'scatter' {
  if (webgl === null) {
    // `?traces=svg` forces SVG traces (software-rendered WebGL, as in headless Chromium, can be slower).
    if (new URLSearchParams(window.location.search).get('traces') === 'svg') webgl = false;
  }
  if (webgl === null) {
    try {
      const context = document.createElement('canvas').getContext('webgl');
      const info = context?.getExtension('WEBGL_debug_renderer_info');
      const renderer = context && info ? String(context.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
      // Software WebGL (SwiftShader, llvmpipe: headless or GPU-less machines) draws lines slower than SVG.
      webgl = Boolean(context) && !/swiftshader|llvmpipe|software/i.test(renderer);
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
  /** Full decimated redraws (Plotly.react) instead of an append. */
  redraws: number;
  points: number;
  latencies: number[];
  /** Milliseconds of main-thread work per update (Plotly's append or redraw). */
  updateMs: number[];
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
  /** Points currently held by each Plotly trace. */
  private shown: number[] = [];
  readonly stats: LiveChartStats = { flushes: 0, redraws: 0, points: 0, latencies: [], updateMs: [] };

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
      const raw = history ? decimate(history.x, history.y, MAX_SHOWN_POINTS / 4) : { x: [], y: [] };
      this.shown[traces.length] = raw.x.length;
      traces.push({ type: lineTraceType(), mode: spec.mode ?? 'lines', name: spec.name, x: raw.x, y: raw.y, line: { color: spec.color, width: 1 }, opacity: spec.smooth && this.smoothing > 0 ? 0.35 : 1 });
      const smoother = new Smoother(spec.smooth ? this.smoothing : 0);
      this.smoothers.push(smoother);
      if (spec.smooth && this.smoothing > 0) {
        this.smoothIndex.push(traces.length);
        const values = (history?.y ?? []).map((v) => smoother.next(v));
        const smooth = decimate(history?.x ?? [], values, MAX_SHOWN_POINTS / 4);
        // The smoothed trace's own history follows the new weight.
        this.queue.history.set(traces.length, { x: [...(history?.x ?? [])], y: values });
        this.shown[traces.length] = smooth.x.length;
        traces.push({ type: lineTraceType(), mode: 'lines', name: `${spec.name} (smoothed)`, x: smooth.x, y: smooth.y, line: { color: spec.color, width: 2 } });
      } else {
        this.smoothIndex.push(-1);
      }
    }
    return traces;
  }

  private draw(): Promise<unknown> {
    // The redraw takes every point from history, so points still queued must not be appended again.
    const pending = this.queue.drain();
    if (pending) this.stats.points += pending.x.reduce((sum, xs) => sum + xs.length, 0);
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
    const overflow = drained.indices.some((trace, k) => (this.shown[trace] ?? 0) + drained.x[k].length > MAX_SHOWN_POINTS);
    this.ready = this.ready.then(async () => {
      const started = performance.now();
      if (overflow) {
        // History already holds the drained points: one decimated redraw replaces the append.
        await this.draw();
        this.stats.redraws += 1;
      } else {
        await Plotly.extendTraces(this.element, { x: drained.x, y: drained.y }, drained.indices);
        drained.indices.forEach((trace, k) => (this.shown[trace] = (this.shown[trace] ?? 0) + drained.x[k].length));
      }
      this.stats.flushes += 1;
      this.stats.updateMs.push(performance.now() - started);
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
