// Points waiting for the next animation frame, grouped per trace, plus the smoothed companion
// traces (exponential moving average with TensorBoard's debiasing, so early points are not pulled to 0).

export interface Drained {
  x: number[][];
  y: (number | null)[][];
  indices: number[];
  /** Core-side send times of the drained points that carried one (for the latency figure). */
  sentAt: number[];
}

export class Smoother {
  private last = 0;
  private count = 0;
  constructor(public weight: number) {}

  reset(): void {
    this.last = 0;
    this.count = 0;
  }

  next(value: number): number {
    if (this.weight <= 0) return value;
    this.last = this.last * this.weight + (1 - this.weight) * value;
    this.count += 1;
    return this.last / (1 - this.weight ** this.count);
  }
}

export class PointQueue {
  private pending = new Map<number, { x: number[]; y: (number | null)[] }>();
  private sent: number[] = [];
  /** Every point ever pushed per trace, so smoothing or log scale can be redrawn from scratch. */
  readonly history = new Map<number, { x: number[]; y: number[] }>();

  push(trace: number, x: number, y: number, sentAt?: number): void {
    let slot = this.pending.get(trace);
    if (!slot) {
      slot = { x: [], y: [] };
      this.pending.set(trace, slot);
    }
    slot.x.push(x);
    // Plotly cannot draw a non-finite value on a log axis; a gap is honest.
    slot.y.push(Number.isFinite(y) ? y : null);
    let past = this.history.get(trace);
    if (!past) {
      past = { x: [], y: [] };
      this.history.set(trace, past);
    }
    past.x.push(x);
    past.y.push(y);
    if (sentAt !== undefined) this.sent.push(sentAt);
  }

  get size(): number {
    let total = 0;
    for (const slot of this.pending.values()) total += slot.x.length;
    return total;
  }

  /** Everything queued, in one extendTraces-shaped update; empties the queue. */
  drain(): Drained | null {
    if (this.pending.size === 0) return null;
    const indices = [...this.pending.keys()].sort((a, b) => a - b);
    const drained: Drained = { x: [], y: [], indices, sentAt: this.sent };
    for (const index of indices) {
      const slot = this.pending.get(index) as { x: number[]; y: (number | null)[] };
      drained.x.push(slot.x);
      drained.y.push(slot.y);
    }
    this.pending = new Map();
    this.sent = [];
    return drained;
  }

  clear(): void {
    this.pending = new Map();
    this.sent = [];
    this.history.clear();
  }
}

/**
 * Min/max decimation: at most `buckets` x 2 points, each bucket keeping its lowest and highest
 * value in time order, so spikes survive and a line drawn through them looks like the full one.
 */
export function decimate(x: number[], y: number[], buckets: number): { x: number[]; y: number[] } {
  const length = x.length;
  if (length <= buckets * 2) return { x: [...x], y: [...y] };
  const outX: number[] = [];
  const outY: number[] = [];
  const size = length / buckets;
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(length, Math.floor((b + 1) * size));
    let low = start;
    let high = start;
    for (let i = start; i < end; i++) {
      // NaN never wins a comparison, so gaps do not hide real values.
      if (y[i] < y[low] || Number.isNaN(y[low])) low = i;
      if (y[i] > y[high] || Number.isNaN(y[high])) high = i;
    }
    const first = Math.min(low, high);
    const second = Math.max(low, high);
    outX.push(x[first]);
    outY.push(y[first]);
    if (second !== first) {
      outX.push(x[second]);
      outY.push(y[second]);
    }
  }
  // The newest point always shows, so a redrawn live curve still ends where the run is.
  if (outX[outX.length - 1] !== x[length - 1]) {
    outX.push(x[length - 1]);
    outY.push(y[length - 1]);
  }
  return { x: outX, y: outY };
}

/**
 * The points of a zoomed x window, min/max-decimated like `decimate`: only points with x inside
 * [x0, x1] count, plus their neighbour on each side so the line reaches the window's edges. A
 * window narrow enough to hold at most 2 x buckets points shows every one of them.
 */
export function decimateWindow(
  x: number[],
  y: number[],
  window: readonly [number, number],
  buckets: number,
): { x: number[]; y: number[] } {
  const [x0, x1] = window[0] <= window[1] ? window : [window[1], window[0]];
  const keep: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const inside = x[i] >= x0 && x[i] <= x1;
    const nextInside = i + 1 < x.length && x[i + 1] >= x0 && x[i + 1] <= x1;
    const previousInside = i > 0 && x[i - 1] >= x0 && x[i - 1] <= x1;
    if (inside || nextInside || previousInside) keep.push(i);
  }
  return decimate(
    keep.map((i) => x[i]),
    keep.map((i) => y[i]),
    buckets,
  );
}
