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
