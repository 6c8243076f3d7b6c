// Spatial transforms of mmaction2's pipelines on host arrays. A clip is a list of HWC RGB uint8
// frames of one size; every transform applies the same geometry to all of its frames.
import type { Random } from '../engine/random.ts';
import { roundHalfEven } from './sampling.ts';

export interface Clip {
  width: number;
  height: number;
  /** Each frame is height * width * 3 bytes, RGB, row-major. */
  frames: Uint8Array[];
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export const imagenetMean: readonly [number, number, number] = [123.675, 116.28, 103.53];
export const imagenetStd: readonly [number, number, number] = [58.395, 57.12, 57.375];

/**
 * Output size of mmaction2 `Resize(scale=(-1, shortSide), keep_ratio=True)`: mmcv's rescale_size
 * scales by shortSide / short edge and rounds each side with int(x * factor + 0.5).
 */
export function shortSideSize(width: number, height: number, shortSide: number): { width: number; height: number } {
  const factor = shortSide / Math.min(width, height);
  return { width: Math.floor(width * factor + 0.5), height: Math.floor(height * factor + 0.5) };
}

// OpenCV INTER_LINEAR on 8-bit images: float source coordinates with half-pixel centres, weights
// quantised to 11 bits, rows resized horizontally in integers, then combined vertically with the
// arithmetic of OpenCV's vectorised path (x86 SSE / ARM NEON) and its scalar tail.
const coefficientScale = 2048;

/**
 * Source taps and 11-bit weights per output position, as OpenCV's resize computes them: the scale
 * is 1 / (target / source) in double, positions and fractions in float32. Columns past an edge get
 * the edge pixel with weights (1, 0); rows past an edge keep their fraction and read the edge row
 * twice (OpenCV clamps row indices, not weights, which matters for its vectorised rounding).
 */
function linearTable(
  source: number,
  target: number,
  axis: 'columns' | 'rows',
): { low: Int32Array; high: Int32Array; weightLow: Int32Array; weightHigh: Int32Array } {
  const scale = 1 / (target / source);
  const low = new Int32Array(target);
  const high = new Int32Array(target);
  const weightLow = new Int32Array(target);
  const weightHigh = new Int32Array(target);
  for (let d = 0; d < target; d++) {
    const position = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(position);
    let fraction = Math.fround(position - s);
    if (axis === 'columns') {
      if (s < 0) {
        s = 0;
        fraction = 0;
      }
      if (s >= source - 1) {
        s = source - 1;
        fraction = 0;
      }
    }
    low[d] = Math.min(Math.max(s, 0), source - 1);
    high[d] = Math.min(Math.max(s + 1, 0), source - 1);
    weightHigh[d] = roundHalfEven(fraction * coefficientScale);
    weightLow[d] = roundHalfEven(Math.fround(1 - fraction) * coefficientScale);
  }
  return { low, high, weightLow, weightHigh };
}

/**
 * Bilinear resize of every frame to width x height. With `region`, only that box of the resized
 * image is computed (same pixels as resizing fully and cropping, much less work before a crop).
 */
export function resizeClip(clip: Clip, width: number, height: number, region?: Box): Clip {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`resize: expected a positive integer size, received ${width}x${height}`);
  }
  const box = region ?? { left: 0, top: 0, width, height };
  const xs = linearTable(clip.width, width, 'columns');
  const ys = linearTable(clip.height, height, 'rows');
  // Byte offsets and weights of the box's columns, so the inner loops touch only flat typed arrays.
  const offsetLow = new Int32Array(box.width);
  const offsetHigh = new Int32Array(box.width);
  const weightLow = new Int32Array(box.width);
  const weightHigh = new Int32Array(box.width);
  for (let x = 0; x < box.width; x++) {
    offsetLow[x] = xs.low[box.left + x] * 3;
    offsetHigh[x] = xs.high[box.left + x] * 3;
    weightLow[x] = xs.weightLow[box.left + x];
    weightHigh[x] = xs.weightHigh[box.left + x];
  }
  const rowLength = box.width * 3;
  let rowLow = new Int32Array(rowLength);
  let rowHigh = new Int32Array(rowLength);
  const sourceStride = clip.width * 3;
  const horizontal = (source: Uint8Array, sourceRow: number, into: Int32Array) => {
    const base = sourceRow * sourceStride;
    for (let x = 0, o = 0; x < box.width; x++, o += 3) {
      const a = base + offsetLow[x];
      const b = base + offsetHigh[x];
      const wa = weightLow[x];
      const wb = weightHigh[x];
      into[o] = source[a] * wa + source[b] * wb;
      into[o + 1] = source[a + 1] * wa + source[b + 1] * wb;
      into[o + 2] = source[a + 2] * wa + source[b + 2] * wb;
    }
  };
  const frames = clip.frames.map((source) => {
    const out = new Uint8Array(box.width * box.height * 3);
    let lowRow = -1;
    let highRow = -1;
    for (let y = 0; y < box.height; y++) {
      const dy = box.top + y;
      const sy0 = ys.low[dy];
      const sy1 = ys.high[dy];
      if (sy0 !== lowRow) {
        if (sy0 === highRow) {
          // Moving down one source row: the old lower row becomes the upper one.
          const swap = rowLow;
          rowLow = rowHigh;
          rowHigh = swap;
          highRow = -1;
        } else horizontal(source, sy0, rowLow);
        lowRow = sy0;
      }
      if (sy1 !== highRow) {
        horizontal(source, sy1, rowHigh);
        highRow = sy1;
      }
      const wa = ys.weightLow[dy];
      const wb = ys.weightHigh[dy];
      const base = y * rowLength;
      // OpenCV's vertical pass for 8-bit images drops 4 bits before a 16-bit high multiply, in its
      // SIMD loop and, by a specialisation of its scalar loop, in the row tail alike (checked against
      // cv2.resize of OpenCV 4.6: test/data/golden/resize.json.gz).
      for (let i = 0; i < rowLength; i++)
        out[base + i] = ((((rowLow[i] >> 4) * wa) >> 16) + (((rowHigh[i] >> 4) * wb) >> 16) + 2) >> 2;
    }
    return out;
  });
  return { width: box.width, height: box.height, frames };
}

export function cropClip(clip: Clip, box: Box): Clip {
  if (
    box.left < 0 ||
    box.top < 0 ||
    box.width < 1 ||
    box.height < 1 ||
    box.left + box.width > clip.width ||
    box.top + box.height > clip.height
  ) {
    throw new Error(
      `crop: box ${box.width}x${box.height}+${box.left}+${box.top} does not fit a ${clip.width}x${clip.height} frame`,
    );
  }
  const rowBytes = box.width * 3;
  const frames = clip.frames.map((source) => {
    const out = new Uint8Array(rowBytes * box.height);
    for (let y = 0; y < box.height; y++) {
      const start = ((box.top + y) * clip.width + box.left) * 3;
      out.set(source.subarray(start, start + rowBytes), y * rowBytes);
    }
    return out;
  });
  return { width: box.width, height: box.height, frames };
}

export function flipClip(clip: Clip): Clip {
  const frames = clip.frames.map((source) => {
    const out = new Uint8Array(source.length);
    for (let y = 0; y < clip.height; y++) {
      const row = y * clip.width * 3;
      for (let x = 0; x < clip.width; x++) {
        const from = row + x * 3;
        const to = row + (clip.width - 1 - x) * 3;
        out[to] = source[from];
        out[to + 1] = source[from + 1];
        out[to + 2] = source[from + 2];
      }
    }
    return out;
  });
  return { width: clip.width, height: clip.height, frames };
}

/** mmaction2 CenterCrop: left = (w - cw) // 2, top = (h - ch) // 2. */
export function centerCropBox(width: number, height: number, cropWidth: number, cropHeight: number): Box {
  if (cropWidth > width || cropHeight > height)
    throw new Error(`center crop: ${cropWidth}x${cropHeight} does not fit a ${width}x${height} frame`);
  return {
    left: Math.floor((width - cropWidth) / 2),
    top: Math.floor((height - cropHeight) / 2),
    width: cropWidth,
    height: cropHeight,
  };
}

/**
 * mmaction2 ThreeCrop boxes in its order: start, end, middle of the long side. One side of the crop
 * must equal the frame's (the test pipelines resize the short side to the crop size first).
 */
export function threeCropBoxes(width: number, height: number, cropWidth: number, cropHeight: number): Box[] {
  if (cropHeight === height && cropWidth <= width) {
    const step = Math.floor((width - cropWidth) / 2);
    return [0, 2 * step, step].map((left) => ({ left, top: 0, width: cropWidth, height: cropHeight }));
  }
  if (cropWidth === width && cropHeight <= height) {
    const step = Math.floor((height - cropHeight) / 2);
    return [0, 2 * step, step].map((top) => ({ left: 0, top, width: cropWidth, height: cropHeight }));
  }
  throw new Error(
    `three crop: ${cropWidth}x${cropHeight} needs one side equal to the ${width}x${height} frame's (resize the short side to the crop size first)`,
  );
}

/**
 * mmaction2 RandomResizedCrop.get_crop_bbox: all 10 aspect ratios (log-uniform) and areas are drawn
 * first, sides rounded half-to-even; the first candidate that fits gets a random top-left corner;
 * otherwise the centred square of the short side.
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  random: Random,
  areaRange: readonly [number, number] = [0.08, 1],
  aspectRange: readonly [number, number] = [3 / 4, 4 / 3],
  attempts = 10,
): Box {
  const area = width * height;
  const logLow = Math.log(aspectRange[0]);
  const logHigh = Math.log(aspectRange[1]);
  const ratios = Array.from({ length: attempts }, () => Math.exp(logLow + (logHigh - logLow) * random.next()));
  const areas = Array.from({ length: attempts }, () => (areaRange[0] + (areaRange[1] - areaRange[0]) * random.next()) * area);
  for (let i = 0; i < attempts; i++) {
    const cropWidth = roundHalfEven(Math.sqrt(areas[i] * ratios[i]));
    const cropHeight = roundHalfEven(Math.sqrt(areas[i] / ratios[i]));
    if (cropWidth >= 1 && cropHeight >= 1 && cropHeight <= height && cropWidth <= width) {
      const left = random.int(width - cropWidth + 1);
      const top = random.int(height - cropHeight + 1);
      return { left, top, width: cropWidth, height: cropHeight };
    }
  }
  const side = Math.min(width, height);
  return { left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side };
}

/**
 * Normalize + FormatShape('NCTHW'): frames are ordered view-major (crops outermost, then clips), each
 * view `clipLen` frames. Computes (x - mean) * (1 / std) in float32 as mmcv's imnormalize does.
 * `mirror` applies a horizontal flip on the way (same values as flipClip first, one pass fewer).
 */
export function normalizeToNCTHW(
  clip: Clip,
  clipLen: number,
  mean: readonly number[] = imagenetMean,
  std: readonly number[] = imagenetStd,
  into?: Float32Array,
  offset = 0,
  mirror = false,
): { data: Float32Array; shape: [number, number, number, number, number] } {
  if (clip.frames.length % clipLen !== 0)
    throw new Error(`format shape: ${clip.frames.length} frames is not a multiple of clip length ${clipLen}`);
  const views = clip.frames.length / clipLen;
  const plane = clip.width * clip.height;
  const size = views * 3 * clipLen * plane;
  const data = into ?? new Float32Array(size);
  if (data.length < offset + size) throw new Error(`format shape: output holds ${data.length - offset} values, ${size} needed`);
  const means = mean.map((value) => Math.fround(value));
  const inverse = std.map((value) => Math.fround(1 / value));
  for (let view = 0; view < views; view++) {
    for (let t = 0; t < clipLen; t++) {
      const frame = clip.frames[view * clipLen + t];
      for (let channel = 0; channel < 3; channel++) {
        const base = offset + ((view * 3 + channel) * clipLen + t) * plane;
        const m = means[channel];
        const s = inverse[channel];
        if (!mirror) {
          for (let p = 0, i = channel; p < plane; p++, i += 3) data[base + p] = Math.fround(frame[i] - m) * s;
          continue;
        }
        // Horizontal flip folded into the same pass: row y, column x reads column width - 1 - x.
        const width = clip.width;
        for (let y = 0; y < clip.height; y++) {
          const row = base + y * width;
          for (let x = 0, i = ((y + 1) * width - 1) * 3 + channel; x < width; x++, i -= 3)
            data[row + x] = Math.fround(frame[i] - m) * s;
        }
      }
    }
  }
  return { data, shape: [views, 3, clipLen, clip.height, clip.width] };
}

/** Inverse of the normalisation, to 0-255 bytes (for previews). */
export function denormalizeToBytes(
  value: number,
  channel: number,
  mean: readonly number[] = imagenetMean,
  std: readonly number[] = imagenetStd,
): number {
  return Math.max(0, Math.min(255, Math.round(value * std[channel] + mean[channel])));
}

/**
 * timm RandomErasing in 'const' mode on normalised NCTHW views (zeros, one box, the same box on
 * every frame of a view): up to 10 attempts at area U(areaRange) * frame area, log-uniform aspect.
 */
export function randomErasing(
  data: Float32Array,
  shape: readonly number[],
  random: Random,
  probability = 0.25,
  areaRange: readonly [number, number] = [0.02, 1 / 3],
  aspectRange: readonly [number, number] = [0.3, 1 / 0.3],
  offset = 0,
): Box | undefined {
  const [views, channels, frames, height, width] = shape;
  if (random.next() >= probability) return undefined;
  const logLow = Math.log(aspectRange[0]);
  const logHigh = Math.log(aspectRange[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = (areaRange[0] + (areaRange[1] - areaRange[0]) * random.next()) * width * height;
    const ratio = Math.exp(logLow + (logHigh - logLow) * random.next());
    const boxHeight = roundHalfEven(Math.sqrt(target * ratio));
    const boxWidth = roundHalfEven(Math.sqrt(target / ratio));
    if (boxWidth < width && boxHeight < height) {
      const top = random.int(height - boxHeight + 1);
      const left = random.int(width - boxWidth + 1);
      for (let v = 0; v < views; v++) {
        for (let c = 0; c < channels; c++) {
          for (let t = 0; t < frames; t++) {
            const base = offset + ((v * channels + c) * frames + t) * height * width;
            for (let y = top; y < top + boxHeight; y++) data.fill(0, base + y * width + left, base + y * width + left + boxWidth);
          }
        }
      }
      return { left, top, width: boxWidth, height: boxHeight };
    }
  }
  return undefined;
}
