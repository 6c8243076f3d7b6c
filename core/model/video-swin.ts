// SwinTransformer3D + I3D head (fact sheet sections 2-4), in the paper's order: parameters and
// initialisation, the block, the stage, the backbone, the head; then weights in and out; the factory.
import { tf, type Tensor } from '../engine/tf.ts';
import {
  cropTo,
  crossEntropy,
  gatherRows,
  gelu,
  layerNorm,
  linear,
  mergePatches,
  padEnd,
  patchEmbed,
  roll,
  windowAttention,
  windowPartition,
  windowReverse,
} from '../engine/ops.ts';
import { Random } from '../engine/random.ts';
import { type ModelConfig, type ModelConfigInput, parseModelConfig, stageDim } from './config.ts';
import {
  clippedIndex,
  dropPathRates,
  relativePositionIndex,
  shiftMask,
  stageGeometry,
  type StageGeometry,
  type Triple,
} from './geometry.ts';
import { recognizerKeys } from './keys.ts';
import { VARIANTS } from './variants.ts';
import type { HostTensor, TensorMap } from './weights/types.ts';

export interface AttentionRequest {
  stage: number;
  block: number;
}

/** Attention probabilities of one block with the geometry needed to draw them. */
export interface AttentionCapture extends AttentionRequest {
  /** [B * nW, nH, N, N]: windows batch-major then (d, h, w); tokens (d, h, w) row-major. */
  probs: Tensor;
  geometry: StageGeometry;
  /** Whether this block used shifted windows (the grid was rolled by -shift before partition). */
  shifted: boolean;
  batch: number;
}

export interface ForwardOptions {
  /** Train mode: drop path, dropout and the head's dropout are active. */
  training?: boolean;
  /** Uniform [0, 1) source for drop path and dropout (seeded, so runs repeat). */
  random?: () => number;
  /** Blocks whose attention probabilities to return ('all' for every block). */
  attention?: AttentionRequest[] | 'all';
  /** Also return intermediate activations (for parity checks and the attention viewer). */
  capture?: { patchEmbed?: boolean; blocks?: boolean; stages?: boolean };
}

export interface ForwardResult {
  logits: Tensor;
  /** Backbone output after the final LayerNorm, NCDHW. */
  backboneOut: Tensor;
  /** Patch embedding output, NCDHW. */
  patchEmbed?: Tensor;
  /** Output of each block, channels-last [B, D, H, W, C]. */
  blocks?: Tensor[][];
  /** Output of each stage (after PatchMerging except the last), NCDHW. */
  stages?: Tensor[];
  attention: AttentionCapture[];
}

export interface LoadReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; received: number[] }[];
}

const BUFFER_SUFFIX = 'relative_position_index';

export class VideoSwin {
  readonly config: ModelConfig;
  /** Trainable parameters under their official state_dict keys. */
  readonly params: Map<string, tf.Variable>;
  private readonly fullIndex: Int32Array;
  private readonly indexCache = new Map<number, Int32Array>();
  private readonly maskCache = new Map<string, Tensor>();
  private readonly dropPath: number[][];

  constructor(config: ModelConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
    this.fullIndex = relativePositionIndex(config.backbone.window_size);
    this.dropPath = dropPathRates(config.backbone.drop_path_rate, config.backbone.depths);
  }

  private p(key: string): Tensor {
    const value = this.params.get(key);
    if (!value) throw new Error(`model has no parameter "${key}"`);
    return value;
  }

  private optional(key: string): Tensor | null {
    return this.params.get(key) ?? null;
  }

  /** Bias-table rows for a window of N tokens: index[:N, :N] of the full window (official quirk). */
  private biasIndex(n: number): Int32Array {
    let index = this.indexCache.get(n);
    if (!index) {
      const fullN = Math.round(Math.sqrt(this.fullIndex.length));
      index = clippedIndex(this.fullIndex, fullN, n);
      this.indexCache.set(n, index);
    }
    return index;
  }

  /** The stage's shift mask [nW, N, N], built once per geometry and kept out of any tidy scope. */
  private mask(geometry: StageGeometry): Tensor {
    const key = `${geometry.padded}|${geometry.window}|${geometry.shift}`;
    let mask = this.maskCache.get(key);
    if (!mask) {
      const n = geometry.tokensPerWindow;
      mask = tf.keep(tf.tensor3d(shiftMask(geometry.padded, geometry.window, geometry.shift), [geometry.windowsPerClip, n, n]));
      this.maskCache.set(key, mask);
    }
    return mask;
  }

  /** Relative position bias [nH, N, N] of a block. */
  relativeBias(prefix: string, n: number): Tensor {
    const table = this.p(`${prefix}.attn.relative_position_bias_table`);
    const heads = table.shape[1] as number;
    const rows = gatherRows(table, this.biasIndex(n)); // [N*N, nH]
    return tf.transpose(tf.reshape(rows, [n, n, heads]), [2, 0, 1]); // [nH, N, N]
  }

  private dropout(x: Tensor, rate: number, options: ForwardOptions): Tensor {
    if (!options.training || rate <= 0) return x;
    const random = requireRandom(options);
    return tf.dropout(x, rate, undefined, Math.floor(random() * 2 ** 31));
  }

  /** Stochastic depth: per sample, keep with probability 1 - rate and scale by 1 / (1 - rate). */
  private dropPathBranch(x: Tensor, rate: number, options: ForwardOptions): Tensor {
    if (!options.training || rate <= 0) return x;
    const random = requireRandom(options);
    const batch = x.shape[0];
    const keep = new Float32Array(batch);
    for (let b = 0; b < batch; b++) keep[b] = random() >= rate ? 1 / (1 - rate) : 0;
    return tf.mul(x, tf.tensor(keep, [batch, ...new Array(x.rank - 1).fill(1)]));
  }

  /** W-MSA / SW-MSA on windows [B_, N, C]; returns [B_, N, C] and the probabilities. */
  private attention(
    windows: Tensor,
    prefix: string,
    heads: number,
    mask: Tensor | null,
    options: ForwardOptions,
    probabilities: boolean,
  ): { out: Tensor; probs: Tensor | null } {
    const [bw, n, c] = windows.shape as Triple;
    const hd = c / heads;
    const weight = this.p(`${prefix}.attn.qkv.weight`); // [3C, C]: rows [q | k | v], heads contiguous
    const bias = this.optional(`${prefix}.attn.qkv.bias`);
    const project = (part: number): Tensor => {
      const w = tf.slice(weight, [part * c, 0], [c, c]);
      const b = bias ? tf.slice(bias, [part * c], [c]) : null;
      const y = tf.reshape(linear(windows, w, b), [bw, n, heads, hd]); // [B_, N, nH, hd]
      return tf.transpose(y, [0, 2, 1, 3]); // [B_, nH, N, hd]
    };
    const scale = this.config.backbone.qk_scale ?? hd ** -0.5;
    const q = tf.mul(project(0), scale);
    const k = project(1);
    const v = project(2);
    const attnDrop =
      options.training && this.config.backbone.attn_drop_rate > 0
        ? (t: Tensor) => this.dropout(t, this.config.backbone.attn_drop_rate, options)
        : undefined;
    const { out, probs } = windowAttention(q, k, v, this.relativeBias(prefix, n), mask, { dropout: attnDrop, probabilities });
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [bw, n, c]); // [B_, N, C]
    const projected = linear(merged, this.p(`${prefix}.attn.proj.weight`), this.p(`${prefix}.attn.proj.bias`));
    return { out: this.dropout(projected, this.config.backbone.drop_rate, options), probs };
  }

  /** One Swin block on channels-last x [B, D, H, W, C]. */
  private block(
    x: Tensor,
    stage: number,
    index: number,
    geometry: StageGeometry,
    options: ForwardOptions,
    capture: AttentionCapture[] | null,
  ): Tensor {
    const prefix = `backbone.layers.${stage}.blocks.${index}`;
    const heads = this.config.backbone.num_heads[stage];
    const shifted = index % 2 === 1 && geometry.shifted;
    const [b, d, h, w, c] = x.shape;
    const { padded, window, shift } = geometry;

    let y = layerNorm(x, this.p(`${prefix}.norm1.weight`), this.p(`${prefix}.norm1.bias`));
    // Padding comes after the norm: padded tokens are zero vectors and are NOT masked.
    y = padEnd(y, [0, padded[0] - d, padded[1] - h, padded[2] - w, 0]);
    if (shifted) y = roll(y, [-shift[0], -shift[1], -shift[2]], [1, 2, 3]);
    const windows = windowPartition(y, window); // [B*nW, N, C]
    const { out, probs } = this.attention(
      windows,
      prefix,
      heads,
      shifted ? this.mask(geometry) : null,
      options,
      capture !== null,
    );
    if (capture && probs) capture.push({ stage, block: index, probs, geometry, shifted, batch: b });
    y = windowReverse(out, window, b, padded); // [B, Dp, Hp, Wp, C]
    if (shifted) y = roll(y, [shift[0], shift[1], shift[2]], [1, 2, 3]);
    y = cropTo(y, [b, d, h, w, c]);

    const rate = this.dropPath[stage][index];
    let out2 = tf.add(x, this.dropPathBranch(y, rate, options));
    let m = layerNorm(out2, this.p(`${prefix}.norm2.weight`), this.p(`${prefix}.norm2.bias`));
    m = gelu(linear(m, this.p(`${prefix}.mlp.fc1.weight`), this.p(`${prefix}.mlp.fc1.bias`)));
    m = this.dropout(m, this.config.backbone.drop_rate, options);
    m = this.dropout(
      linear(m, this.p(`${prefix}.mlp.fc2.weight`), this.p(`${prefix}.mlp.fc2.bias`)),
      this.config.backbone.drop_rate,
      options,
    );
    out2 = tf.add(out2, this.dropPathBranch(m, rate, options));
    return out2;
  }

  /** PatchMerging: 2x2 spatial neighbours concatenated (official order), LayerNorm, Linear 4C -> 2C. */
  private merge(x: Tensor, stage: number): Tensor {
    const prefix = `backbone.layers.${stage}.downsample`;
    const merged = mergePatches(x); // [B, D, H/2, W/2, 4C]
    const normed = layerNorm(merged, this.p(`${prefix}.norm.weight`), this.p(`${prefix}.norm.bias`));
    return linear(normed, this.p(`${prefix}.reduction.weight`), null);
  }

  /**
   * Forward pass on NCTHW input [B, 3, T, H, W] (normalised). Returned tensors belong to the caller;
   * call inside tf.tidy or dispose them.
   */
  forward(input: Tensor, options: ForwardOptions = {}): ForwardResult {
    const cfg = this.config.backbone;
    if (input.rank !== 5 || input.shape[1] !== cfg.in_chans) {
      throw new Error(`input must be [B, ${cfg.in_chans}, T, H, W] (NCTHW); received shape [${input.shape.join(', ')}]`);
    }
    const wanted = new Set<string>();
    if (options.attention === 'all')
      cfg.depths.forEach((depth, s) => Array.from({ length: depth }, (_, j) => wanted.add(`${s}.${j}`)));
    else for (const r of options.attention ?? []) wanted.add(`${r.stage}.${r.block}`);
    const toNcdhw = (t: Tensor) => tf.transpose(t, [0, 4, 1, 2, 3]);

    // Without a gradient tape nothing needs the intermediates of a finished step: run the stem, each
    // block, each merge and the head in their own tidy scopes so inference peaks at one block's
    // attention (Swin-T at 32x224x224 would otherwise exceed the 4 GB wasm heap). With a tape, tfjs
    // keeps what the backward pass needs.
    const inference = !(tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
    const scoped = <T extends Tensor[]>(fn: () => T): T => (inference ? tf.tidy(fn) : fn());
    const kept = new Set<Tensor>([input]);

    const [stem, embedCapture] = scoped(() => {
      let y = patchEmbed(
        input,
        this.p('backbone.patch_embed.proj.weight'),
        this.p('backbone.patch_embed.proj.bias'),
        cfg.patch_size,
      ); // [B, D, H, W, C]
      if (cfg.patch_norm) y = layerNorm(y, this.p('backbone.patch_embed.norm.weight'), this.p('backbone.patch_embed.norm.bias'));
      y = this.dropout(y, cfg.drop_rate, options);
      return options.capture?.patchEmbed ? [y, toNcdhw(y)] : [y];
    });
    let x = stem;
    const result: ForwardResult = { logits: x, backboneOut: x, attention: [] };
    if (embedCapture) result.patchEmbed = embedCapture;
    if (options.capture?.blocks) result.blocks = [];
    if (options.capture?.stages) result.stages = [];
    const advance = (next: () => { out: Tensor; extra: Tensor[] }): Tensor => {
      if (!inference) return next().out;
      const previous = x;
      // Returned tensors (the block output and any captured attention) survive the scope.
      const [out] = tf.tidy(() => {
        const r = next();
        return [r.out, ...r.extra];
      });
      if (!kept.has(previous)) previous.dispose();
      return out;
    };

    cfg.depths.forEach((depth, stage) => {
      const geometry = stageGeometry(x.shape.slice(1, 4), cfg.window_size);
      const blockOutputs: Tensor[] = [];
      for (let j = 0; j < depth; j++) {
        const capture = wanted.has(`${stage}.${j}`) ? result.attention : null;
        const before = capture?.length ?? 0;
        x = advance(() => {
          const out = this.block(x, stage, j, geometry, options, capture);
          return { out, extra: capture ? capture.slice(before).map((c) => c.probs) : [] };
        });
        if (result.blocks) {
          blockOutputs.push(x);
          kept.add(x);
        }
      }
      result.blocks?.push(blockOutputs);
      if (stage < cfg.depths.length - 1) x = advance(() => ({ out: this.merge(x, stage), extra: [] }));
      result.stages?.push(toNcdhw(x));
    });

    const last = x;
    [result.backboneOut, result.logits] = scoped(() => {
      const normed = layerNorm(last, this.p('backbone.norm.weight'), this.p('backbone.norm.bias')); // [B, D, H, W, 8C]
      // I3D head: global average over (D, H, W), dropout, fc_cls.
      const pooled = this.dropout(tf.mean(normed, [1, 2, 3]), this.config.head_dropout, options); // [B, 8C]
      return [toNcdhw(normed), linear(pooled, this.p('cls_head.fc_cls.weight'), this.p('cls_head.fc_cls.bias'))];
    });
    if (inference && !kept.has(last)) last.dispose();
    return result;
  }

  /**
   * Gradients of a scalar loss with respect to every parameter, keyed by official name (tfjs's own
   * variableGrads keys them by the global variable names).
   */
  gradients(lossFn: () => Tensor): { value: Tensor; grads: Map<string, Tensor> } {
    const { value, grads } = tf.variableGrads(lossFn as () => tf.Scalar, [...this.params.values()]);
    const byKey = new Map<string, Tensor>();
    for (const [key, variable] of this.params) byKey.set(key, grads[variable.name]);
    return { value, grads: byKey };
  }

  /** Logits only, with every intermediate tensor released. */
  predict(input: Tensor): Tensor {
    return tf.tidy(() => this.forward(input).logits);
  }

  /** Mean cross-entropy of a forward pass (label smoothing optional). */
  loss(input: Tensor, labels: Int32Array | number[], options: ForwardOptions & { smoothing?: number } = {}): Tensor {
    return tf.tidy(() => crossEntropy(this.forward(input, options).logits, labels, options.smoothing ?? 0));
  }

  /**
   * Copies tensors into the parameters by official key. `relative_position_index` buffers are skipped
   * (recomputed from the window). With `strict`, any missing, unexpected or mis-shaped key is an error;
   * `skipMismatched` leaves mis-shaped parameters (e.g. a head with another class count) as they are.
   */
  loadStateDict(stateDict: TensorMap, options: { strict?: boolean; skipMismatched?: boolean } = {}): LoadReport {
    const report: LoadReport = { loaded: [], missing: [], unexpected: [], mismatched: [] };
    for (const [key, tensor] of stateDict) {
      if (key.endsWith(BUFFER_SUFFIX)) continue;
      const param = this.params.get(key);
      if (!param) {
        report.unexpected.push(key);
      } else if (!sameShape(param.shape, tensor.shape)) {
        report.mismatched.push({ key, expected: [...param.shape], received: [...tensor.shape] });
      }
    }
    for (const key of this.params.keys()) if (!stateDict.has(key)) report.missing.push(key);
    const problems = report.missing.length + report.unexpected.length + (options.skipMismatched ? 0 : report.mismatched.length);
    if (options.strict && problems > 0) throw new Error(describeLoadProblems(report));
    if (!options.skipMismatched && report.mismatched.length > 0) throw new Error(describeLoadProblems(report));
    for (const [key, tensor] of stateDict) {
      const param = this.params.get(key);
      if (!param || !sameShape(param.shape, tensor.shape)) continue;
      if (tensor.dtype !== 'float32')
        throw new Error(`parameter "${key}" has dtype ${tensor.fileDtype} in the file; a floating tensor was expected`);
      tf.tidy(() => param.assign(tf.tensor(tensor.data as Float32Array, tensor.shape, 'float32')));
      report.loaded.push(key);
    }
    return report;
  }

  /** Host copy of every parameter plus the `relative_position_index` buffers, in official order. */
  stateDict(): TensorMap {
    return this.hostStateDict((key) => this.p(key).dataSync() as Float32Array);
  }

  /** The same as `stateDict()` with asynchronous reads, as GPU backends need (webgpu has no sync read in Node). */
  async readStateDict(): Promise<TensorMap> {
    const values = new Map<string, Float32Array>();
    for (const key of this.params.keys()) values.set(key, (await this.p(key).data()) as Float32Array);
    return this.hostStateDict((key) => values.get(key) as Float32Array);
  }

  private hostStateDict(read: (key: string) => Float32Array): TensorMap {
    const out: TensorMap = new Map();
    for (const [key, spec] of recognizerKeys(this.config)) {
      if (spec.kind === 'buffer') {
        out.set(key, { shape: spec.shape, data: Int32Array.from(this.fullIndex), dtype: 'int32', fileDtype: 'int64' });
        continue;
      }
      const param = this.p(key);
      out.set(key, {
        shape: [...param.shape],
        data: read(key),
        dtype: 'float32',
        fileDtype: 'float32',
      } satisfies HostTensor);
    }
    return out;
  }

  parameterCount(): number {
    let total = 0;
    for (const p of this.params.values()) total += p.size;
    return total;
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
    for (const m of this.maskCache.values()) m.dispose();
    this.maskCache.clear();
  }
}

function requireRandom(options: ForwardOptions): () => number {
  if (!options.random) throw new Error('training mode needs options.random (a seeded uniform source) for drop path and dropout');
  return options.random;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function describeLoadProblems(report: LoadReport): string {
  const lines: string[] = ['the state dict does not fit the model:'];
  const list = (keys: string[]) =>
    keys.length > 6 ? `${keys.slice(0, 6).join(', ')} … (${keys.length} in all)` : keys.join(', ');
  if (report.missing.length) lines.push(`  missing in the file: ${list(report.missing)}`);
  if (report.unexpected.length) lines.push(`  in the file but not in the model: ${list(report.unexpected)}`);
  for (const m of report.mismatched.slice(0, 8))
    lines.push(`  ${m.key}: the model expects [${m.expected}], the file has [${m.received}]`);
  return lines.join('\n');
}

/**
 * The official initialisation (fact sheet 4): Linear weights trunc-normal(0.02) and zero biases,
 * LayerNorm 1/0, relative position tables trunc-normal(0.02), the Conv3d patch projection PyTorch's
 * default kaiming-uniform(a=sqrt(5)) for weight and bias, the head N(0, 0.01^2) with zero bias.
 */
let instances = 0;

export function initialParameters(config: ModelConfig, seed: number): Map<string, tf.Variable> {
  const instance = instances++;
  const random = new Random(seed);
  const params = new Map<string, tf.Variable>();
  const [pt, ph, pw] = config.backbone.patch_size;
  const patchBound = 1 / Math.sqrt(config.backbone.in_chans * pt * ph * pw);
  for (const [key, spec] of recognizerKeys(config)) {
    if (spec.kind === 'buffer') continue;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const fill = (f: () => number) => {
      for (let i = 0; i < size; i++) data[i] = f();
    };
    if (key.startsWith('backbone.patch_embed.proj.')) fill(() => (random.next() * 2 - 1) * patchBound);
    else if (key.endsWith('relative_position_bias_table')) fill(() => random.truncatedNormal(0.02));
    else if (key === 'cls_head.fc_cls.weight') fill(() => random.normal() * 0.01);
    else if (key.endsWith('.weight') && spec.shape.length === 2) fill(() => random.truncatedNormal(0.02));
    else if (key.endsWith('.weight')) data.fill(1); // LayerNorm
    // every other bias stays 0
    const initial = tf.tensor(data, spec.shape, 'float32');
    // tfjs variable names are global: prefix them so several models (e.g. checkpoints compared side by side) coexist.
    params.set(key, tf.variable(initial, true, `vswin${instance}/${key}`));
    initial.dispose();
  }
  return params;
}

/** Per-stage geometry for an input clip (exposed for the attention viewer and model info). */
export function stageDims(config: ModelConfig): number[] {
  return config.backbone.depths.map((_, i) => stageDim(config.backbone, i));
}

export interface CreateOptions {
  /** Seed of the initialisation (default 0). */
  seed?: number;
  /** Overrides merged into the variant's backbone config. */
  backbone?: Partial<ModelConfigInput['backbone']>;
  numClasses?: number;
}

/** Factory: a variant name from VARIANTS or an explicit config, freshly initialised. */
export function createVideoSwin(nameOrConfig: string | ModelConfigInput, options: CreateOptions = {}): VideoSwin {
  let input: ModelConfigInput;
  if (typeof nameOrConfig === 'string') {
    const variant = VARIANTS[nameOrConfig];
    if (!variant) throw new Error(`unknown model variant "${nameOrConfig}"; expected one of ${Object.keys(VARIANTS).join(', ')}`);
    input = variant.config;
  } else {
    input = nameOrConfig;
  }
  const merged: ModelConfigInput = {
    ...input,
    backbone: { ...input.backbone, ...options.backbone } as ModelConfigInput['backbone'],
    num_classes: options.numClasses ?? input.num_classes,
  };
  const config = parseModelConfig(merged);
  return new VideoSwin(config, initialParameters(config, options.seed ?? 0));
}
