// Where a token sits in the 3-D (shifted) windows of a stage, in the order the model partitions them:
// the padded grid is rolled by -shift, then cut into windows (d, h, w) row-major, tokens row-major inside.
import type { AttentionView, Triple } from '../../../core/protocol/workbench.ts';

export interface TokenPlace {
  window: number;
  /** Index of the token inside its window (0..N-1). */
  slot: number;
}

export type Geometry = Pick<AttentionView, 'grid' | 'window' | 'shift' | 'padded' | 'shifted'>;

const mod = (a: number, n: number) => ((a % n) + n) % n;

function shiftOf(view: Geometry): Triple {
  return view.shifted ? view.shift : [0, 0, 0];
}

export function placeOf(view: Geometry, token: Triple): TokenPlace {
  const shift = shiftOf(view);
  const rolled = [0, 1, 2].map((a) => mod(token[a] - shift[a], view.padded[a]));
  const counts = [0, 1, 2].map((a) => view.padded[a] / view.window[a]);
  const index = rolled.map((r, a) => Math.floor(r / view.window[a]));
  const inside = rolled.map((r, a) => r % view.window[a]);
  return {
    window: (index[0] * counts[1] + index[1]) * counts[2] + index[2],
    slot: (inside[0] * view.window[1] + inside[1]) * view.window[2] + inside[2],
  };
}

/** The grid position of token `slot` of window `window`, or null when it is padding. */
export function tokenAt(view: Geometry, window: number, slot: number): Triple | null {
  const shift = shiftOf(view);
  const counts = [0, 1, 2].map((a) => view.padded[a] / view.window[a]);
  const index = [Math.floor(window / (counts[1] * counts[2])), Math.floor(window / counts[2]) % counts[1], window % counts[2]];
  const inside = [
    Math.floor(slot / (view.window[1] * view.window[2])),
    Math.floor(slot / view.window[2]) % view.window[1],
    slot % view.window[2],
  ];
  const token = [0, 1, 2].map((a) => mod(index[a] * view.window[a] + inside[a] + shift[a], view.padded[a])) as Triple;
  return token.every((t, a) => t < view.grid[a]) ? token : null;
}

/**
 * Attention probabilities of consecutive windows from `window` (0 when absent):
 * probs[window - first][head][query][key] flattened. The service sends one window at a time.
 */
export interface WindowProbs {
  window?: number;
  probs: ArrayLike<number>;
  heads: number;
  tokensPerWindow: number;
}

/** Attention of the query token over its window's keys: per head, or the mean over heads when head < 0. */
export function attentionRow(data: WindowProbs, place: TokenPlace, head: number): Float64Array {
  const n = data.tokensPerWindow;
  const offset = place.window - (data.window ?? 0);
  if (offset < 0 || (offset + 1) * data.heads * n * n > data.probs.length) {
    throw new Error(
      `attentionRow: window ${place.window} is not in the probabilities held (from window ${data.window ?? 0}, ${data.probs.length} values)`,
    );
  }
  const row = new Float64Array(n);
  const heads = head < 0 ? Array.from({ length: data.heads }, (_, h) => h) : [head];
  for (const h of heads) {
    const base = ((offset * data.heads + h) * n + place.slot) * n;
    for (let k = 0; k < n; k++) row[k] += data.probs[base + k] / heads.length;
  }
  return row;
}

/** Window boundaries along one axis, in token units of the original grid. */
export function boundaries(view: Geometry, axis: 0 | 1 | 2): number[] {
  const shift = shiftOf(view)[axis];
  const out: number[] = [];
  for (let p = 0; p <= view.grid[axis]; p++) if (mod(p - shift, view.window[axis]) === 0) out.push(p);
  return out;
}

/** A token of window `window` to stand for it when a person steps through windows: the centre one, else the nearest real (non-padding) one. */
export function windowQuery(view: Geometry, window: number): Triple | null {
  const n = view.window[0] * view.window[1] * view.window[2];
  const centre = Math.floor(n / 2);
  for (let distance = 0; distance < n; distance++) {
    for (const slot of [centre - distance, centre + distance]) {
      if (slot < 0 || slot >= n) continue;
      const token = tokenAt(view, window, slot);
      if (token) return token;
    }
  }
  return null;
}

/** Windows that hold at least one real token, in order (a shifted grid's padded corners can hold none). */
export function realWindows(view: Geometry, windowsPerClip: number): number[] {
  return Array.from({ length: windowsPerClip }, (_, w) => w).filter((w) => windowQuery(view, w) !== null);
}

// Stops of a perceptually ordered dark-to-bright scale (matplotlib's inferno, sampled): low attention
// is dark and faint, high attention bright, so near-uniform attention looks uniform, not saturated.
const HEAT_STOPS: [number, number, number][] = [
  [0, 0, 4],
  [40, 11, 84],
  [101, 21, 110],
  [159, 42, 99],
  [212, 72, 66],
  [245, 125, 21],
  [250, 193, 39],
  [252, 255, 164],
];

/** The scale's colour at t in [0, 1]. */
export function heatColor(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(HEAT_STOPS[i][c] + (HEAT_STOPS[i + 1][c] - HEAT_STOPS[i][c]) * f)) as [
    number,
    number,
    number,
  ];
}
