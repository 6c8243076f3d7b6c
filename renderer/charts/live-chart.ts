// A live curve chart that never re-renders React: Plotly.react once, then at most one extendTraces
// per animation frame with every point that arrived since (architecture.md, convention 11).
import Plotly, { type PlotElement, type Trace } from 'plotly.js-strict-dist-min';
import { decimate, decimateWindow, PointQueue, Smoother } from './point-queue.ts';

/**
 * Most points a trace shows. Plotly redraws every trace on each extendTraces, so the cost of a frame
 * follows the points on screen: longer traces are min/max-decimated from the full history, and
 * re-decimated (a rare full redraw) when appended points take them past the limit again. A zoom
 * into a decimated trace redraws it from the history inside the zoomed x range, so detail appears.
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

const rawKey = (series: number) => 2 * series;
const smoothKey = (series: number) => 2 * series + 1;

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
  /**
   * The queue and its history are keyed by series, never by trace index: turning smoothing off removes
   * the companion traces, so trace indices shift while series keep their data (issue 18, defect 4).
   * Series i's raw points are key 2i, its smoothed companion's 2i + 1; `traceOf` maps keys to traces.
   */
  private readonly traceOf = new Map<number, number>();
  /** Whether series i currently has a smoothed companion trace. */
  private readonly smoothed: boolean[] = [];
  private frame = 0;
  private ready: Promise<unknown>;
  private logScale = false;
  /** Points currently held by each Plotly trace. */
  private shown: number[] = [];
  /** Static curves (other runs) drawn once in a Plotly figure under the live one; see setBackground. */
  private background: { element: HTMLDivElement; series: { name: string; x: number[]; y: number[] }[] } | null = null;
  /** Fixed axis ranges shared by both layers while a background is shown. */
  private ranges: { x: [number, number]; y: [number, number] } | null = null;
  readonly stats: LiveChartStats = { flushes: 0, redraws: 0, points: 0, latencies: [], updateMs: [] };

  constructor(
    private readonly element: HTMLElement,
    private readonly series: SeriesSpec[],
    private readonly layout: { title: string; xTitle: string; yTitle: string },
    private smoothing = 0.6,
  ) {
    this.ready = this.draw();
  }

  private traces(): Trace[] {
    const traces: Trace[] = [];
    this.traceOf.clear();
    this.smoothed.length = 0;
    this.smoothers.length = 0;
    this.series.forEach((spec, series) => {
      this.traceOf.set(rawKey(series), traces.length);
      const history = this.queue.history.get(rawKey(series));
      const raw = history ? this.shownPart(history.x, history.y) : { x: [], y: [] };
      this.shown[traces.length] = raw.x.length;
      traces.push({
        type: lineTraceType(),
        mode: spec.mode ?? 'lines',
        name: spec.name,
        x: raw.x,
        y: raw.y,
        line: { color: spec.color, width: 1 },
        opacity: spec.smooth && this.smoothing > 0 ? 0.35 : 1,
      });
      const smoother = new Smoother(spec.smooth ? this.smoothing : 0);
      this.smoothers.push(smoother);
      if (spec.smooth && this.smoothing > 0) {
        this.smoothed.push(true);
        this.traceOf.set(smoothKey(series), traces.length);
        const values = (history?.y ?? []).map((v) => smoother.next(v));
        const smooth = this.shownPart(history?.x ?? [], values);
        // The smoothed trace's own history follows the new weight.
        this.queue.history.set(smoothKey(series), { x: [...(history?.x ?? [])], y: values });
        this.shown[traces.length] = smooth.x.length;
        traces.push({
          type: lineTraceType(),
          mode: 'lines',
          name: `${spec.name} (smoothed)`,
          x: smooth.x,
          y: smooth.y,
          line: { color: spec.color, width: 2 },
        });
      } else {
        this.smoothed.push(false);
        // A companion drawn before holds stale values: dropping it keeps history to what is on screen.
        this.queue.history.delete(smoothKey(series));
      }
    });
    return traces;
  }

  /** The x range the user zoomed into (null: all of it); traces are decimated within it. */
  private detail: [number, number] | null = null;

  private shownPart(x: number[], y: number[]): { x: number[]; y: number[] } {
    return this.detail ? decimateWindow(x, y, this.detail, MAX_SHOWN_POINTS / 4) : decimate(x, y, MAX_SHOWN_POINTS / 4);
  }

  /** True when some trace holds more history than it shows (a zoom then has detail to add). */
  private decimated(): boolean {
    for (const history of this.queue.history.values()) if (history.x.length > MAX_SHOWN_POINTS / 2) return true;
    return false;
  }

  private draw(): Promise<unknown> {
    // The redraw takes every point from history, so points still queued must not be appended again.
    const pending = this.queue.drain();
    if (pending) this.stats.points += pending.x.reduce((sum, xs) => sum + xs.length, 0);
    const style = getComputedStyle(document.documentElement);
    const text = style.getPropertyValue('--text').trim() || '#222';
    const grid = style.getPropertyValue('--grid').trim() || '#ddd';
    const traces = this.traces();
    const layered = this.background !== null;
    // A user's zoom wins; otherwise the ranges are refitted to all data.
    if (layered) this.ranges = this.zoomed ? { x: [...this.zoomed.x], y: [...this.zoomed.y] } : this.fitRanges();
    this.revision += 1;
    const axis = (title: string, range: [number, number] | undefined, type: string) =>
      layered
        ? {
            range,
            autorange: false,
            type,
            showgrid: false,
            zeroline: false,
            showticklabels: false,
            title: { text: '' },
            color: text,
          }
        : { title: { text: title }, type, color: text, gridcolor: grid };
    const layout = {
      // On the left: Plotly's toolbar (top right) then never covers the title.
      title: { text: this.layout.title, font: { size: 14, color: text }, x: 0.01, xanchor: 'left' },
      xaxis: axis(this.layout.xTitle, this.ranges?.x, 'linear'),
      yaxis: axis(this.layout.yTitle, this.ranges?.y, this.logScale ? 'log' : 'linear'),
      paper_bgcolor: 'rgba(0,0,0,0)',
      plot_bgcolor: 'rgba(0,0,0,0)',
      legend: layered
        ? { x: 0.01, y: 0.99, bgcolor: 'rgba(127,127,127,0.15)', font: { color: text } }
        : { orientation: 'h', font: { color: text } },
      margin: { l: 55, r: 15, t: 35, b: 40 },
      // Keeps the user's zoom and pan while points stream in; with a background the ranges are ours (fixed, shared).
      uirevision: layered ? `layered-${this.revision}` : 'live',
      autosize: true,
    };
    const front = Plotly.react(this.element, traces, layout, { displaylogo: false, responsive: true }).then((plot) => {
      this.bindZoom(plot);
      return plot;
    });
    if (!layered || !this.background) return front;
    const back = this.background;
    return Promise.all([
      front,
      Plotly.react(
        back.element,
        back.series.map((run) => ({
          type: lineTraceType(),
          mode: 'lines',
          name: run.name,
          x: run.x,
          y: run.y,
          line: { width: 1 },
          opacity: 0.55,
          hoverinfo: 'skip',
        })),
        {
          title: { text: '' },
          xaxis: { title: { text: this.layout.xTitle }, range: this.ranges?.x, autorange: false, color: text, gridcolor: grid },
          yaxis: {
            title: { text: this.layout.yTitle },
            range: this.ranges?.y,
            autorange: false,
            type: this.logScale ? 'log' : 'linear',
            color: text,
            gridcolor: grid,
          },
          showlegend: false,
          paper_bgcolor: 'rgba(0,0,0,0)',
          plot_bgcolor: 'rgba(0,0,0,0)',
          margin: { l: 55, r: 15, t: 35, b: 40 },
          autosize: true,
        },
        { displaylogo: false, responsive: true, staticPlot: true },
      ),
    ]);
  }

  /** Axis ranges covering the background and the live history, with room for the live run to grow. */
  private fitRanges(): { x: [number, number]; y: [number, number] } {
    let xMin = Infinity;
    let xMax = -Infinity;
    let yMin = Infinity;
    let yMax = -Infinity;
    const cover = (x: number[], y: number[]) => {
      for (let i = 0; i < x.length; i++) {
        if (x[i] < xMin) xMin = x[i];
        if (x[i] > xMax) xMax = x[i];
        const v = y[i];
        if (!Number.isFinite(v) || (this.logScale && v <= 0)) continue;
        if (v < yMin) yMin = v;
        if (v > yMax) yMax = v;
      }
    };
    for (const run of this.background?.series ?? []) cover(run.x, run.y);
    for (const history of this.queue.history.values()) cover(history.x, history.y);
    if (!Number.isFinite(xMin)) [xMin, xMax, yMin, yMax] = [0, 1, 0, 1];
    const toAxis = (v: number) => (this.logScale ? Math.log10(v) : v);
    const low = toAxis(yMin);
    const high = toAxis(yMax);
    const pad = (high - low || 1) * 0.05;
    return { x: [xMin, xMin + (xMax - xMin || 1) * 1.25], y: [low - pad, high + pad] };
  }

  /**
   * Shows other runs' curves under the live ones. They sit in their own Plotly figure, drawn once, so
   * appending a live point redraws only the live traces; both figures share fixed axis ranges.
   */
  setBackground(series: { name: string; x: number[]; y: number[] }[]): void {
    if (series.length === 0) {
      if (this.background) {
        Plotly.purge(this.background.element);
        this.background.element.remove();
        this.background = null;
        this.ranges = null;
      }
    } else if (this.background) {
      this.background.series = series.map((run) => ({ name: run.name, ...decimate(run.x, run.y, MAX_SHOWN_POINTS / 4) }));
    } else {
      const holder = this.element.parentElement;
      if (!holder) throw new Error('LiveChart: the chart element must be in the document to show a background');
      const wrapper = document.createElement('div');
      wrapper.style.position = 'relative';
      // The wrapper takes over the chart's own size so both layers get the same box.
      wrapper.style.width = this.element.style.width || '100%';
      this.element.style.width = '100%';
      holder.insertBefore(wrapper, this.element);
      const back = document.createElement('div');
      back.style.position = 'absolute';
      back.style.inset = '0';
      back.setAttribute('aria-hidden', 'true');
      wrapper.append(back, this.element);
      this.element.style.position = 'relative';
      this.background = {
        element: back,
        series: series.map((run) => ({ name: run.name, ...decimate(run.x, run.y, MAX_SHOWN_POINTS / 4) })),
      };
    }
    this.ready = this.ready.then(() => this.draw());
  }

  private zoomBound = false;
  private zoomed: { x: [number, number]; y: [number, number] } | null = null;
  private revision = 0;

  /**
   * A zoom or pan redraws decimated traces from the history inside the new x range; on the live
   * layer it also moves the background with it; a double-click reset refits both.
   */
  private bindZoom(plot: PlotElement): void {
    if (this.zoomBound) return;
    this.zoomBound = true;
    plot.on?.('plotly_relayout', (update) => {
      // A drag zoom reports 'xaxis.range[0]' and '[1]'; other interactions the whole 'xaxis.range'.
      const whole = update['xaxis.range'];
      const x0 = Array.isArray(whole) ? whole[0] : update['xaxis.range[0]'];
      const x1 = Array.isArray(whole) ? whole[1] : update['xaxis.range[1]'];
      const reset = Boolean(update['xaxis.autorange']);
      const window = typeof x0 === 'number' && typeof x1 === 'number' ? ([x0, x1] as [number, number]) : null;
      if (reset || window) {
        const changed = reset ? this.detail !== null : true;
        this.detail = reset ? null : window;
        // Without a background the zoom is Plotly's own (kept by uirevision): only the traces change.
        if (changed && !this.background && this.decimated()) this.ready = this.ready.then(() => this.draw());
      }
      this.followZoom(update);
    });
  }

  /** With a background: the shared fixed ranges follow the user's zoom on the live layer. */
  private followZoom(update: Record<string, unknown>): void {
    const back = this.background;
    if (!back || !this.ranges) return;
    if (update['xaxis.autorange'] || update['yaxis.autorange']) {
      this.zoomed = null;
      this.ready = this.ready.then(() => this.draw());
      return;
    }
    const x0 = update['xaxis.range[0]'];
    const x1 = update['xaxis.range[1]'];
    const y0 = update['yaxis.range[0]'];
    const y1 = update['yaxis.range[1]'];
    if (typeof x0 === 'number' && typeof x1 === 'number') this.ranges.x = [x0, x1];
    if (typeof y0 === 'number' && typeof y1 === 'number') this.ranges.y = [y0, y1];
    if (x0 === undefined && y0 === undefined) return;
    this.zoomed = { x: [...this.ranges.x], y: [...this.ranges.y] };
    if (this.decimated()) this.ready = this.ready.then(() => this.draw());
    else void Plotly.relayout(back.element, { 'xaxis.range': [...this.ranges.x], 'yaxis.range': [...this.ranges.y] });
  }

  /** True when a live point falls outside the shared fixed ranges (then both layers are redrawn). */
  private outOfRange(drained: { x: number[][]; y: (number | null)[][] }): boolean {
    // While the user looks at a zoomed window, points beyond it are off-screen by choice.
    if (!this.ranges || this.zoomed) return false;
    const [x0, x1] = this.ranges.x;
    const [y0, y1] = this.ranges.y;
    return drained.x.some((xs, k) =>
      xs.some((x, i) => {
        const y = drained.y[k][i];
        const v = y === null ? null : this.logScale ? Math.log10(y) : y;
        return x < x0 || x > x1 || (v !== null && Number.isFinite(v) && (v < y0 || v > y1));
      }),
    );
  }

  /** Queues one point of series `series`; drawn on the next animation frame. */
  push(series: number, x: number, y: number, sentAt?: number): void {
    this.queue.push(rawKey(series), x, y, sentAt);
    if (this.smoothed[series]) this.queue.push(smoothKey(series), x, this.smoothers[series].next(y));
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    this.frame = 0;
    const drained = this.queue.drain();
    if (!drained) return;
    this.ready = this.ready.then(async () => {
      const started = performance.now();
      const traces = drained.indices.map((key) => this.traceOf.get(key) ?? -1);
      const overflow =
        traces.some((trace, k) => (this.shown[trace] ?? 0) + drained.x[k].length > MAX_SHOWN_POINTS) ||
        traces.includes(-1) ||
        this.outOfRange(drained);
      if (overflow) {
        // History already holds the drained points: one decimated redraw replaces the append.
        await this.draw();
        this.stats.redraws += 1;
      } else {
        await Plotly.extendTraces(this.element, { x: drained.x, y: drained.y }, traces);
        traces.forEach((trace, k) => (this.shown[trace] = (this.shown[trace] ?? 0) + drained.x[k].length));
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
    this.ready = this.ready.then(() =>
      this.background ? this.draw() : Plotly.relayout(this.element, { 'yaxis.type': on ? 'log' : 'linear' }),
    );
  }

  /** Redraws with the current theme colours. */
  restyle(): void {
    this.ready = this.ready.then(() => this.draw());
  }

  /**
   * Forgets every point beyond x = `limit` and redraws: a resumed run restarts from its last checkpoint,
   * so the points drawn after it (before the service stopped) are drawn again by the run, not twice.
   */
  dropAfter(limit: number): void {
    this.queue.drain();
    for (const history of this.queue.history.values()) {
      let keep = history.x.length;
      while (keep > 0 && history.x[keep - 1] > limit) keep -= 1;
      history.x.length = keep;
      history.y.length = keep;
    }
    this.ready = this.ready.then(() => this.draw());
  }

  clear(): void {
    this.queue.clear();
    this.ready = this.ready.then(() => this.draw());
  }

  dispose(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    Plotly.purge(this.element);
    if (this.background) Plotly.purge(this.background.element);
  }
}
