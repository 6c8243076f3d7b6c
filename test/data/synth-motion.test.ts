import { describe, expect, it } from 'vitest';
import { Random } from '../../core/engine/random.ts';
import { syntheticFrames } from '../../core/data/synth.ts';

/** Position of the white square (the only 250-valued pixels) in frame `frame`, on the torus. */
function squareStart(frame: Uint8Array, size: number): { x: number; y: number } {
  const columns = new Set<number>();
  const rows = new Set<number>();
  for (let i = 0; i < size * size; i++) {
    if (frame[i * 3] === 250 && frame[i * 3 + 1] === 250 && frame[i * 3 + 2] === 250) {
      columns.add(i % size);
      rows.add(Math.floor(i / size));
    }
  }
  // The first occupied index whose predecessor (cyclically) is empty is the square's start.
  const start = (set: Set<number>) => [...set].find((v) => !set.has((v - 1 + size) % size)) ?? -1;
  return { x: start(columns), y: start(rows) };
}

describe('synthetic motion videos, solid square (the demo recipe)', () => {
  it('moves the square 1 px per frame in the class direction (0 = right, 90 = up) with wrap-around', () => {
    const size = 32;
    for (const [direction, dx, dy] of [
      [0, 1, 0],
      [Math.PI / 2, 0, -1],
      [Math.PI, -1, 0],
      [(3 * Math.PI) / 2, 0, 1],
    ] as const) {
      const frames = syntheticFrames(direction, 6, size, size, new Random(5), 1, 'solid');
      expect(frames).toHaveLength(6);
      const first = squareStart(frames[0], size);
      for (let t = 1; t < frames.length; t++) {
        const at = squareStart(frames[t], size);
        expect((at.x - first.x - dx * t + 2 * size) % size, `direction ${direction}, frame ${t}`).toBe(0);
        expect((at.y - first.y - dy * t + 2 * size) % size, `direction ${direction}, frame ${t}`).toBe(0);
      }
    }
  });
});
