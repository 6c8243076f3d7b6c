// Frame index sampling with the semantics of mmaction2's SampleFrames (the version vendored by the
// official Video Swin repository), including its SSv2 `frame_uniform` mode.
//
// Deterministic cases (test mode, uniform test mode, and the train-mode branches that draw no random
// numbers) give exactly mmaction2's indices. Train-mode random offsets come from our seeded PRNG, so
// they follow the same distribution as numpy's `randint` but cannot be the same draws.
import { Random } from '../engine/random.ts';

export type OutOfBoundOption = 'loop' | 'repeat_last';

export interface SampleFramesOptions {
  clipLen: number;
  frameInterval?: number;
  numClips?: number;
  /** mmaction2 `test_mode`: evenly spaced clips, no randomness. Val pipelines use it with 1 clip. */
  testMode?: boolean;
  outOfBound?: OutOfBoundOption;
  /** Added to every index at the end (0 for videos, 1 for mmaction2's default rawframe folders). */
  startIndex?: number;
  /**
   * SSv2 segment sampling (`frame_uniform=True`): one frame per segment, clipLen segments. As in
   * mmaction2, frameInterval, numClips and outOfBound do not apply: the result is one clip.
   */
  uniform?: boolean;
}

export interface ResolvedSampling {
  clipLen: number;
  frameInterval: number;
  numClips: number;
  testMode: boolean;
  outOfBound: OutOfBoundOption;
  startIndex: number;
  uniform: boolean;
}

export function resolveSampling(options: SampleFramesOptions): ResolvedSampling {
  const resolved: ResolvedSampling = {
    clipLen: options.clipLen,
    frameInterval: options.frameInterval ?? 1,
    numClips: options.numClips ?? 1,
    testMode: options.testMode ?? false,
    outOfBound: options.outOfBound ?? 'loop',
    startIndex: options.startIndex ?? 0,
    uniform: options.uniform ?? false,
  };
  for (const [name, value, min] of [
    ['clipLen', resolved.clipLen, 1],
    ['frameInterval', resolved.frameInterval, 1],
    ['numClips', resolved.numClips, 1],
    ['startIndex', resolved.startIndex, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min)
      throw new Error(`sampling.${name}: expected an integer >= ${min}, received ${String(value)}`);
  }
  if (resolved.outOfBound !== 'loop' && resolved.outOfBound !== 'repeat_last') {
    throw new Error(`sampling.outOfBound: expected "loop" or "repeat_last", received "${String(resolved.outOfBound)}"`);
  }
  if (resolved.uniform && resolved.startIndex !== 0) {
    // mmaction2 asserts start_index == 0 for frame_uniform; silently shifting would change the segments.
    throw new Error(
      `sampling.startIndex: uniform (SSv2) sampling requires start index 0 as in mmaction2, received ${resolved.startIndex}`,
    );
  }
  return resolved;
}

/** numpy's `np.round`/`np.around` for one value: round half to even. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function trainOffsets(totalFrames: number, s: ResolvedSampling, random: Random): number[] {
  const span = s.clipLen * s.frameInterval;
  const averageInterval = Math.floor((totalFrames - span + 1) / s.numClips);
  if (averageInterval > 0) {
    return Array.from({ length: s.numClips }, (_, clip) => clip * averageInterval + random.int(averageInterval));
  }
  if (totalFrames > Math.max(s.numClips, span)) {
    const offsets = Array.from({ length: s.numClips }, () => random.int(totalFrames - span + 1));
    return offsets.sort((a, b) => a - b);
  }
  if (averageInterval === 0) {
    const ratio = (totalFrames - span + 1.0) / s.numClips;
    return Array.from({ length: s.numClips }, (_, clip) => roundHalfEven(clip * ratio));
  }
  return new Array<number>(s.numClips).fill(0);
}

function testOffsets(totalFrames: number, s: ResolvedSampling): number[] {
  const span = s.clipLen * s.frameInterval;
  const averageInterval = (totalFrames - span + 1) / s.numClips;
  if (totalFrames > span - 1) {
    // Same float operations in the same order as numpy: arange * avg, + avg / 2, then truncation.
    return Array.from({ length: s.numClips }, (_, clip) => Math.trunc(clip * averageInterval + averageInterval / 2.0));
  }
  return new Array<number>(s.numClips).fill(0);
}

function uniformIndices(totalFrames: number, s: ResolvedSampling, random: Random): number[] {
  const segment = (totalFrames - 1) / s.clipLen;
  const indices: number[] = [];
  for (let k = 0; k < s.clipLen; k++) {
    const start = roundHalfEven(segment * k);
    const end = roundHalfEven(segment * (k + 1));
    indices.push(s.testMode ? Math.floor((start + end) / 2) : start + random.int(end - start + 1));
  }
  return indices;
}

/**
 * Frame indices for one video of `totalFrames` frames: numClips * clipLen indices, clip-major, already
 * shifted by the start index. `random` is only drawn from in train mode.
 */
export function sampleFrames(totalFrames: number, options: SampleFramesOptions, random: Random = new Random(0)): number[] {
  if (!Number.isInteger(totalFrames) || totalFrames < 1) {
    throw new Error(`sampling: total frames must be an integer >= 1, received ${String(totalFrames)}`);
  }
  const s = resolveSampling(options);
  if (s.uniform) return uniformIndices(totalFrames, s, random);
  const offsets = s.testMode ? testOffsets(totalFrames, s) : trainOffsets(totalFrames, s, random);
  const result: number[] = [];
  for (const offset of offsets) {
    const clip = Array.from({ length: s.clipLen }, (_, k) => offset + k * s.frameInterval);
    if (s.outOfBound === 'loop') {
      for (const index of clip) result.push((index % totalFrames) + s.startIndex);
    } else {
      // mmaction2 replaces out-of-range indices by the largest in-range index of the same clip
      // (0 when none is in range).
      let last = 0;
      for (const index of clip) if (index < totalFrames && index > last) last = index;
      for (const index of clip) result.push((index < totalFrames ? index : last) + s.startIndex);
    }
  }
  return result;
}
