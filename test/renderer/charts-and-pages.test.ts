// Pure parts of the charts and pages: the per-frame point queue, smoothing, window geometry of the
// attention page, config diffs, and the runs table's columns.
import { describe, expect, it } from 'vitest';
import { decimate, decimateWindow, PointQueue, Smoother } from '../../renderer/charts/point-queue.ts';
import {
  attentionRow,
  boundaries,
  heatColor,
  placeOf,
  realWindows,
  tokenAt,
  windowQuery,
  type Geometry,
} from '../../renderer/features/attention/window-math.ts';
import { diffConfigs, getField, parseConfigText, setField } from '../../renderer/features/config/config-edit.ts';
import { differingFields, metricLabel } from '../../renderer/features/runs/run-columns.ts';
import { describeLines, groupProblems } from '../../renderer/features/datasets/problem-groups.ts';
import { stageGeometry } from '../../core/model/geometry.ts';
import type { Triple } from '../../core/protocol/workbench.ts';

describe('point queue', () => {
  it('hands everything queued since the last frame to one extendTraces update', () => {
    const queue = new PointQueue();
    expect(queue.drain()).toBeNull();
    queue.push(2, 1, 0.5, 100);
    queue.push(0, 1, 2.0);
    queue.push(0, 2, Number.NaN, 200);
    expect(queue.size).toBe(3);
    expect(queue.drain()).toEqual({ indices: [0, 2], x: [[1, 2], [1]], y: [[2.0, null], [0.5]], sentAt: [100, 200] });
    expect(queue.drain()).toBeNull();
    expect(queue.history.get(0)?.x).toEqual([1, 2]);
  });

  it('shows a zoomed window at full resolution where the whole trace is decimated', () => {
    const x = Array.from({ length: 100_000 }, (_, i) => i);
    const y = x.map((i) => Math.sin(i / 7) + (i === 50_123 ? 5 : 0));
    const whole = decimate(x, y, 500);
    expect(whole.x.length).toBeLessThanOrEqual(1001);
    expect(whole.x.at(-1)).toBe(99_999); // the newest point always shows
    // 200 points in [50_000, 50_199]: all of them, plus one neighbour on each side.
    const zoomed = decimateWindow(x, y, [50_000, 50_199], 500);
    expect(zoomed.x).toEqual(Array.from({ length: 202 }, (_, i) => 49_999 + i));
    expect(zoomed.y[zoomed.x.indexOf(50_123)]).toBeCloseTo(5 + Math.sin(50_123 / 7), 12);
    // A wide window is decimated again (min/max per bucket keeps the spike); reversed bounds work.
    const wide = decimateWindow(x, y, [90_000, 10_000], 500);
    expect(wide.x.length).toBeLessThanOrEqual(1001);
    expect(Math.max(...wide.y)).toBeCloseTo(5 + Math.sin(50_123 / 7), 12);
    expect(Math.min(...wide.x)).toBeGreaterThanOrEqual(9_999);
    expect(Math.max(...wide.x)).toBeLessThanOrEqual(90_001);
    expect(decimateWindow(x, y, [-5, -1], 500)).toEqual({ x: [], y: [] });
  });

  it('smooths with a debiased moving average (first value unchanged, converges to a constant)', () => {
    const smoother = new Smoother(0.9);
    expect(smoother.next(4)).toBeCloseTo(4, 12);
    let last = 0;
    for (let i = 0; i < 200; i++) last = smoother.next(1);
    expect(last).toBeCloseTo(1, 6);
    const none = new Smoother(0);
    expect([none.next(3), none.next(5)]).toEqual([3, 5]);
  });
});

function geometryOf(grid: Triple, window: Triple, shifted: boolean): Geometry {
  const g = stageGeometry(grid, window);
  return { grid: g.grid, window: g.window, shift: g.shift, padded: g.padded, shifted };
}

describe('attention window math', () => {
  for (const [grid, window] of [
    [
      [4, 8, 8],
      [2, 4, 4],
    ],
    [
      [4, 7, 7],
      [2, 4, 4],
    ],
    [
      [8, 14, 14],
      [8, 7, 7],
    ],
  ] as [Triple, Triple][]) {
    for (const shifted of [false, true]) {
      it(`maps every token of grid ${grid.join('x')}, window ${window.join('x')}, ${shifted ? 'shifted' : 'regular'} to one window slot and back`, () => {
        const view = geometryOf(grid, window, shifted);
        const seen = new Set<string>();
        for (let d = 0; d < grid[0]; d++)
          for (let h = 0; h < grid[1]; h++)
            for (let w = 0; w < grid[2]; w++) {
              const place = placeOf(view, [d, h, w]);
              const key = `${place.window}:${place.slot}`;
              expect(seen.has(key)).toBe(false);
              seen.add(key);
              expect(tokenAt(view, place.window, place.slot)).toEqual([d, h, w]);
            }
      });
    }
  }

  it('puts tokens of opposite corners in one shifted window (the cyclic roll of the paper)', () => {
    const view = geometryOf([4, 8, 8], [2, 4, 4], true);
    expect(view.shift).toEqual([1, 2, 2]);
    const corner = placeOf(view, [0, 0, 0]);
    expect(placeOf(view, [3, 7, 7]).window).toBe(corner.window);
    expect(placeOf(view, [0, 1, 1]).window).toBe(corner.window);
    expect(placeOf(view, [0, 2, 2]).window).not.toBe(corner.window);
    expect(boundaries(view, 1)).toEqual([2, 6]);
    expect(boundaries(geometryOf([4, 8, 8], [2, 4, 4], false), 1)).toEqual([0, 4, 8]);
  });

  it('reads one head or the mean over heads of a query row', () => {
    // 1 window, 2 heads, 2 tokens: probs[window][head][query][key].
    const view = { probs: [0.9, 0.1, 0.3, 0.7, 0.5, 0.5, 0.2, 0.8], heads: 2, tokensPerWindow: 2 };
    expect(Array.from(attentionRow(view, { window: 0, slot: 1 }, 0))).toEqual([0.3, 0.7]);
    const mean = Array.from(attentionRow(view, { window: 0, slot: 1 }, -1));
    expect(mean[0]).toBeCloseTo(0.25, 12);
    expect(mean[1]).toBeCloseTo(0.75, 12);
  });
});

describe('config editor helpers', () => {
  it('diffs nested fields and reports added and removed ones', () => {
    const before = { epochs: 30, optimizer: { lr: 0.001, betas: [0.9, 0.999] }, description: 'x' };
    const after = { epochs: 2, optimizer: { lr: 0.001, betas: [0.9, 0.99] }, seed: 1 };
    expect(diffConfigs(before, after)).toEqual([
      { path: 'description', before: '"x"', after: null },
      { path: 'epochs', before: '30', after: '2' },
      { path: 'optimizer.betas', before: '[0.9,0.999]', after: '[0.9,0.99]' },
      { path: 'seed', before: null, after: '1' },
    ]);
  });

  it('sets and reads dotted fields without touching the original', () => {
    const original = { data: { pipeline: { clip_len: 32 } } };
    const changed = setField(original, 'data.pipeline.clip_len', 8);
    expect(getField(changed, 'data.pipeline.clip_len')).toBe(8);
    expect(original.data.pipeline.clip_len).toBe(32);
    expect(getField(setField({}, 'a.b', 1), 'a.b')).toBe(1);
  });

  it('explains JSON that is not an object', () => {
    expect(parseConfigText('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseConfigText('[1]')).toEqual({ ok: false, message: 'the config must be a JSON object' });
    const broken = parseConfigText('{"a": ');
    expect(broken.ok).toBe(false);
    if (!broken.ok) expect(broken.message).toMatch(/^not valid JSON: /);
  });
});

describe('runs table columns', () => {
  it('shows only the config fields that differ between runs', () => {
    const run = (flatConfig: Record<string, string>) => ({
      id: 'x',
      name: 'x',
      status: 'completed',
      backend: 'wasm',
      epochs: 1,
      epochsDone: 1,
      createdAt: '',
      bestMetric: null,
      flatConfig,
    });
    expect(
      differingFields([
        run({ epochs: '2', lr: '0.1', description: '"a"' }),
        run({ epochs: '3', lr: '0.1', description: '"b"', seed: '1' }),
      ]),
    ).toEqual(['epochs', 'seed']);
    expect(differingFields([run({ epochs: '2' })])).toEqual([]);
  });
});

describe('annotation check problems', () => {
  it('lists a message reported on many lines once, with its lines', () => {
    const problems = [
      ...Array.from({ length: 50 }, (_, i) => ({ line: i + 3, message: 'label 7 is outside the label map (4 classes)' })),
      { line: 60, message: 'video missing: a.mp4' },
      { line: null, message: 'no val split' },
      { line: null, message: 'no val split' },
    ];
    const groups = groupProblems(problems);
    expect(groups.map((g) => [g.message, g.count, g.lines.length])).toEqual([
      ['label 7 is outside the label map (4 classes)', 50, 50],
      ['video missing: a.mp4', 1, 1],
      ['no val split', 2, 0],
    ]);
    expect(describeLines(groups[0].lines)).toBe('lines 3, 4, 5, 6, 7, 8, 9, 10 and 42 more');
    expect(describeLines(groups[1].lines)).toBe('line 60');
    expect(describeLines([4, 9])).toBe('lines 4, 9');
  });
});

describe('attention explorer stepping and colours', () => {
  it('steps to a real token of every window, skipping windows made of padding only', () => {
    // Grid 4x6x6 padded to 4x8x8 by windows of 2x4x4, shifted by 1,2,2: every window still holds real tokens.
    const view: Geometry = { grid: [4, 6, 6], window: [2, 4, 4], shift: [1, 2, 2], padded: [4, 8, 8], shifted: true };
    const windows = realWindows(view, 8);
    expect(windows).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const w of windows) {
      const token = windowQuery(view, w) as Triple;
      expect(token.every((t, a) => t >= 0 && t < view.grid[a])).toBe(true);
      expect(placeOf(view, token).window).toBe(w);
    }
  });

  it('maps weights to a dark-to-bright scale', () => {
    expect(heatColor(0)).toEqual([0, 0, 4]);
    expect(heatColor(1)).toEqual([252, 255, 164]);
    const brightness = (t: number) => heatColor(t).reduce((a, b) => a + b, 0);
    for (let i = 0; i < 10; i++) expect(brightness((i + 1) / 10)).toBeGreaterThan(brightness(i / 10));
    expect(heatColor(Number.NaN)).toEqual(heatColor(0));
  });

  it('names curve keys in words', () => {
    expect(metricLabel('iter:train:loss')).toBe('train loss per iteration');
    expect(metricLabel('epoch:val:top1')).toBe('val top1 per epoch');
    expect(metricLabel('odd')).toBe('odd');
  });
});
