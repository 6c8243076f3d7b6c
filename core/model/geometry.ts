// Pure geometry of 3-D shifted windows (fact sheet 2.2-2.5): effective windows and shifts, padding,
// relative position indices and shift masks. No tensors here: plain typed arrays.

export type Triple = [number, number, number];

export interface StageGeometry {
  /** Token grid (D, H, W) entering the stage. */
  grid: Triple;
  /** Effective window: the configured one, clipped to the grid on axes where grid <= window. */
  window: Triple;
  /** Shift of the odd (shifted) blocks: window//2, zero on clipped axes. */
  shift: Triple;
  /** Grid padded up to multiples of the effective window. */
  padded: Triple;
  /** Windows per clip (over the padded grid). */
  windowsPerClip: number;
  /** Tokens per window, N = wd * wh * ww. */
  tokensPerWindow: number;
  /** Whether odd blocks actually shift (some axis has a non-zero shift). */
  shifted: boolean;
}

/** `get_window_size` of the official code: note `<=`, so equality clips too. */
export function effectiveWindow(grid: readonly number[], window: readonly number[]): { window: Triple; shift: Triple } {
  const win = [0, 0, 0] as Triple;
  const shift = [0, 0, 0] as Triple;
  for (let axis = 0; axis < 3; axis++) {
    if (grid[axis] <= window[axis]) {
      win[axis] = grid[axis];
      shift[axis] = 0;
    } else {
      win[axis] = window[axis];
      shift[axis] = Math.floor(window[axis] / 2);
    }
  }
  return { window: win, shift };
}

export function stageGeometry(grid: readonly number[], configuredWindow: readonly number[]): StageGeometry {
  const { window, shift } = effectiveWindow(grid, configuredWindow);
  const padded = [0, 1, 2].map((a) => Math.ceil(grid[a] / window[a]) * window[a]) as Triple;
  return {
    grid: [grid[0], grid[1], grid[2]],
    window,
    shift,
    padded,
    windowsPerClip: (padded[0] / window[0]) * (padded[1] / window[1]) * (padded[2] / window[2]),
    tokensPerWindow: window[0] * window[1] * window[2],
    shifted: shift.some((s) => s > 0),
  };
}

/** Token grid after the patch embedding: ceil(T/pt), ceil(H/ph), ceil(W/pw). */
export function patchGrid(inputDHW: readonly number[], patch: readonly number[]): Triple {
  return [0, 1, 2].map((a) => Math.ceil(inputDHW[a] / patch[a])) as Triple;
}

/** Grid after PatchMerging: time kept, H and W halved rounding up (odd sizes are zero-padded). */
export function mergedGrid(grid: readonly number[]): Triple {
  return [grid[0], Math.ceil(grid[1] / 2), Math.ceil(grid[2] / 2)];
}

/** Per-stage geometry for an input clip (T, H, W). */
export function modelGeometry(
  inputDHW: readonly number[],
  patch: readonly number[],
  window: readonly number[],
  stages: number,
): StageGeometry[] {
  const result: StageGeometry[] = [];
  let grid = patchGrid(inputDHW, patch);
  for (let i = 0; i < stages; i++) {
    result.push(stageGeometry(grid, window));
    if (i < stages - 1) grid = mergedGrid(grid);
  }
  return result;
}

/**
 * `relative_position_index` of the configured (full) window: [Nfull, Nfull], tokens (d, h, w)
 * row-major, index = (d1-d2+wd-1)(2wh-1)(2ww-1) + (h1-h2+wh-1)(2ww-1) + (w1-w2+ww-1).
 */
export function relativePositionIndex(window: readonly number[]): Int32Array {
  const [wd, wh, ww] = window;
  const n = wd * wh * ww;
  const out = new Int32Array(n * n);
  const coords = (t: number): Triple => [Math.floor(t / (wh * ww)), Math.floor(t / ww) % wh, t % ww];
  for (let i = 0; i < n; i++) {
    const [d1, h1, w1] = coords(i);
    for (let j = 0; j < n; j++) {
      const [d2, h2, w2] = coords(j);
      out[i * n + j] = (d1 - d2 + wd - 1) * (2 * wh - 1) * (2 * ww - 1) + (h1 - h2 + wh - 1) * (2 * ww - 1) + (w1 - w2 + ww - 1);
    }
  }
  return out;
}

/**
 * The bias-table rows used by a (possibly clipped) window of N tokens: the official code takes
 * `relative_position_index[:N, :N]` of the FULL window (a quirk reproduced on purpose, fact sheet 2.5).
 */
export function clippedIndex(fullIndex: Int32Array, fullN: number, n: number): Int32Array {
  const out = new Int32Array(n * n);
  for (let i = 0; i < n; i++) out.set(fullIndex.subarray(i * fullN, i * fullN + n), i * n);
  return out;
}

/** Region id of each position along one axis: three regions when shifted, one otherwise. */
function axisRegions(length: number, window: number, shift: number): Int32Array {
  const ids = new Int32Array(length);
  if (shift === 0) return ids;
  for (let p = 0; p < length; p++) ids[p] = p < length - window ? 0 : p < length - shift ? 1 : 2;
  return ids;
}

/**
 * Region id of every token of every window of a shifted grid: [nW, N], windows in (d, h, w) order over
 * the padded grid, tokens (d, h, w) row-major inside a window. Two tokens attend to each other
 * unmasked exactly when their ids are equal.
 */
export function shiftRegionIds(padded: readonly number[], window: readonly number[], shift: readonly number[]): Int32Array {
  const [pd, ph, pw] = padded;
  const [wd, wh, ww] = window;
  const rd = axisRegions(pd, wd, shift[0]);
  const rh = axisRegions(ph, wh, shift[1]);
  const rw = axisRegions(pw, ww, shift[2]);
  const nd = pd / wd;
  const nh = ph / wh;
  const nw = pw / ww;
  const n = wd * wh * ww;
  const ids = new Int32Array(nd * nh * nw * n);
  let t = 0;
  for (let a = 0; a < nd; a++) {
    for (let b = 0; b < nh; b++) {
      for (let c = 0; c < nw; c++) {
        for (let d = 0; d < wd; d++) {
          for (let h = 0; h < wh; h++) {
            for (let w = 0; w < ww; w++, t++) {
              ids[t] = rd[a * wd + d] * 9 + rh[b * wh + h] * 3 + rw[c * ww + w];
            }
          }
        }
      }
    }
  }
  return ids;
}

/**
 * Shift mask (fact sheet 2.4): [nW, N, N] of 0 (same region) / -100 (different regions), windows in
 * (d, h, w) order over the padded grid, tokens (d, h, w) row-major inside a window.
 */
export function shiftMask(padded: readonly number[], window: readonly number[], shift: readonly number[]): Float32Array {
  const n = window[0] * window[1] * window[2];
  const ids = shiftRegionIds(padded, window, shift);
  const windows = ids.length / n;
  const mask = new Float32Array(windows * n * n);
  for (let win = 0; win < windows; win++) {
    const base = win * n * n;
    const own = ids.subarray(win * n, win * n + n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) mask[base + i * n + j] = own[i] === own[j] ? 0 : -100;
    }
  }
  return mask;
}

/** Per-block stochastic depth rates: linspace(0, rate, sum(depths)) in block order. */
export function dropPathRates(rate: number, depths: readonly number[]): number[][] {
  const total = depths.reduce((a, b) => a + b, 0);
  const all = Array.from({ length: total }, (_, i) => (total === 1 ? 0 : (rate * i) / (total - 1)));
  const out: number[][] = [];
  let k = 0;
  for (const depth of depths) {
    out.push(all.slice(k, k + depth));
    k += depth;
  }
  return out;
}
