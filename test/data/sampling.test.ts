import { describe, expect, it } from 'vitest';
import { Random } from '../../core/engine/random.ts';
import { roundHalfEven, sampleFrames } from '../../core/data/sampling.ts';

// Every expected array below is derived by hand from mmaction2's SampleFrames formulas
// (fact sheet section 7 and the mmaction2 source semantics); the arithmetic is in the comments.
const range = (start: number, count: number, step: number) => Array.from({ length: count }, (_, k) => start + k * step);

describe('numpy rounding', () => {
  it('rounds half to even like np.round', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, 2.4999, 2.5001, 4].map(roundHalfEven)).toEqual([0, 2, 2, 4, 0, 2, 3, 4]);
  });
});

describe('SampleFrames test mode (exact mmaction2 indices)', () => {
  it('K400 test: 4 clips of 32 frames, interval 2, 300 frames', () => {
    // span = 32*2 = 64; avg = (300 - 64 + 1) / 4 = 59.25; offsets = int(c*59.25 + 29.625)
    // c=0: 29.625 -> 29; c=1: 88.875 -> 88; c=2: 148.125 -> 148; c=3: 207.375 -> 207
    const indices = sampleFrames(300, { clipLen: 32, frameInterval: 2, numClips: 4, testMode: true });
    expect(indices).toEqual([...range(29, 32, 2), ...range(88, 32, 2), ...range(148, 32, 2), ...range(207, 32, 2)]);
    expect(indices[127]).toBe(269); // 207 + 31*2
  });

  it('K400 val: 1 clip, 100 frames', () => {
    // avg = (100 - 64 + 1) / 1 = 37; offset = int(0 + 18.5) = 18; indices 18, 20, ..., 80
    expect(sampleFrames(100, { clipLen: 32, frameInterval: 2, testMode: true })).toEqual(range(18, 32, 2));
  });

  it('short video loops (modulo n)', () => {
    // n = 50 <= 63 = span - 1: offsets 0; indices 0..62 step 2; 50 -> 0, 52 -> 2, ..., 62 -> 12
    expect(sampleFrames(50, { clipLen: 32, frameInterval: 2, testMode: true })).toEqual([...range(0, 25, 2), ...range(0, 7, 2)]);
  });

  it('short video with repeat_last repeats the largest in-range index of the clip', () => {
    // same indices; the 7 indices 50..62 are out of range and become max(in range) = 48
    expect(sampleFrames(50, { clipLen: 32, frameInterval: 2, testMode: true, outOfBound: 'repeat_last' })).toEqual([
      ...range(0, 25, 2),
      ...new Array(7).fill(48),
    ]);
    // n = 10, clip 4, interval 4: offsets 0 (10 <= 15); [0, 4, 8, 12] -> 12 becomes 8
    expect(sampleFrames(10, { clipLen: 4, frameInterval: 4, testMode: true, outOfBound: 'repeat_last' })).toEqual([0, 4, 8, 8]);
  });

  it('boundaries n = span - 1 and n = span', () => {
    // n = 63: 63 > 63 is false -> offsets 0 -> 0..62 step 2 with 4 clips, all identical
    expect(sampleFrames(63, { clipLen: 32, frameInterval: 2, numClips: 4, testMode: true })).toEqual(
      new Array(4).fill(range(0, 32, 2)).flat(),
    );
    // n = 64: avg = 1/4 = 0.25; int(c*0.25 + 0.125) = int(0.125|0.375|0.625|0.875) = 0 for every clip
    expect(sampleFrames(64, { clipLen: 32, frameInterval: 2, numClips: 4, testMode: true })).toEqual(
      new Array(4).fill(range(0, 32, 2)).flat(),
    );
    // n = 68: avg = 5/4 = 1.25; int(0.625) = 0, int(1.875) = 1, int(3.125) = 3, int(4.375) = 4
    const offsets = [0, 1, 3, 4];
    expect(sampleFrames(68, { clipLen: 32, frameInterval: 2, numClips: 4, testMode: true })).toEqual(
      offsets.flatMap((offset) => range(offset, 32, 2)),
    );
  });

  it('adds the start index after looping (rawframe folders numbered from 1)', () => {
    // n = 10, clip 4, interval 1: avg = 7; offset = int(3.5) = 3 -> 3, 4, 5, 6 -> +1
    expect(sampleFrames(10, { clipLen: 4, testMode: true, startIndex: 1 })).toEqual([4, 5, 6, 7]);
    // n = 5, clip 4, interval 2: offsets 0; 0, 2, 4, 6 -> loop 0, 2, 4, 1 -> +1
    expect(sampleFrames(5, { clipLen: 4, frameInterval: 2, testMode: true, startIndex: 1 })).toEqual([1, 3, 5, 2]);
  });
});

describe('SSv2 uniform sampling (frame_uniform)', () => {
  it('test mode takes segment midpoints with half-to-even rounding', () => {
    // n = 10, 4 segments: seg = 9/4 = 2.25
    // k=0: round(0)=0, round(2.25)=2 -> 1; k=1: round(2.25)=2, round(4.5)=4 (half to even) -> 3
    // k=2: round(4.5)=4, round(6.75)=7 -> 5; k=3: round(6.75)=7, round(9)=9 -> 8
    expect(sampleFrames(10, { clipLen: 4, uniform: true, testMode: true })).toEqual([1, 3, 5, 8]);
    // n = 6: seg = 5/4 = 1.25; k=1: round(1.25)=1, round(2.5)=2 -> 1 (round half up would give 3 -> 2)
    // k=2: round(2.5)=2, round(3.75)=4 -> 3; k=3: round(3.75)=4, round(5)=5 -> 4
    expect(sampleFrames(6, { clipLen: 4, uniform: true, testMode: true })).toEqual([0, 1, 3, 4]);
    // n = 33, 8 segments: seg = 4 exactly; midpoints (4k + 4k+4) // 2 = 4k + 2
    expect(sampleFrames(33, { clipLen: 8, uniform: true, testMode: true })).toEqual(range(2, 8, 4));
  });

  it('train mode picks one frame inside each inclusive segment', () => {
    const random = new Random(3);
    for (let trial = 0; trial < 50; trial++) {
      const indices = sampleFrames(40, { clipLen: 8, uniform: true }, random);
      // seg = 39/8 = 4.875: bounds [round(4.875k), round(4.875(k+1))]
      indices.forEach((index, k) => {
        expect(index).toBeGreaterThanOrEqual(roundHalfEven(4.875 * k));
        expect(index).toBeLessThanOrEqual(roundHalfEven(4.875 * (k + 1)));
      });
    }
  });

  it('ignores interval and clip count as mmaction2 does, and rejects a start index', () => {
    expect(sampleFrames(10, { clipLen: 4, uniform: true, testMode: true, numClips: 3, frameInterval: 5 })).toEqual([1, 3, 5, 8]);
    expect(() => sampleFrames(10, { clipLen: 4, uniform: true, startIndex: 1 })).toThrow(
      /uniform \(SSv2\) sampling requires start index 0.*received 1/,
    );
  });
});

describe('SampleFrames train mode', () => {
  it('deterministic branch avg_interval == 0 uses np.around (half to even)', () => {
    // n = 32, span 32, 4 clips: avg = (32-32+1)//4 = 0; 32 > max(4, 32) is false
    // ratio = 1/4: around(0, 0.25, 0.5, 0.75) = 0, 0, 0, 1
    const indices = sampleFrames(32, { clipLen: 8, frameInterval: 4, numClips: 4 }, new Random(9));
    // clip 3 starts at 1: 1, 5, ..., 1 + 7*4 = 29, all inside 32 frames
    expect(indices).toEqual([...range(0, 8, 4), ...range(0, 8, 4), ...range(0, 8, 4), ...range(1, 8, 4)]);
  });

  it('deterministic branch with more clips than the span', () => {
    // n = 4, clip 2, interval 1, 5 clips: avg = 3//5 = 0; 4 > max(5, 2) false; ratio = 3/5 = 0.6
    // around(0, 0.6, 1.2, 1.8, 2.4) = 0, 1, 1, 2, 2
    expect(sampleFrames(4, { clipLen: 2, numClips: 5 }, new Random(1))).toEqual([0, 1, 1, 2, 1, 2, 2, 3, 2, 3]);
  });

  it('very short videos start at 0 and loop', () => {
    // n = 10 < 31: avg = (10 - 32 + 1)//1 = -21; 10 > 32 false; avg != 0 -> offset 0; 0..30 step 2 mod 10
    expect(sampleFrames(10, { clipLen: 16, frameInterval: 2 }, new Random(5))).toEqual(
      range(0, 16, 2).map((index) => index % 10),
    );
  });

  it('random offsets stay in [c*avg, c*avg + avg) and repeat with the seed', () => {
    // n = 300, span 64, 1 clip: avg = 237: offset in [0, 237)
    const seen = new Set<number>();
    const random = new Random(11);
    for (let trial = 0; trial < 400; trial++) {
      const indices = sampleFrames(300, { clipLen: 32, frameInterval: 2 }, random);
      expect(indices[0]).toBeGreaterThanOrEqual(0);
      expect(indices[0]).toBeLessThan(237);
      expect(indices).toEqual(range(indices[0], 32, 2));
      seen.add(indices[0]);
    }
    expect(seen.size).toBeGreaterThan(150);
    const a = sampleFrames(300, { clipLen: 8, frameInterval: 2, numClips: 3 }, new Random(7));
    const b = sampleFrames(300, { clipLen: 8, frameInterval: 2, numClips: 3 }, new Random(7));
    expect(a).toEqual(b);
    // 3 clips: avg = (300 - 16 + 1)//3 = 95; clip c starts in [95c, 95c + 95)
    [0, 1, 2].forEach((clip) => {
      expect(a[clip * 8]).toBeGreaterThanOrEqual(95 * clip);
      expect(a[clip * 8]).toBeLessThan(95 * clip + 95);
    });
  });

  it('rejects bad options with the value received', () => {
    expect(() => sampleFrames(0, { clipLen: 4 })).toThrow(/total frames must be an integer >= 1, received 0/);
    expect(() => sampleFrames(10, { clipLen: 0 })).toThrow(/clipLen: expected an integer >= 1, received 0/);
    expect(() => sampleFrames(10, { clipLen: 2, outOfBound: 'clamp' as never })).toThrow(
      /outOfBound: expected "loop" or "repeat_last", received "clamp"/,
    );
  });
});
