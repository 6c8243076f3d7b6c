// imgaug's RandAugment (0.4.0, `iaa.RandAugment(n, m, cval=128)`) as the official SSv2 recipe runs it
// through mmaction2's `Imgaug` transform: one deterministic draw per clip, applied to every frame.
//
// What imgaug does, and so what this does:
// 1. Always first: a horizontal flip with probability 0.5 (yes, also in the SSv2 recipe whose
//    `Flip` has flip_ratio 0; `flipRatio` sets it), then a crop of U(0, m)/224 of each side, drawn per side, resized back
//    to the frame size with bilinear interpolation (cv2 INTER_LINEAR).
// 2. Then n distinct operations out of 18 in random order, each at magnitude m (of 30):
//    identity, autocontrast, equalize, invert, rotate ±m, posterize, solarize, color, contrast,
//    brightness, sharpness (factor 1 ± 0.9m/30), shear x/y ±(m/30)·deg(0.3) (matrix uses tanh, as
//    imgaug does), translate x/y ±0.33m/30 of the size, cutout (square side 20/32·m/30 of the
//    height, cval fill), PIL's BLUR and SMOOTH filters.
// The pixel operations reproduce Pillow 9's (blend arithmetic in float32, L conversion, the filters'
// untouched borders, NEAREST affine warps in 16.16 fixed point). imgaug draws from numpy's
// generator; this draws from the project's seeded Random, so the distribution is the same and
// individual draws are not.
import type { Random } from '../engine/random.ts';
import { roundHalfEven } from './sampling.ts';
import { cropClip, flipClip, resizeClip, type Clip } from './transforms.ts';

export interface RandAugmentSpec {
  /** Operations applied per clip (imgaug's n). */
  n: number;
  /** Magnitude on imgaug's 0-30 scale (m). */
  m: number;
  /** Fill value of rotations, shears, translations and cutout. */
  cval: number;
  /** Probability of imgaug's own first step, a horizontal flip (0.5 in imgaug). */
  flipRatio: number;
}

/** The SSv2 recipe: `dict(type='Imgaug', transforms=[dict(type='RandAugment', n=4, m=7)])`. */
export const ssv2RandAugment: RandAugmentSpec = { n: 4, m: 7, cval: 128, flipRatio: 0.5 };

const maxMagnitude = 30;

export type RandAugmentOp =
  | { op: 'identity' | 'autocontrast' | 'equalize' | 'invert' | 'blur' | 'smooth' }
  | { op: 'rotate' | 'shear-x' | 'shear-y'; degrees: number }
  | { op: 'translate-x' | 'translate-y'; fraction: number }
  | { op: 'posterize'; bits: number }
  | { op: 'solarize'; threshold: number }
  | { op: 'color' | 'contrast' | 'brightness' | 'sharpness'; factor: number }
  /** Centre in relative coordinates; size relative to the frame height (squared). */
  | { op: 'cutout'; centerX: number; centerY: number; size: number };

export const randAugmentOps = [
  'identity',
  'autocontrast',
  'equalize',
  'invert',
  'rotate',
  'posterize',
  'solarize',
  'color',
  'contrast',
  'brightness',
  'sharpness',
  'shear-x',
  'shear-y',
  'translate-x',
  'translate-y',
  'cutout',
  'blur',
  'smooth',
] as const;

export interface RandAugmentDraw {
  flip: boolean;
  /** Fractions of the height (top, bottom) and width (left, right) cropped before resizing back. */
  crop: { top: number; right: number; bottom: number; left: number };
  ops: RandAugmentOp[];
  cval: number;
}

export function checkRandAugmentSpec(spec: RandAugmentSpec, where = 'randAugment'): void {
  if (!Number.isInteger(spec.n) || spec.n < 0 || spec.n > randAugmentOps.length)
    throw new Error(`${where}.n: expected an integer in [0, ${randAugmentOps.length}], received ${spec.n}`);
  if (!Number.isInteger(spec.m) || spec.m < 0)
    throw new Error(`${where}.m: expected a non-negative integer magnitude, received ${spec.m}`);
  if (!Number.isInteger(spec.cval) || spec.cval < 0 || spec.cval > 255)
    throw new Error(`${where}.cval: expected an integer in [0, 255], received ${spec.cval}`);
  if (!(spec.flipRatio >= 0 && spec.flipRatio <= 1))
    throw new Error(`${where}.flipRatio: expected a probability in [0, 1], received ${spec.flipRatio}`);
}

/** One draw for a whole clip (mmaction2 calls imgaug's `to_deterministic()` once per clip). */
export function drawRandAugment(spec: RandAugmentSpec, random: Random): RandAugmentDraw {
  checkRandAugmentSpec(spec);
  const level = (max: number) => (spec.m * max) / maxMagnitude;
  const signed = (value: number) => (random.next() < 0.5 ? -value : value);
  const flip = random.next() < spec.flipRatio;
  const side = () => (random.next() * spec.m) / 224;
  const crop = { top: side(), right: side(), bottom: side(), left: side() };
  // n distinct operations in random order: a partial Fisher-Yates shuffle.
  const order: number[] = randAugmentOps.map((_, i) => i);
  for (let i = 0; i < spec.n; i++) {
    const j = i + random.int(order.length - i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const ops = order.slice(0, spec.n).map((index): RandAugmentOp => {
    const op = randAugmentOps[index];
    switch (op) {
      case 'rotate':
        return { op, degrees: signed(level(30)) };
      case 'posterize':
        return { op, bits: 8 - Math.min(6, Math.max(0, Math.floor(level(6)))) };
      case 'solarize':
        return { op, threshold: Math.min(256, Math.max(0, 256 - Math.floor(level(256)))) };
      case 'color':
      case 'contrast':
      case 'brightness':
      case 'sharpness':
        return { op, factor: Math.min(1.9, Math.max(0.1, 1 + signed(level(0.9)))) };
      case 'shear-x':
      case 'shear-y':
        return { op, degrees: signed(level((0.3 * 180) / Math.PI)) };
      case 'translate-x':
      case 'translate-y':
        return { op, fraction: signed(level(0.33)) };
      case 'cutout':
        return { op, centerX: random.next(), centerY: random.next(), size: Math.min(20 / 32, Math.max(0, level(20 / 32))) };
      default:
        return { op };
    }
  });
  return { flip, crop, ops, cval: spec.cval };
}

/** Applies a draw to every frame of a clip; returns a new clip of the same size. */
export function applyRandAugment(clip: Clip, draw: RandAugmentDraw): Clip {
  let current = draw.flip ? flipClip(clip) : clip;
  current = cropAndResizeBack(current, draw.crop);
  const { width, height } = current;
  const frames = current.frames.map((frame) => {
    let image = frame;
    for (const op of draw.ops) image = applyRandAugmentOp(image, width, height, op, draw.cval);
    return image;
  });
  return { width, height, frames };
}

function cropAndResizeBack(clip: Clip, crop: RandAugmentDraw['crop']): Clip {
  let top = roundHalfEven(clip.height * crop.top);
  let bottom = roundHalfEven(clip.height * crop.bottom);
  let left = roundHalfEven(clip.width * crop.left);
  let right = roundHalfEven(clip.width * crop.right);
  // imgaug never crops an axis to nothing: it takes the excess back from both sides.
  ({ low: top, high: bottom } = keepOne(clip.height, top, bottom));
  ({ low: left, high: right } = keepOne(clip.width, left, right));
  if (top + bottom + left + right === 0) return clip;
  const cropped = cropClip(clip, { left, top, width: clip.width - left - right, height: clip.height - top - bottom });
  return resizeClip(cropped, clip.width, clip.height);
}

function keepOne(size: number, low: number, high: number): { low: number; high: number } {
  const excess = low + high - (size - 1);
  if (excess <= 0) return { low, high };
  const lowShare = Math.ceil(excess / 2);
  return { low: Math.max(0, low - lowShare), high: Math.max(0, high - (excess - lowShare)) };
}

export function applyRandAugmentOp(
  image: Uint8Array,
  width: number,
  height: number,
  op: RandAugmentOp,
  cval: number,
): Uint8Array {
  switch (op.op) {
    case 'identity':
      return image;
    case 'autocontrast':
      return autocontrast(image);
    case 'equalize':
      return equalize(image);
    case 'invert':
      return mapBytes(image, (v) => 255 - v);
    case 'posterize': {
      const mask = (0xff << (8 - op.bits)) & 0xff;
      return mapBytes(image, (v) => v & mask);
    }
    case 'solarize':
      return mapBytes(image, (v) => (v < op.threshold ? v : 255 - v));
    case 'color':
      return blend(grayscaleRgb(image), image, op.factor);
    case 'contrast':
      return blend(new Uint8Array(image.length).fill(meanLuminance(image)), image, op.factor);
    case 'brightness':
      return blend(new Uint8Array(image.length), image, op.factor);
    case 'sharpness':
      return blend(filter3x3(image, width, height, smoothKernel, 13), image, op.factor);
    case 'blur':
      return filter5x5(image, width, height, blurKernel, 16);
    case 'smooth':
      return filter3x3(image, width, height, smoothKernel, 13);
    case 'rotate':
      return warpAffine(image, width, height, affineMatrix({ rotate: op.degrees, center: [width * 0.5, height * 0.5] }), cval);
    case 'shear-x':
      return warpAffine(image, width, height, affineMatrix({ shearX: op.degrees }), cval);
    case 'shear-y':
      return warpAffine(image, width, height, affineMatrix({ shearY: op.degrees }), cval);
    case 'translate-x':
      return warpAffine(image, width, height, affineMatrix({ translateX: op.fraction * width }), cval);
    case 'translate-y':
      return warpAffine(image, width, height, affineMatrix({ translateY: op.fraction * height }), cval);
    case 'cutout':
      return cutout(image, width, height, op, cval);
    default: {
      const unknown: never = op;
      throw new Error(`RandAugment: unknown operation ${JSON.stringify(unknown)}`);
    }
  }
}

function mapBytes(image: Uint8Array, f: (value: number) => number): Uint8Array {
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) table[v] = f(v);
  return applyTables(image, [table, table, table]);
}

function applyTables(image: Uint8Array, tables: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(image.length);
  const [r, g, b] = tables;
  for (let i = 0; i < image.length; i += 3) {
    out[i] = r[image[i]];
    out[i + 1] = g[image[i + 1]];
    out[i + 2] = b[image[i + 2]];
  }
  return out;
}

function histograms(image: Uint8Array): Uint32Array[] {
  const h = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  for (let i = 0; i < image.length; i += 3) {
    h[0][image[i]]++;
    h[1][image[i + 1]]++;
    h[2][image[i + 2]]++;
  }
  return h;
}

/** PIL ImageOps.autocontrast(cutoff=0): per channel, stretch [min, max] to [0, 255], truncating. */
function autocontrast(image: Uint8Array): Uint8Array {
  const tables = histograms(image).map((h) => {
    const table = new Uint8Array(256);
    let lo = 0;
    while (lo < 255 && h[lo] === 0) lo++;
    let hi = 255;
    while (hi > 0 && h[hi] === 0) hi--;
    for (let v = 0; v < 256; v++) {
      if (hi <= lo) table[v] = v;
      else {
        const scale = 255 / (hi - lo);
        table[v] = Math.min(255, Math.max(0, Math.trunc(v * scale - lo * scale)));
      }
    }
    return table;
  });
  return applyTables(image, tables);
}

/** PIL ImageOps.equalize: per channel cumulative histogram, step = (count - last bin) // 255. */
function equalize(image: Uint8Array): Uint8Array {
  const tables = histograms(image).map((h) => {
    const table = new Uint8Array(256);
    for (let v = 0; v < 256; v++) table[v] = v;
    let last = 0;
    let nonZero = 0;
    let total = 0;
    for (let v = 0; v < 256; v++) {
      if (h[v]) {
        nonZero++;
        last = h[v];
      }
      total += h[v];
    }
    if (nonZero <= 1) return table;
    const step = Math.floor((total - last) / 255);
    if (step === 0) return table;
    let n = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      table[v] = Math.min(255, Math.floor(n / step));
      n += h[v];
    }
    return table;
  });
  return applyTables(image, tables);
}

/** Pillow's RGB to L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16. */
function luminance(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

function grayscaleRgb(image: Uint8Array): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i += 3) out[i] = out[i + 1] = out[i + 2] = luminance(image[i], image[i + 1], image[i + 2]);
  return out;
}

/** int(mean of the L image + 0.5), as ImageEnhance.Contrast computes its grey level. */
function meanLuminance(image: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < image.length; i += 3) sum += luminance(image[i], image[i + 1], image[i + 2]);
  return Math.trunc(sum / (image.length / 3) + 0.5);
}

/**
 * Pillow's Image.blend(a, b, alpha) on bytes: float32 a + alpha * (b - a), truncated, clipped. The
 * result depends only on the byte pair, so it is tabulated once (256 x 256) and looked up.
 */
function blend(a: Uint8Array, b: Uint8Array, alpha: number): Uint8Array {
  const f = Math.fround(alpha);
  const table = new Uint8Array(256 * 256);
  for (let x = 0; x < 256; x++) {
    for (let y = 0; y < 256; y++) {
      const value = Math.fround(x + Math.fround(f * (y - x)));
      table[(x << 8) | y] = value <= 0 ? 0 : value >= 255 ? 255 : Math.trunc(value);
    }
  }
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = table[(a[i] << 8) | b[i]];
  return out;
}

const smoothKernel = [1, 1, 1, 1, 5, 1, 1, 1, 1];
const blurKernel = [1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1];

/** Pillow's byte rounding after a kernel: clip to [0, 255], then round half up. */
function clip8(value: number): number {
  return value <= 0 ? 0 : value >= 255 ? 255 : Math.trunc(value + 0.5);
}

/** PIL ImageFilter with a 3x3 kernel: the outer ring of pixels is copied unchanged. */
function filter3x3(image: Uint8Array, width: number, height: number, kernel: number[], scale: number): Uint8Array {
  return filterKernel(image, width, height, kernel, scale, 1);
}

function filter5x5(image: Uint8Array, width: number, height: number, kernel: number[], scale: number): Uint8Array {
  return filterKernel(image, width, height, kernel, scale, 2);
}

function filterKernel(
  image: Uint8Array,
  width: number,
  height: number,
  kernel: number[],
  scale: number,
  radius: number,
): Uint8Array {
  const out = Uint8Array.from(image);
  if (width < 2 * radius + 1 || height < 2 * radius + 1) return out;
  const size = 2 * radius + 1;
  const f = Math.fround;
  // Pillow's order: kernel row 0 on the row below, the last kernel row on the row above; within a
  // row left to right; each row summed in float32, then added to the running float32 sum. Zero
  // taps add nothing to a float sum, so they are left out; a product of a byte and a float32 is
  // exact in double, and one float32 sum of two float32 values is too, so fround after each step
  // gives float32 arithmetic exactly.
  const offsets: number[] = [];
  const weights: number[] = [];
  const rowEnds = new Int32Array(size);
  for (let ky = 0; ky < size; ky++) {
    for (let kx = 0; kx < size; kx++) {
      if (kernel[ky * size + kx] === 0) continue;
      offsets.push(((radius - ky) * width + kx - radius) * 3);
      weights.push(f(kernel[ky * size + kx] / scale));
    }
    rowEnds[ky] = offsets.length;
  }
  const tapOffsets = Int32Array.from(offsets);
  const tapWeights = Float64Array.from(weights);
  for (let y = radius; y < height - radius; y++) {
    for (let c = (y * width + radius) * 3, end = (y * width + width - radius) * 3; c < end; c++) {
      let sum = 0;
      let t = 0;
      for (let row = 0; row < size; row++) {
        let rowSum = 0;
        for (const rowEnd = rowEnds[row]; t < rowEnd; t++) rowSum = f(rowSum + f(image[c + tapOffsets[t]] * tapWeights[t]));
        sum = f(sum + rowSum);
      }
      out[c] = clip8(sum);
    }
  }
  return out;
}

interface AffineSettings {
  rotate?: number;
  shearX?: number;
  shearY?: number;
  translateX?: number;
  translateY?: number;
  center?: [number, number];
}

type Matrix3 = number[]; // row-major 3x3

function multiply3(a: Matrix3, b: Matrix3): Matrix3 {
  const out: Matrix3 = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let sum = 0;
      for (let k = 0; k < 3; k++) sum = Math.fround(sum + Math.fround(a[i * 3 + k] * b[k * 3 + j]));
      out.push(sum);
    }
  }
  return out;
}

/**
 * imgaug's pillike matrix (float32): decenterize · translate · shear · rotate · centerize, with the
 * rotation negated and the shear entered as tanh(angle); returns the inverse's top two rows, which
 * map output pixels to input pixels as PIL's AFFINE transform expects.
 */
function affineMatrix(settings: AffineSettings): number[] {
  const f = Math.fround;
  const [cx, cy] = settings.center ?? [0, 0];
  const rad = (degrees = 0) => (degrees * Math.PI) / 180;
  const rotation = -rad(settings.rotate);
  const shearX = Math.tanh(rad(settings.shearX));
  const shearY = Math.tanh(rad(settings.shearY));
  const centerize = [1, 0, f(-cx), 0, 1, f(-cy), 0, 0, 1];
  const rotate = [f(Math.cos(rotation)), f(Math.sin(rotation)), 0, f(-Math.sin(rotation)), f(Math.cos(rotation)), 0, 0, 0, 1];
  const shear = [1, f(shearX), 0, f(shearY), 1, 0, 0, 0, 1];
  const translate = [1, 0, f(settings.translateX ?? 0), 0, 1, f(settings.translateY ?? 0), 0, 0, 1];
  const decenterize = [1, 0, f(cx), 0, 1, f(cy), 0, 0, 1];
  let m: Matrix3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (const next of [centerize, rotate, shear, translate, decenterize]) m = multiply3(next, m);
  // Inverse of [[a b c] [d e g] [0 0 1]].
  const [a, b, c, d, e, g] = m;
  const det = a * e - b * d;
  return [e / det, -b / det, (b * g - c * e) / det, -d / det, a / det, (c * d - a * g) / det].map(f);
}

/**
 * PIL Image.transform(size, AFFINE, data, NEAREST, fillcolor): a pure translation or scale takes
 * Pillow's tabulated float path, anything else its 16.16 fixed-point path; pixels mapped outside
 * the image keep the fill colour.
 */
function warpAffine(image: Uint8Array, width: number, height: number, data: number[], fill: number): Uint8Array {
  const out = new Uint8Array(image.length).fill(fill);
  const [a0, a1, a2, a3, a4, a5] = data;
  const copy = (x: number, y: number, xin: number, yin: number) => {
    const to = (y * width + x) * 3;
    const from = (yin * width + xin) * 3;
    out[to] = image[from];
    out[to + 1] = image[from + 1];
    out[to + 2] = image[from + 2];
  };
  if (a1 === 0 && a3 === 0) {
    const coord = (v: number) => (v < 0 ? -1 : Math.trunc(v));
    const columns = new Int32Array(width).fill(-1);
    let xo = a2 + a0 * 0.5;
    for (let x = 0; x < width; x++, xo += a0) {
      const xin = coord(xo);
      if (xin >= 0 && xin < width) columns[x] = xin;
    }
    let yo = a5 + a4 * 0.5;
    for (let y = 0; y < height; y++, yo += a4) {
      const yin = coord(yo);
      if (yin < 0 || yin >= height) continue;
      for (let x = 0; x < width; x++) if (columns[x] >= 0) copy(x, y, columns[x], yin);
    }
    return out;
  }
  const fix = (v: number) => Math.floor(v * 65536 + 0.5);
  const fits = (x: number, y: number) => Math.abs(x * a0 + y * a1 + a2) < 32768 && Math.abs(x * a3 + y * a4 + a5) < 32768;
  if (!(fits(0, 0) && fits(width, height) && fits(0, height) && fits(width, 0))) {
    throw new Error(
      `RandAugment: affine warp ${JSON.stringify(data)} leaves Pillow's fixed-point range for a ${width}x${height} frame`,
    );
  }
  const f0 = fix(a0);
  const f1 = fix(a1);
  const f3 = fix(a3);
  const f4 = fix(a4);
  let rowX = fix(a2 + a0 * 0.5 + a1 * 0.5);
  let rowY = fix(a5 + a3 * 0.5 + a4 * 0.5);
  for (let y = 0; y < height; y++, rowX = (rowX + f1) | 0, rowY = (rowY + f4) | 0) {
    let xx = rowX;
    let yy = rowY;
    for (let x = 0; x < width; x++, xx = (xx + f0) | 0, yy = (yy + f3) | 0) {
      const xin = xx >> 16;
      if (xin < 0 || xin >= width) continue;
      const yin = yy >> 16;
      if (yin >= 0 && yin < height) copy(x, y, xin, yin);
    }
  }
  return out;
}

/** imgaug cutout_: a square of side size·height centred at (x, y), corners truncated to pixels. */
function cutout(
  image: Uint8Array,
  width: number,
  height: number,
  op: Extract<RandAugmentOp, { op: 'cutout' }>,
  cval: number,
): Uint8Array {
  const half = (op.size * height) / 2;
  const cx = op.centerX * width;
  const cy = op.centerY * height;
  const clamp = (v: number, max: number) => Math.min(Math.max(Math.trunc(v), 0), max);
  const x1 = clamp(cx - half, width);
  const x2 = clamp(cx + half, width);
  const y1 = clamp(cy - half, height);
  const y2 = clamp(cy + half, height);
  const out = Uint8Array.from(image);
  for (let y = y1; y < y2; y++) out.fill(cval, (y * width + x1) * 3, (y * width + x2) * 3);
  return out;
}
