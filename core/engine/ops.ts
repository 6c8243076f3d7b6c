// The hot ops of Video Swin, in one place, with explicit gradients where TensorFlow.js's own are slow
// or wrong on wasm (architecture.md, "wasm traps"). Elementwise work is kept at rank <= 6 and matMuls
// are plain 2-D or batched without broadcast. Faster kernels replace tfjs kernels by name underneath
// (kernels/), so nothing here changes when they are installed.
import { tf, type Tensor } from './tf.ts';
import { fusedWindowAttention, WINDOW_ATTENTION } from './kernels/attention.ts';
import { fusedGelu, fusedLayerNorm, GELU, LAYER_NORM } from './kernels/norm-and-gelu.ts';
import { fastKernelStatus } from './kernels/index.ts';
import { checkWebGpuBinding } from './webgpu/backend.ts';

/** Whether the running kernel tier provides a fused kernel of this name (kernels/). */
const hasKernel = (name: string): boolean => tf.getKernel(name, tf.getBackend()) !== undefined;

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

type GradFunc = (dy: Tensor, saved: Tensor[]) => Tensor[];
type Forward = (inputs: Tensor[], save: tf.GradSaveFunc) => { value: Tensor; gradFunc: GradFunc };

/** tf.customGrad with plain typing: `forward` gets the input tensors and the save function. */
function withGradient(forward: Forward): (...inputs: Tensor[]) => Tensor {
  const op = tf.customGrad(((...args: Array<Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { value, gradFunc } = forward(args.slice(0, -1) as Tensor[], save);
    return { value, gradFunc: (dy: Tensor, saved: Tensor[]) => gradFunc(dy as Tensor, saved) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (...inputs: Tensor[]) => op(...inputs);
}

/** Column sums of a 2-D tensor as a plain 2-D matMul (ones[1, M] x [M, C]): much faster on wasm than
 * Sum over axis 0, which reduces a non-last axis. */
function sumRows(x: Tensor): Tensor {
  const rows = x.shape[0];
  return tf.reshape(tf.matMul(tf.ones([1, rows]), x as tf.Tensor2D), [x.shape[1] as number]);
}

/** x + b where b's shape equals x's trailing axes; b's gradient sums over the leading axes as one
 * 2-D matMul (tfjs reduces the broadcast with a slow Sum over leading axes on wasm). */
const addTrailing = withGradient(([x, b]) => ({
  value: tf.add(x, b),
  gradFunc: (dy: Tensor) => [dy, tf.reshape(sumRows(tf.reshape(dy, [dy.size / b.size, b.size])), b.shape)],
}));

/** Flattens all leading axes: [..., C] -> [M, C]. */
function to2d(x: Tensor): tf.Tensor2D {
  const c = x.shape[x.rank - 1];
  return tf.reshape(x, [x.size / c, c]);
}

// y = x W^T + b with x [M, in], W [out, in] (PyTorch layout). Two ways to compute it:
// - strided: one fused matMul reading W transposed, with the bias in its epilogue; dW = dy^T x
//   reads dy transposed. Used where _FusedMatMul is right for transposed inputs with a bias: every
//   backend except stock wasm, and stock wasm once a fast tier has replaced that kernel.
// - explicit: W and dy transposed by Transpose first, so each matMul is plain 2-D (stock wasm's
//   only fast path) and the bias a separate Add (stock wasm's fused bias is wrong when transposed).
function stridedLinearIsSafe(): boolean {
  return tf.getBackend() !== 'wasm' || fastKernelStatus().kernels.includes('_FusedMatMul');
}

function linearOp(strided: boolean, withBias: boolean) {
  return withGradient((inputs, save) => {
    const [x, weight, bias] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D | undefined];
    save([x, weight]);
    let value: Tensor;
    if (strided) value = tf.fused.matMul({ a: x, b: weight, transposeB: true, bias: withBias ? bias : undefined });
    else {
      const product = tf.matMul(x, tf.transpose(weight));
      value = withBias ? tf.add(product, bias as Tensor) : product;
    }
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const [xs, w] = saved as tf.Tensor2D[];
        const dWeight = strided ? tf.matMul(g, xs, true, false) : tf.matMul(tf.transpose(g), xs);
        const grads = [tf.matMul(g, w), dWeight];
        return withBias ? [...grads, sumRows(g)] : grads;
      },
    };
  });
}

const linearOps = {
  strided: { bias: linearOp(true, true), plain: linearOp(true, false) },
  explicit: { bias: linearOp(false, true), plain: linearOp(false, false) },
};

/** PyTorch `nn.Linear` over the last axis: x [..., in], weight [out, in], bias [out] or none. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const outShape = [...x.shape.slice(0, -1), weight.shape[0]];
  const flat = to2d(x);
  const ops = stridedLinearIsSafe() ? linearOps.strided : linearOps.explicit;
  const y = bias ? ops.bias(flat, weight, bias) : ops.plain(flat, weight);
  return tf.reshape(y, outShape);
}

// LayerNorm over the last axis with biased variance; gradient written out so it costs a few 2-D ops
// instead of the tape of mean/sub/square/rsqrt with [M,1] broadcasts.
function layerNorm2d(eps: number) {
  return withGradient(([x, gamma, beta], save) => {
    const c = x.shape[1] as number;
    const mean = tf.mean(x, 1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), 1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const normalized = tf.mul(centered, rstd);
    save([normalized, rstd, gamma]);
    const value = tf.add(tf.mul(normalized, gamma), beta);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const g = dy;
        const [xhat, r, gam] = saved;
        const dxhat = tf.mul(g, gam);
        const meanD = tf.mean(dxhat, 1, true);
        const meanDX = tf.div(tf.sum(tf.mul(dxhat, xhat), 1, true), c);
        const dx = tf.mul(r, tf.sub(tf.sub(dxhat, meanD), tf.mul(xhat, meanDX)));
        return [dx, sumRows(tf.mul(g, xhat)), sumRows(g)];
      },
    };
  });
}
const layerNormCache = new Map<number, ReturnType<typeof layerNorm2d>>();

/** PyTorch `nn.LayerNorm(C, eps)` over the last axis (biased variance). */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  if (hasKernel(LAYER_NORM)) return fusedLayerNorm(x, gamma, beta, eps);
  let fn = layerNormCache.get(eps);
  if (!fn) layerNormCache.set(eps, (fn = layerNorm2d(eps)));
  return tf.reshape(fn(to2d(x), gamma, beta), x.shape);
}

// Exact (erf) GELU, PyTorch's nn.GELU() default; tfjs has no GELU op.
const geluExact = withGradient(([x], save) => {
  save([x]);
  const value = tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1));
  return {
    value,
    gradFunc: (dy: Tensor, saved: Tensor[]) => {
      const [xs] = saved;
      const cdf = tf.mul(tf.add(tf.erf(tf.mul(xs, SQRT1_2)), 1), 0.5);
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI);
      return [tf.mul(dy, tf.add(cdf, tf.mul(xs, pdf)))];
    },
  };
});

export function gelu(x: Tensor): Tensor {
  if (hasKernel(GELU)) return fusedGelu(x);
  return tf.reshape(geluExact(to2d(x)), x.shape);
}

/** Views x as [outer, x.shape[axis], inner] so one-axis slices and pads run at rank 3 (wasm's Slice
 * of rank > 4 copies the whole input first, which made slicing the slowest op of a training step). */
function around(x: Tensor, axis: number): [number, number, number] {
  const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return [outer, x.shape[axis], inner];
}

/** x[..., begin:begin+size, ...] along one axis. */
export function sliceAxis(x: Tensor, axis: number, begin: number, size: number): Tensor {
  const [outer, n, inner] = around(x, axis);
  if (begin === 0 && size === n) return x;
  const shape = [...x.shape];
  shape[axis] = size;
  return tf.reshape(tf.slice(tf.reshape(x, [outer, n, inner]), [0, begin, 0], [outer, size, inner]), shape);
}

/** Zero-pads the end of each axis by `amounts[axis]`. */
export function padEnd(x: Tensor, amounts: readonly number[]): Tensor {
  let y = x;
  amounts.forEach((amount, axis) => {
    if (amount <= 0) return;
    const [outer, n, inner] = around(y, axis);
    const shape = [...y.shape];
    shape[axis] = n + amount;
    y = tf.reshape(
      tf.pad(tf.reshape(y, [outer, n, inner]), [
        [0, 0],
        [0, amount],
        [0, 0],
      ]),
      shape,
    );
  });
  return y;
}

/** Keeps the first `sizes[axis]` entries of each axis. */
export function cropTo(x: Tensor, sizes: readonly number[]): Tensor {
  let y = x;
  sizes.forEach((size, axis) => {
    if (size < y.shape[axis]) y = sliceAxis(y, axis, 0, size);
  });
  return y;
}

/** torch.roll: a positive shift moves elements towards higher indices. Slice + concat per axis at rank 3. */
export function roll(x: Tensor, shifts: readonly number[], axes: readonly number[]): Tensor {
  let y = x;
  axes.forEach((axis, i) => {
    const n = x.shape[axis];
    const s = ((shifts[i] % n) + n) % n;
    if (s === 0) return;
    const [outer, , inner] = around(y, axis);
    const flat = tf.reshape(y, [outer, n, inner]);
    const rolled = tf.concat(
      [tf.slice(flat, [0, n - s, 0], [outer, s, inner]), tf.slice(flat, [0, 0, 0], [outer, n - s, inner])],
      1,
    );
    y = tf.reshape(rolled, y.shape);
  });
  return y;
}

/**
 * Gathers rows of a small table (the relative position bias table) by constant indices. The gradient
 * is a scatter-add on the device (ScatterNd sums rows that share an index), so backward never reads
 * back to the host: tfjs's own GatherV2 gradient (UnsortedSegmentSum) is missing on wasm, and a
 * one-hot matMul would need N^2 x L memory.
 */
export function gatherRows(table: Tensor, indices: Int32Array): Tensor {
  const rows = table.shape[0];
  const cols = table.shape[1] as number;
  for (let i = 0; i < indices.length; i++) {
    if (!(indices[i] >= 0 && indices[i] < rows)) {
      throw new Error(`gatherRows: index ${indices[i]} at position ${i} is outside the table's ${rows} rows`);
    }
  }
  const op = withGradient(([t]) => {
    const value = tf.tidy(() => tf.gather(t, tf.tensor1d(indices, 'int32')));
    return {
      value,
      gradFunc: (dy: Tensor) => [
        tf.tidy(() => tf.scatterND(tf.tensor2d(indices, [indices.length, 1], 'int32'), to2d(dy), [rows, cols])),
      ],
    };
  });
  return op(table);
}

/**
 * Patch embedding with kernel = stride (a Conv3d in the official code): zero-pad T, H, W at the end to
 * multiples of the patch, cut non-overlapping cubes and apply one linear map. tfjs's Conv3D gradient
 * is wrong on wasm, and this form is also faster. x [B, Cin, T, H, W], weight [C, Cin, pt, ph, pw].
 * Returns channels-last [B, D, H', W', C].
 */
export function patchEmbed(x: Tensor, weight: Tensor, bias: Tensor, patch: readonly number[]): Tensor {
  const [b, cin, t, h, w] = x.shape;
  const [pt, ph, pw] = patch;
  const d = Math.ceil(t / pt);
  const hh = Math.ceil(h / ph);
  const ww = Math.ceil(w / pw);
  let y = padEnd(x, [0, 0, d * pt - t, hh * ph - h, ww * pw - w]);
  y = tf.reshape(y, [b * cin * d, pt, hh, ph, ww, pw]); // [B*Cin*D, pt, H', ph, W', pw]
  y = tf.transpose(y, [0, 2, 4, 1, 3, 5]); // [B*Cin*D, H', W', pt, ph, pw]
  y = tf.reshape(y, [b, cin, d * hh * ww, pt * ph * pw]); // [B, Cin, L, K]
  y = tf.transpose(y, [0, 2, 1, 3]); // [B, L, Cin, K]
  const features = cin * pt * ph * pw;
  const out = linear(tf.reshape(y, [b * d * hh * ww, features]), tf.reshape(weight, [weight.shape[0], features]), bias);
  return tf.reshape(out, [b, d, hh, ww, weight.shape[0]]); // [B, D, H', W', C]
}

/**
 * Windowed multi-head attention core: softmax(q k^T + bias (+ mask)) v for every window and head.
 * q, k, v: [B_, nH, N, hd] (q already scaled); bias [nH, N, N]; mask [nW, N, N] (windows of one clip,
 * B_ = batch * nW) or null. Returns the output [B_, nH, N, hd] and, unless a fused kernel ran without
 * `probabilities` requested, the probabilities [B_, nH, N, N].
 */
export function windowAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  bias: Tensor,
  mask: Tensor | null,
  options: { dropout?: (probs: Tensor) => Tensor; probabilities?: boolean } = {},
): { out: Tensor; probs: Tensor | null } {
  // A tier with a fused kernel keeps each window's scores in cache and recomputes them in the
  // backward pass; it cannot hand out the probabilities or drop some of them.
  if (!options.probabilities && !options.dropout && hasKernel(WINDOW_ATTENTION)) {
    return { out: fusedWindowAttention(q, k, v, bias, mask), probs: null };
  }
  const dropout = options.dropout ?? ((p: Tensor) => p);
  const [bw, heads, n, hd] = q.shape;
  checkWebGpuBinding(bw * heads * n * n, `window attention scores [${bw}, ${heads}, ${n}, ${n}]`);
  const q3 = tf.reshape(q, [bw * heads, n, hd]);
  const k3 = tf.reshape(k, [bw * heads, n, hd]);
  const v3 = tf.reshape(v, [bw * heads, n, hd]);
  let scores = tf.reshape(tf.matMul(q3, k3, false, true), [bw, heads, n, n]); // [B_, nH, N, N]
  if (mask) {
    const windows = mask.shape[0];
    scores = tf.reshape(scores, [bw / windows, windows, heads, n, n]); // [B, nW, nH, N, N]
    scores = tf.add(addTrailing(scores, bias), tf.reshape(mask, [1, windows, 1, n, n]));
  } else {
    scores = addTrailing(scores, bias);
  }
  const probs = tf.reshape(tf.softmax(tf.reshape(scores, [bw * heads * n, n])), [bw * heads, n, n]);
  const out = tf.reshape(tf.matMul(dropout(probs), v3), [bw, heads, n, hd]);
  return { out, probs: tf.reshape(probs, [bw, heads, n, n]) };
}

/**
 * Window partition: [B, Dp, Hp, Wp, C] -> [B * nW, N, C], windows batch-major then (d, h, w), tokens
 * (d, h, w) row-major. Two rank-6 steps (wasm elementwise/transpose must stay at rank <= 6).
 */
export function windowPartition(x: Tensor, window: readonly number[]): Tensor {
  const [b, dp, hp, wp, c] = x.shape;
  const [wd, wh, ww] = window;
  const nd = dp / wd;
  const nh = hp / wh;
  const nw = wp / ww;
  let y = tf.reshape(x, [b * nd, wd, nh, wh, nw, ww * c]); // [B*nD, wd, nH, wh, nW, ww*C]
  y = tf.transpose(y, [0, 2, 4, 1, 3, 5]); // [B*nD, nH, nW, wd, wh, ww*C]
  return tf.reshape(y, [b * nd * nh * nw, wd * wh * ww, c]); // [B*nWin, N, C]
}

/** Inverse of windowPartition: [B * nW, N, C] -> [B, Dp, Hp, Wp, C]. */
export function windowReverse(windows: Tensor, window: readonly number[], batch: number, padded: readonly number[]): Tensor {
  const [wd, wh, ww] = window;
  const [dp, hp, wp] = padded;
  const c = windows.shape[2] as number;
  const nd = dp / wd;
  const nh = hp / wh;
  const nw = wp / ww;
  let y = tf.reshape(windows, [batch * nd, nh, nw, wd, wh, ww * c]); // [B*nD, nH, nW, wd, wh, ww*C]
  y = tf.transpose(y, [0, 3, 1, 4, 2, 5]); // [B*nD, wd, nH, wh, nW, ww*C]
  return tf.reshape(y, [batch, dp, hp, wp, c]); // [B, Dp, Hp, Wp, C]
}

/**
 * PatchMerging's gather: [B, D, H, W, C] -> [B, D, ceil(H/2), ceil(W/2), 4C], zero-padding odd H/W,
 * channels in the official order (even h, even w), (odd h, even w), (even h, odd w), (odd h, odd w).
 * Reshape + rank-6 transpose (tfjs has no StridedSlice gradient).
 */
export function mergePatches(x: Tensor): Tensor {
  const [b, d, h, w, c] = x.shape;
  let y = padEnd(x, [0, 0, h % 2, w % 2, 0]);
  const h2 = Math.ceil(h / 2);
  const w2 = Math.ceil(w / 2);
  y = tf.reshape(y, [b * d, h2, 2, w2, 2, c]); // [B*D, H/2, hParity, W/2, wParity, C]
  y = tf.transpose(y, [0, 1, 3, 4, 2, 5]); // [B*D, H/2, W/2, wParity, hParity, C]
  return tf.reshape(y, [b, d, h2, w2, 4 * c]); // [B, D, H/2, W/2, 4C]
}

/** Mean softmax cross-entropy; `smoothing` > 0 gives mmaction's LabelSmoothing soft targets. */
export function crossEntropy(logits: Tensor, labels: Int32Array | number[], smoothing = 0): Tensor {
  return tf.tidy(() => {
    const classes = logits.shape[1] as number;
    const onehot = tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), classes).toFloat();
    const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / classes) : onehot;
    return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)));
  });
}
