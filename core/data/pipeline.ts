// The official recipes' data pipelines as data (fact sheet section 7), each preset parameterisable,
// and the function that runs one on decoded frames.
//
// Order of random draws for one sample: frame offsets, crop box, flip, RandAugment, erasing. The loader gives
// every sample its own generator seeded from (seed, epoch, sample), so results do not depend on
// which decode finishes first.
import type { Random } from '../engine/random.ts';
import {
  applyRandAugment,
  checkRandAugmentSpec,
  drawRandAugment,
  ssv2RandAugment,
  type RandAugmentDraw,
  type RandAugmentSpec,
} from './randaugment.ts';
import { sampleFrames, type OutOfBoundOption } from './sampling.ts';
import {
  centerCropBox,
  cropClip,
  flipClip,
  imagenetMean,
  imagenetStd,
  normalizeToNCTHW,
  randomErasing,
  randomResizedCropBox,
  resizeClip,
  shortSideSize,
  threeCropBoxes,
  type Clip,
} from './transforms.ts';

export type PipelineMode = 'train' | 'val' | 'test';

export type CropSpec =
  | { kind: 'random-resized'; size: number; areaRange: [number, number]; aspectRange: [number, number] }
  | { kind: 'center'; size: number }
  | { kind: 'three'; size: number };

export interface PipelineSpec {
  name: string;
  mode: PipelineMode;
  sampling: {
    clipLen: number;
    frameInterval: number;
    numClips: number;
    testMode: boolean;
    uniform: boolean;
    outOfBound: OutOfBoundOption;
  };
  /** Resize the short side to this, keeping the aspect ratio (mmaction2 scale=(-1, shortSide)). */
  shortSide: number;
  crop: CropSpec;
  flipRatio: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** imgaug RandAugment on the cropped frames, one draw per clip, before normalisation (SSv2 train). */
  randAugment?: RandAugmentSpec;
  /** timm RandomErasing after normalisation (SSv2 train). */
  randomErasing?: { probability: number; areaRange: [number, number]; aspectRange: [number, number] };
  /** Parts of the official recipe this preset leaves out, said plainly. */
  omissions?: string[];
}

export interface PresetOptions {
  clipLen?: number;
  frameInterval?: number;
  numClips?: number;
  shortSide?: number;
  cropSize?: number;
  flipRatio?: number;
  areaRange?: [number, number];
  /** RandAugment of the train pipeline: a spec, or null for none (default: SSv2's n=4 m=7, none elsewhere). */
  randAugment?: RandAugmentSpec | null;
}

const defaults = { mean: imagenetMean, std: imagenetStd, outOfBound: 'loop' as const };

function randomResized(size: number, areaRange: [number, number] = [0.08, 1]): CropSpec {
  return { kind: 'random-resized', size, areaRange, aspectRange: [3 / 4, 4 / 3] };
}

function trainRandAugment(options: PresetOptions, recipe?: RandAugmentSpec): { randAugment?: RandAugmentSpec } {
  const spec = options.randAugment === undefined ? recipe : options.randAugment;
  return spec ? { randAugment: spec } : {};
}

export function k400Train(options: PresetOptions = {}): PipelineSpec {
  return {
    name: 'k400-train',
    mode: 'train',
    ...defaults,
    sampling: {
      clipLen: options.clipLen ?? 32,
      frameInterval: options.frameInterval ?? 2,
      numClips: options.numClips ?? 1,
      testMode: false,
      uniform: false,
      outOfBound: 'loop',
    },
    shortSide: options.shortSide ?? 256,
    crop: randomResized(options.cropSize ?? 224, options.areaRange),
    flipRatio: options.flipRatio ?? 0.5,
    ...trainRandAugment(options),
  };
}

export function k400Val(options: PresetOptions = {}): PipelineSpec {
  return {
    name: 'k400-val',
    mode: 'val',
    ...defaults,
    sampling: {
      clipLen: options.clipLen ?? 32,
      frameInterval: options.frameInterval ?? 2,
      numClips: options.numClips ?? 1,
      testMode: true,
      uniform: false,
      outOfBound: 'loop',
    },
    shortSide: options.shortSide ?? 256,
    crop: { kind: 'center', size: options.cropSize ?? 224 },
    flipRatio: 0,
  };
}

export function k400Test(options: PresetOptions = {}): PipelineSpec {
  const cropSize = options.cropSize ?? 224;
  return {
    name: 'k400-test',
    mode: 'test',
    ...defaults,
    sampling: {
      clipLen: options.clipLen ?? 32,
      frameInterval: options.frameInterval ?? 2,
      numClips: options.numClips ?? 4,
      testMode: true,
      uniform: false,
      outOfBound: 'loop',
    },
    shortSide: options.shortSide ?? cropSize,
    crop: { kind: 'three', size: cropSize },
    flipRatio: 0,
  };
}

export function ssv2Train(options: PresetOptions = {}): PipelineSpec {
  return {
    name: 'ssv2-train',
    mode: 'train',
    ...defaults,
    sampling: {
      clipLen: options.clipLen ?? 32,
      frameInterval: 1,
      numClips: 1,
      testMode: false,
      uniform: true,
      outOfBound: 'loop',
    },
    shortSide: options.shortSide ?? 256,
    crop: randomResized(options.cropSize ?? 224, options.areaRange),
    // Left and right are part of SSv2's labels ("pushing something from left to right").
    flipRatio: options.flipRatio ?? 0,
    // imgaug's RandAugment flips with probability 0.5 all the same (its first step): the official
    // recipe does, so this does too unless randAugment.flipRatio says otherwise.
    ...trainRandAugment(options, ssv2RandAugment),
    randomErasing: { probability: 0.25, areaRange: [0.02, 1 / 3], aspectRange: [0.3, 1 / 0.3] },
  };
}

export function ssv2Val(options: PresetOptions = {}): PipelineSpec {
  return {
    name: 'ssv2-val',
    mode: 'val',
    ...defaults,
    sampling: {
      clipLen: options.clipLen ?? 32,
      frameInterval: 1,
      numClips: 1,
      testMode: true,
      uniform: true,
      outOfBound: 'loop',
    },
    shortSide: options.shortSide ?? 256,
    crop: { kind: 'center', size: options.cropSize ?? 224 },
    flipRatio: 0,
  };
}

export function ssv2Test(options: PresetOptions = {}): PipelineSpec {
  const cropSize = options.cropSize ?? 224;
  return {
    name: 'ssv2-test',
    mode: 'test',
    ...defaults,
    sampling: {
      clipLen: options.clipLen ?? 32,
      frameInterval: 1,
      numClips: 1,
      testMode: true,
      uniform: true,
      outOfBound: 'loop',
    },
    shortSide: options.shortSide ?? cropSize,
    crop: { kind: 'three', size: cropSize },
    flipRatio: 0,
  };
}

/**
 * Small clips for the demo on the synthetic dataset: 8 frames, interval 4, 64 pixels. No flip by
 * default, because the synthetic classes are directions of motion and a flip swaps left and right;
 * the crop keeps at least half of the frame so the moving shape usually stays in view.
 */
export function smallClip(mode: PipelineMode, options: PresetOptions = {}): PipelineSpec {
  const cropSize = options.cropSize ?? 64;
  const sampling = {
    clipLen: options.clipLen ?? 8,
    frameInterval: options.frameInterval ?? 4,
    numClips: options.numClips ?? (mode === 'test' ? 2 : 1),
    testMode: mode !== 'train',
    uniform: false,
    outOfBound: 'loop' as const,
  };
  const base = {
    ...defaults,
    sampling,
    shortSide: options.shortSide ?? cropSize,
    flipRatio: mode === 'train' ? (options.flipRatio ?? 0) : 0,
  };
  if (mode === 'train')
    return {
      name: 'small-train',
      mode,
      ...base,
      crop: randomResized(cropSize, options.areaRange ?? [0.5, 1]),
      ...trainRandAugment(options),
    };
  if (mode === 'val') return { name: 'small-val', mode, ...base, crop: { kind: 'center', size: cropSize } };
  return { name: 'small-test', mode, ...base, crop: { kind: 'three', size: cropSize } };
}

export type PresetFamily = 'k400' | 'ssv2' | 'small';

/** Rejects overrides that cannot make a pipeline, naming the option and the value received. */
export function checkPresetOptions(options: PresetOptions, mode: PipelineMode): void {
  for (const key of ['clipLen', 'frameInterval', 'numClips', 'shortSide', 'cropSize'] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1))
      throw new Error(`pipeline.${key}: expected an integer >= 1, received ${String(value)}`);
  }
  if (options.flipRatio !== undefined && !(options.flipRatio >= 0 && options.flipRatio <= 1))
    throw new Error(`pipeline.flipRatio: expected a number in [0, 1], received ${String(options.flipRatio)}`);
  if (options.randAugment) {
    if (mode !== 'train')
      throw new Error(`pipeline.randAugment: only train pipelines augment, received it for a ${mode} pipeline`);
    checkRandAugmentSpec(options.randAugment, 'pipeline.randAugment');
  }
  const area = options.areaRange;
  if (area !== undefined && !(area.length === 2 && area[0] > 0 && area[0] <= area[1]))
    throw new Error(`pipeline.areaRange: expected [low, high] with 0 < low <= high, received ${JSON.stringify(area)}`);
  // Center and three crops cut from the resized frame; a random-resized crop is resized afterwards.
  if (
    mode !== 'train' &&
    options.shortSide !== undefined &&
    options.cropSize !== undefined &&
    options.shortSide < options.cropSize
  ) {
    throw new Error(`pipeline.shortSide: must be at least the crop size ${options.cropSize}, received ${options.shortSide}`);
  }
}

export function presetPipeline(family: PresetFamily, mode: PipelineMode, options: PresetOptions = {}): PipelineSpec {
  checkPresetOptions(options, mode);
  switch (family) {
    case 'k400':
      return mode === 'train' ? k400Train(options) : mode === 'val' ? k400Val(options) : k400Test(options);
    case 'ssv2':
      return mode === 'train' ? ssv2Train(options) : mode === 'val' ? ssv2Val(options) : ssv2Test(options);
    case 'small':
      return smallClip(mode, options);
    default: {
      const unknown: never = family;
      throw new Error(`pipeline preset: expected k400, ssv2 or small, received "${String(unknown)}"`);
    }
  }
}

/** Views per sample: crops times clips (SSv2's uniform sampling always gives one clip). */
export function viewsPerSample(spec: PipelineSpec): number {
  const crops = spec.crop.kind === 'three' ? 3 : 1;
  return crops * (spec.sampling.uniform ? 1 : spec.sampling.numClips);
}

/** Shape of one sample's output: [views, 3, clipLen, crop, crop]. */
export function sampleShape(spec: PipelineSpec): [number, number, number, number, number] {
  return [viewsPerSample(spec), 3, spec.sampling.clipLen, spec.crop.size, spec.crop.size];
}

/** Frame indices to decode for a video of totalFrames frames (start index already added). */
export function planFrames(spec: PipelineSpec, totalFrames: number, startIndex: number, random: Random): number[] {
  return sampleFrames(totalFrames, { ...spec.sampling, startIndex }, random);
}

export interface TransformTrace {
  resized: { width: number; height: number };
  boxes: { left: number; top: number; width: number; height: number }[];
  flipped: boolean;
  randAugment?: RandAugmentDraw;
  erased?: { left: number; top: number; width: number; height: number };
}

/** Runs the spatial part of the pipeline; writes [views, 3, T, S, S] into `into` at `offset`. */
export function applyPipeline(
  spec: PipelineSpec,
  clip: Clip,
  random: Random,
  into?: Float32Array,
  offset = 0,
): { data: Float32Array; shape: number[]; trace: TransformTrace } {
  const resized = shortSideSize(clip.width, clip.height, spec.shortSide);
  const size = spec.crop.size;
  let cropped: Clip;
  let boxes: TransformTrace['boxes'];
  switch (spec.crop.kind) {
    case 'random-resized': {
      const box = randomResizedCropBox(resized.width, resized.height, random, spec.crop.areaRange, spec.crop.aspectRange);
      boxes = [box];
      // Only the crop box of the short-side resize is computed: identical pixels, less work.
      const region = resizeClip(clip, resized.width, resized.height, box);
      cropped = resizeClip(region, size, size);
      break;
    }
    case 'center': {
      const box = centerCropBox(resized.width, resized.height, size, size);
      boxes = [box];
      cropped = resizeClip(clip, resized.width, resized.height, box);
      break;
    }
    case 'three': {
      boxes = threeCropBoxes(resized.width, resized.height, size, size);
      const full = resizeClip(clip, resized.width, resized.height);
      // Crops outermost, then clips, then time: mmaction2's ThreeCrop extends crop by crop.
      const frames = boxes.flatMap((box) => cropClip(full, box).frames);
      cropped = { width: size, height: size, frames };
      break;
    }
    default: {
      const unknown: never = spec.crop;
      throw new Error(`pipeline ${spec.name}: unknown crop ${JSON.stringify(unknown)}`);
    }
  }
  const flipped = spec.flipRatio > 0 && random.next() < spec.flipRatio;
  let mirror = flipped;
  let augmented: RandAugmentDraw | undefined;
  if (spec.randAugment) {
    // mmaction2 order: Flip, then Imgaug on the flipped frames, then Normalize.
    if (flipped) cropped = flipClip(cropped);
    mirror = false;
    augmented = drawRandAugment(spec.randAugment, random);
    cropped = applyRandAugment(cropped, augmented);
  }
  const { data, shape } = normalizeToNCTHW(cropped, spec.sampling.clipLen, spec.mean, spec.std, into, offset, mirror);
  const trace: TransformTrace = { resized, boxes, flipped };
  if (augmented) trace.randAugment = augmented;
  if (spec.randomErasing) {
    const erased = randomErasing(
      data,
      shape,
      random,
      spec.randomErasing.probability,
      spec.randomErasing.areaRange,
      spec.randomErasing.aspectRange,
      offset,
    );
    if (erased) trace.erased = erased;
  }
  return { data, shape, trace };
}
