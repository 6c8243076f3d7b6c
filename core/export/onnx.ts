// ONNX export of the workbench's Video Swin (eval mode, static shapes, opset 17): the same
// computation as VideoSwin.forward, written as ONNX operators, with the model's own weights under
// their official state_dict keys. Linear weights are stored transposed ([in, out], as PyTorch's
// exporter stores them) so every projection is one MatMul; the relative position bias and the shift
// masks are built in the graph from the bias tables and region ids, which ONNX Runtime folds into
// constants when it loads the file.
import { readFileSync } from 'node:fs';
import { stageDim } from '../model/config.ts';
import { clippedIndex, modelGeometry, relativePositionIndex, shiftRegionIds, type StageGeometry } from '../model/geometry.ts';
import type { VideoSwin } from '../model/video-swin.ts';
import { OnnxGraph, float, int, ints, type Value } from './onnx-graph.ts';
import { DataType, encodeModel } from './onnx-proto.ts';

export const ONNX_OPSET = 17;
/** IR version 8 is the one that goes with opset 17 (onnx 1.12). */
export const ONNX_IR_VERSION = 8;
export const ONNX_INPUT = 'clip';
export const ONNX_OUTPUT = 'logits';

export interface OnnxExportShape {
  batch: number;
  frames: number;
  height: number;
  width: number;
}

export interface OnnxExport {
  bytes: Uint8Array;
  /** Input shape [B, C, T, H, W] the graph was built for. */
  inputShape: number[];
  outputShape: number[];
  nodes: number;
}

const LAYER_NORM_EPS = 1e-5;
const PRODUCER_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

/** Host copy of a parameter (a fresh Float32Array). */
function host(model: VideoSwin, key: string): { data: Float32Array; shape: number[] } {
  const variable = model.params.get(key);
  if (!variable) throw new Error(`model has no parameter "${key}"`);
  return { data: variable.dataSync() as Float32Array, shape: [...variable.shape] };
}

/** A 2-D [rows, cols] array transposed to [cols, rows]. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

class SwinOnnxWriter {
  readonly graph = new OnnxGraph();
  private readonly biasIndices = new Map<number, Value>();
  private readonly regionMasks = new Map<string, Value>();
  private readonly fullIndex: Int32Array;

  constructor(private readonly model: VideoSwin) {
    this.fullIndex = relativePositionIndex(model.config.backbone.window_size);
  }

  private param(key: string): Value {
    const { data, shape } = host(this.model, key);
    return this.graph.weight(key, data, shape);
  }

  /** nn.Linear over the last axis: x W^T + b with W stored transposed under "<key>^T". */
  private linear(x: Value, prefix: string, bias = true): Value {
    const { data, shape } = host(this.model, `${prefix}.weight`);
    const [out, inp] = shape;
    const w = this.graph.weight(`${prefix}.weight^T`, transposed(data, out, inp), [inp, out]);
    const y = this.graph.matMul(x, w);
    return bias ? this.graph.binary('Add', y, this.param(`${prefix}.bias`)) : y;
  }

  private layerNorm(x: Value, prefix: string): Value {
    return this.graph.op('LayerNormalization', [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)], x.shape, {
      axis: int(-1),
      epsilon: float(LAYER_NORM_EPS),
    });
  }

  /** Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), in the form runtimes fuse into one kernel. */
  private gelu(x: Value): Value {
    const g = this.graph;
    const erf = g.op('Erf', [g.binary('Div', x, g.scalar(Math.SQRT2))], x.shape);
    return g.binary('Mul', g.binary('Mul', x, g.binary('Add', erf, g.scalar(1))), g.scalar(0.5));
  }

  /** torch.roll along axes 1..3 of [B, D, H, W, C] (positive shifts move towards higher indices). */
  private roll(x: Value, shifts: readonly number[]): Value {
    let y = x;
    shifts.forEach((shift, i) => {
      const axis = i + 1;
      const n = y.shape[axis];
      const s = ((shift % n) + n) % n;
      if (s === 0) return;
      y = this.graph.concat([this.graph.slice(y, axis, n - s, n), this.graph.slice(y, axis, 0, n - s)], axis);
    });
    return y;
  }

  /** Relative position bias [nH, N, N] gathered from the block's table (folded to a constant by the runtime). */
  private relativeBias(prefix: string, n: number, heads: number): Value {
    let index = this.biasIndices.get(n);
    if (!index) {
      const fullN = Math.round(Math.sqrt(this.fullIndex.length));
      index = this.graph.integers(clippedIndex(this.fullIndex, fullN, n), [n * n]);
      this.biasIndices.set(n, index);
    }
    const table = this.param(`${prefix}.attn.relative_position_bias_table`); // [L, nH]
    const rows = this.graph.op('Gather', [table, index], [n * n, heads], { axis: int(0) }); // [N*N, nH]
    return this.graph.transpose(this.graph.reshape(rows, [n, n, heads]), [2, 0, 1]); // [nH, N, N]
  }

  /** Shift mask [nW, 1, N, N]: 0 where region ids match, -100 elsewhere (geometry.shiftMask). */
  private shiftMask(geometry: StageGeometry): Value {
    const key = `${geometry.padded}|${geometry.window}|${geometry.shift}`;
    let mask = this.regionMasks.get(key);
    if (!mask) {
      const g = this.graph;
      const n = geometry.tokensPerWindow;
      const windows = geometry.windowsPerClip;
      const ids = shiftRegionIds(geometry.padded, geometry.window, geometry.shift);
      const rowIds = g.integers(ids, [windows, 1, n, 1], DataType.INT32);
      const colIds = g.integers(ids, [windows, 1, 1, n], DataType.INT32);
      const same = g.op('Equal', [rowIds, colIds], [windows, 1, n, n], {}, undefined, DataType.BOOL);
      mask = g.op('Where', [same, g.scalar(0), g.scalar(-100)], [windows, 1, n, n]);
      this.regionMasks.set(key, mask);
    }
    return mask;
  }

  /** W-MSA / SW-MSA on windows [B_, N, C]. */
  private attention(windows: Value, prefix: string, heads: number, mask: Value | null, batch: number): Value {
    const g = this.graph;
    const [bw, n, c] = windows.shape;
    const hd = c / heads;
    const qkv = this.linear(windows, `${prefix}.attn.qkv`, this.model.params.has(`${prefix}.attn.qkv.bias`)); // [B_, N, 3C]
    const split = g.transpose(g.reshape(qkv, [bw, n, 3, heads, hd]), [2, 0, 3, 1, 4]); // [3, B_, nH, N, hd]
    const part = (i: number) => g.op('Gather', [split, g.integers([i], [])], [bw, heads, n, hd], { axis: int(0) });
    const scale = this.model.config.backbone.qk_scale ?? hd ** -0.5;
    const q = g.binary('Mul', part(0), g.scalar(scale));
    const k = part(1);
    const v = part(2);
    let scores = g.matMul(q, g.transpose(k, [0, 1, 3, 2])); // [B_, nH, N, N]
    scores = g.binary('Add', scores, this.relativeBias(prefix, n, heads));
    if (mask) {
      const nW = mask.shape[0];
      scores = g.reshape(g.binary('Add', g.reshape(scores, [batch, nW, heads, n, n]), mask), [bw, heads, n, n]);
    }
    const probs = g.op('Softmax', [scores], scores.shape, { axis: int(-1) });
    const out = g.reshape(g.transpose(g.matMul(probs, v), [0, 2, 1, 3]), [bw, n, c]); // [B_, N, C]
    return this.linear(out, `${prefix}.attn.proj`);
  }

  private block(x: Value, stage: number, index: number, geometry: StageGeometry): Value {
    const g = this.graph;
    const prefix = `backbone.layers.${stage}.blocks.${index}`;
    const heads = this.model.config.backbone.num_heads[stage];
    const shifted = index % 2 === 1 && geometry.shifted;
    const [b, d, h, w, c] = x.shape;
    const { padded, window, shift } = geometry;
    const [wd, wh, ww] = window;
    const [nd, nh, nw] = [padded[0] / wd, padded[1] / wh, padded[2] / ww];

    let y = this.layerNorm(x, `${prefix}.norm1`);
    y = g.padEnd(y, [0, padded[0] - d, padded[1] - h, padded[2] - w, 0]); // padded tokens are zeros, not masked
    if (shifted) y = this.roll(y, [-shift[0], -shift[1], -shift[2]]);
    y = g.transpose(g.reshape(y, [b * nd, wd, nh, wh, nw, ww * c]), [0, 2, 4, 1, 3, 5]); // [B*nD, nH, nW, wd, wh, ww*C]
    const windows = g.reshape(y, [b * nd * nh * nw, wd * wh * ww, c]); // [B*nW, N, C]
    const attended = this.attention(windows, prefix, heads, shifted ? this.shiftMask(geometry) : null, b);
    y = g.transpose(g.reshape(attended, [b * nd, nh, nw, wd, wh, ww * c]), [0, 3, 1, 4, 2, 5]); // [B*nD, wd, nH, wh, nW, ww*C]
    y = g.reshape(y, [b, padded[0], padded[1], padded[2], c]);
    if (shifted) y = this.roll(y, shift);
    y = g.slice(g.slice(g.slice(y, 1, 0, d), 2, 0, h), 3, 0, w);
    const residual = g.binary('Add', x, y);
    let m = this.layerNorm(residual, `${prefix}.norm2`);
    m = this.linear(this.gelu(this.linear(m, `${prefix}.mlp.fc1`)), `${prefix}.mlp.fc2`);
    return g.binary('Add', residual, m);
  }

  /** PatchMerging: 2x2 neighbours in the official channel order, LayerNorm, Linear 4C -> 2C. */
  private merge(x: Value, stage: number): Value {
    const g = this.graph;
    const [b, d, h, w, c] = x.shape;
    const h2 = Math.ceil(h / 2);
    const w2 = Math.ceil(w / 2);
    let y = g.padEnd(x, [0, 0, h % 2, w % 2, 0]);
    y = g.transpose(g.reshape(y, [b * d, h2, 2, w2, 2, c]), [0, 1, 3, 4, 2, 5]); // [B*D, H/2, W/2, wParity, hParity, C]
    y = g.reshape(y, [b, d, h2, w2, 4 * c]);
    const prefix = `backbone.layers.${stage}.downsample`;
    return this.linear(this.layerNorm(y, `${prefix}.norm`), `${prefix}.reduction`, false);
  }

  build(shape: OnnxExportShape): Value {
    const g = this.graph;
    const cfg = this.model.config.backbone;
    const [pt, ph, pw] = cfg.patch_size;
    const { batch, frames, height, width } = shape;
    const x = g.input(ONNX_INPUT, [batch, cfg.in_chans, frames, height, width]);
    const [d, h, w] = [Math.ceil(frames / pt), Math.ceil(height / ph), Math.ceil(width / pw)];
    // Patch embedding: a Conv3d whose kernel equals its stride, after zero padding at the ends.
    const paddedInput = g.padEnd(x, [0, 0, d * pt - frames, h * ph - height, w * pw - width]);
    const embedded = g.op(
      'Conv',
      [paddedInput, this.param('backbone.patch_embed.proj.weight'), this.param('backbone.patch_embed.proj.bias')],
      [batch, cfg.embed_dim, d, h, w],
      { kernel_shape: ints([pt, ph, pw]), strides: ints([pt, ph, pw]) },
    );
    let y = g.transpose(embedded, [0, 2, 3, 4, 1]); // [B, D, H, W, C]
    if (cfg.patch_norm) y = this.layerNorm(y, 'backbone.patch_embed.norm');
    const geometries = modelGeometry([frames, height, width], cfg.patch_size, cfg.window_size, cfg.depths.length);
    cfg.depths.forEach((depth, stage) => {
      if (y.shape[4] !== stageDim(cfg, stage))
        throw new Error(`stage ${stage}: width ${y.shape[4]}, expected ${stageDim(cfg, stage)}`);
      for (let j = 0; j < depth; j++) y = this.block(y, stage, j, geometries[stage]);
      if (stage < cfg.depths.length - 1) y = this.merge(y, stage);
    });
    const normed = this.layerNorm(y, 'backbone.norm');
    // I3D head at eval: global average over (D, H, W), fc_cls (dropout is the identity).
    const pooled = g.op('ReduceMean', [normed], [batch, normed.shape[4]], { axes: ints([1, 2, 3]), keepdims: int(0) });
    return this.linear(pooled, 'cls_head.fc_cls');
  }
}

/** Writes the model's eval-mode forward for one static input shape as an ONNX file's bytes. */
export function exportOnnx(model: VideoSwin, shape: OnnxExportShape, metadata: Record<string, string> = {}): OnnxExport {
  for (const [field, value] of Object.entries(shape)) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`ONNX export: ${field} must be a positive integer, received ${value}`);
  }
  const writer = new SwinOnnxWriter(model);
  // Reads host copies of the parameters only: no tensor is created.
  const logits = writer.build(shape);
  writer.graph.output(logits, ONNX_OUTPUT);
  const inputShape = [shape.batch, model.config.backbone.in_chans, shape.frames, shape.height, shape.width];
  const message = writer.graph.toModel({
    name: 'video_swin',
    opset: ONNX_OPSET,
    irVersion: ONNX_IR_VERSION,
    producer: 'video-swin-workbench',
    version: PRODUCER_VERSION,
    doc:
      `Video Swin Transformer (SwinTransformer3D + I3D head), eval mode. Input "${ONNX_INPUT}" ` +
      `[${inputShape.join(', ')}] NCTHW, already normalised; output "${ONNX_OUTPUT}" [${logits.shape.join(', ')}].`,
    metadata: { model_config: JSON.stringify(model.config), input_shape: JSON.stringify(inputShape), ...metadata },
  });
  return { bytes: encodeModel(message), inputShape, outputShape: logits.shape, nodes: writer.graph.nodeCount };
}
