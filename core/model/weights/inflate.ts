// Inflation of official 2-D ImageNet Swin weights into a 3-D backbone, following the official
// `inflate_weights` (fact sheet, section 5) so a model initialised here matches one initialised by
// the official code: time-split patch embedding, bicubic-resized then tiled bias tables, 2-D-only
// buffers dropped and the classification head left out.
import type { BackboneConfig } from '../config.ts';
import { backboneKeys } from '../keys.ts';
import type { HostTensor, TensorMap } from './types.ts';

export interface InflationReport {
  /** Patch embedding weights given a time axis (repeated, divided by the temporal patch size). */
  inflated: string[];
  /** Bias tables resized bicubically because the 2-D and 3-D spatial windows differ. */
  resized: { key: string; from: [number, number]; to: [number, number] }[];
  /** Bias tables tiled along the temporal offset. */
  tiled: string[];
  /** Keys copied unchanged. */
  copied: string[];
  /** 2-D buffers removed as the official code does (relative_position_index, attn_mask). */
  dropped: string[];
  /** Keys the 3-D backbone has no place for (head.* and anything unexpected). */
  ignored: { key: string; reason: string }[];
  /** Parameters the configured backbone needs that the 2-D file does not provide. */
  missing: string[];
  /** Keys present on both sides whose shapes cannot be reconciled. */
  mismatched: { key: string; expected: number[]; received: number[]; reason: string }[];
  notes: string[];
}

export interface InflationResult {
  /** Backbone state dict, keys without `backbone.`, in the official registration order. */
  stateDict: TensorMap;
  report: InflationReport;
}

export function inflate2dTo3d(source: TensorMap, cfg: BackboneConfig): InflationResult {
  const report: InflationReport = {
    inflated: [],
    resized: [],
    tiled: [],
    copied: [],
    dropped: [],
    ignored: [],
    missing: [],
    mismatched: [],
    notes: [],
  };
  let input = source;
  const names = [...source.keys()];
  if (names.length > 0 && names.every((name) => name.startsWith('backbone.'))) {
    input = new Map([...source].map(([name, tensor]) => [name.slice('backbone.'.length), tensor]));
    report.notes.push('removed the "backbone." prefix of the 2-D keys');
  }
  const expected = backboneKeys(cfg);
  const produced = new Map<string, HostTensor>();
  const [pt, ph, pw] = cfg.patch_size;
  const [wd, wh, ww] = cfg.window_size;

  for (const [key, tensor] of input) {
    if (key.includes('relative_position_index') || key.includes('attn_mask')) {
      report.dropped.push(key);
      continue;
    }
    const spec = expected.get(key);
    if (!spec) {
      const reason = key.startsWith('head.')
        ? 'classification head of the 2-D model; the 3-D backbone has none'
        : 'not a key of the configured 3-D backbone';
      report.ignored.push({ key, reason });
      continue;
    }
    const mismatch = (reason: string) => report.mismatched.push({ key, expected: spec.shape, received: tensor.shape, reason });
    if (tensor.dtype !== 'float32') {
      mismatch(`expected floating-point weights, found ${tensor.fileDtype}`);
      continue;
    }
    if (key === 'patch_embed.proj.weight' && tensor.shape.length === 4) {
      const [channels, inChannels, kh, kw] = tensor.shape;
      if (channels !== spec.shape[0] || inChannels !== spec.shape[1] || kh !== ph || kw !== pw) {
        mismatch(
          `a 2-D patch embedding [${tensor.shape.join(', ')}] inflates to [${channels}, ${inChannels}, ${pt}, ${kh}, ${kw}]`,
        );
        continue;
      }
      produced.set(key, inflatePatchEmbedding(tensor, pt));
      report.inflated.push(key);
      continue;
    }
    if (key.endsWith('relative_position_bias_table')) {
      const [rows, heads] = tensor.shape;
      if (tensor.shape.length !== 2 || heads !== spec.shape[1]) {
        // The official code only warns here and then fails to load; say so up front.
        mismatch(`the 2-D table has ${heads} heads but the configured stage has ${spec.shape[1]}`);
        continue;
      }
      const gridHeight = 2 * wh - 1;
      const gridWidth = 2 * ww - 1;
      let table = tensor.data as Float32Array;
      if (rows !== gridHeight * gridWidth) {
        const side = Math.round(Math.sqrt(rows));
        if (side * side !== rows) {
          mismatch(`a 2-D table needs a square number of rows ((2w-1)^2), found ${rows}`);
          continue;
        }
        table = resizeBiasTable(table, heads, side, side, gridHeight, gridWidth);
        report.resized.push({ key, from: [side, side], to: [gridHeight, gridWidth] });
      }
      produced.set(key, tileBiasTable(table, heads, 2 * wd - 1, tensor.fileDtype));
      report.tiled.push(key);
      continue;
    }
    if (!sameShape(tensor.shape, spec.shape)) {
      mismatch('shapes differ');
      continue;
    }
    produced.set(key, tensor);
    report.copied.push(key);
  }

  const stateDict: TensorMap = new Map();
  for (const [key, spec] of expected) {
    const tensor = produced.get(key);
    if (tensor) stateDict.set(key, tensor);
    else if (spec.kind === 'param' && !report.mismatched.some((entry) => entry.key === key)) report.missing.push(key);
  }
  report.notes.push('relative_position_index buffers are not taken from the 2-D file: they are recomputed from the 3-D window');
  return { stateDict, report };
}

/** [C, Cin, kh, kw] -> [C, Cin, pt, kh, kw]: each time slice is w / pt, so a static clip gives the 2-D response. */
function inflatePatchEmbedding(tensor: HostTensor, pt: number): HostTensor {
  const [channels, inChannels, kh, kw] = tensor.shape;
  const plane = kh * kw;
  const source = tensor.data as Float32Array;
  const out = new Float32Array(channels * inChannels * pt * plane);
  for (let filter = 0; filter < channels * inChannels; filter++) {
    for (let t = 0; t < pt; t++) {
      for (let i = 0; i < plane; i++) out[(filter * pt + t) * plane + i] = source[filter * plane + i] / pt;
    }
  }
  return { shape: [channels, inChannels, pt, kh, kw], data: out, dtype: 'float32', fileDtype: tensor.fileDtype };
}

/** [rows, heads] repeated `times` along rows: row dt*rows + k is 2-D row k for every temporal offset dt. */
function tileBiasTable(table: Float32Array, heads: number, times: number, fileDtype: HostTensor['fileDtype']): HostTensor {
  const rows = table.length / heads;
  const out = new Float32Array(times * table.length);
  for (let t = 0; t < times; t++) out.set(table, t * table.length);
  return { shape: [times * rows, heads], data: out, dtype: 'float32', fileDtype };
}

/** [S1*S2, heads] table -> per-head [S1, S2] grids -> bicubic resize -> [H*W, heads] table. */
function resizeBiasTable(
  table: Float32Array,
  heads: number,
  inHeight: number,
  inWidth: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  const out = new Float32Array(outHeight * outWidth * heads);
  const plane = new Float32Array(inHeight * inWidth);
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < plane.length; i++) plane[i] = table[i * heads + head];
    const resized = bicubicResize(plane, inHeight, inWidth, outHeight, outWidth);
    for (let i = 0; i < resized.length; i++) out[i * heads + head] = resized[i];
  }
  return out;
}

const cubicA = -0.75;

/** Kernel weights of the 4 taps at floor-1 .. floor+2 for fractional position t (Keys' cubic convolution). */
function cubicWeights(t: number): [number, number, number, number] {
  const near = (x: number) => ((cubicA + 2) * x - (cubicA + 3)) * x * x + 1;
  const far = (x: number) => ((cubicA * x - 5 * cubicA) * x + 8 * cubicA) * x - 4 * cubicA;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * PyTorch `interpolate(mode='bicubic', align_corners=False)` of one [inHeight, inWidth] plane: source
 * coordinate (o + 0.5) * in / out - 0.5, deliberately not clamped (unlike bilinear), with the tap
 * indices clamped to the border instead. Computed in float64, rounded once to float32.
 */
export function bicubicResize(
  plane: Float32Array,
  inHeight: number,
  inWidth: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  const taps = (inSize: number, outSize: number) =>
    Array.from({ length: outSize }, (_, o) => {
      const source = ((o + 0.5) * inSize) / outSize - 0.5;
      const floor = Math.floor(source);
      const weights = cubicWeights(source - floor);
      const indices = [floor - 1, floor, floor + 1, floor + 2].map((index) => Math.min(Math.max(index, 0), inSize - 1));
      return { weights, indices };
    });
  const rows = taps(inHeight, outHeight);
  const columns = taps(inWidth, outWidth);
  const out = new Float32Array(outHeight * outWidth);
  for (let y = 0; y < outHeight; y++) {
    const row = rows[y];
    for (let x = 0; x < outWidth; x++) {
      const column = columns[x];
      let sum = 0;
      for (let i = 0; i < 4; i++) {
        let line = 0;
        const base = row.indices[i] * inWidth;
        for (let j = 0; j < 4; j++) line += column.weights[j] * plane[base + column.indices[j]];
        sum += row.weights[i] * line;
      }
      out[y * outWidth + x] = sum;
    }
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

/** Plain-words summary of an inflation report, one line per kind of change. */
export function describeInflation(report: InflationReport): string[] {
  const lines: string[] = [];
  if (report.inflated.length) lines.push(`time-split patch embedding: ${report.inflated.join(', ')}`);
  if (report.resized.length) {
    const { from, to } = report.resized[0];
    lines.push(
      `bicubic-resized ${report.resized.length} relative position bias table(s) from ${from.join('x')} to ${to.join('x')}`,
    );
  }
  if (report.tiled.length) lines.push(`tiled ${report.tiled.length} relative position bias table(s) along time`);
  if (report.copied.length) lines.push(`copied ${report.copied.length} tensor(s) unchanged`);
  if (report.dropped.length) lines.push(`dropped ${report.dropped.length} 2-D buffer(s) (relative_position_index, attn_mask)`);
  if (report.ignored.length)
    lines.push(`ignored ${report.ignored.map((entry) => entry.key).join(', ')} (${report.ignored[0].reason})`);
  for (const entry of report.mismatched)
    lines.push(
      `cannot inflate ${entry.key}: ${entry.reason} (expected [${entry.expected.join(', ')}], file has ` +
        `[${entry.received.join(', ')}])`,
    );
  if (report.missing.length)
    lines.push(
      `missing from the 2-D file (left to initialisation): ` +
        `${report.missing.slice(0, 6).join(', ')}${report.missing.length > 6 ? ` and ${report.missing.length - 6} more` : ''}`,
    );
  return lines;
}
