/// <reference types="@webgpu/types" />
// Fused kernels for the webgpu backend, written in WGSL and registered under the names the model's
// ops look for (as the wasm tier registers its own): VswinWindowAttention (q kᵀ + bias + mask,
// softmax and · v in one pass per query row, with an online softmax so the [windows, heads, n, n]
// scores never exist), VswinLayerNorm and its gradient, VswinGelu and its gradient, VswinAdamW.
// The arithmetic follows the composed versions in ../kernels/ (and so the official code); each is
// checked against the cpu backend in test/engine/webgpu/kernels.test.ts.
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';
import { tf } from '../tf.ts';
import { WINDOW_ATTENTION } from '../kernels/attention.ts';
import { ADAMW, type AdamWStep } from '../kernels/optimizer.ts';
import { GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD } from '../kernels/norm-and-gelu.ts';

type TensorInfo = tf.TensorInfo;
/** One scalar per entry: tfjs aligns a multi-value entry like a vector, which would not match the struct's scalars. */
type Uniform = { type: 'float32' | 'int32'; data: [number] };
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: WebGPUBackend; attrs: Record<string, unknown> };

const WORKGROUP = 64;

/**
 * A program over `threads` invocations (one per element or per row) writing a flat float32 output of
 * `outputSize` elements. `body` is WGSL run with `index` (the invocation) below `uniforms.threads`;
 * inputs are the flat arrays named in `inputs`, the output is `result`.
 */
class FlatProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms: string;

  constructor(
    key: string,
    inputs: string[],
    outputSize: number,
    threads: number,
    uniforms: string,
    private readonly body: string,
    private readonly helpers = '',
  ) {
    this.variableNames = inputs;
    this.outputShape = [outputSize];
    this.shaderKey = key;
    this.uniforms = `threads : i32, ${uniforms}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout([threads]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [threads], this.workgroupSize);
  }

  getUserCode(): string {
    return `
      ${this.helpers}
      fn main(index : i32) {
        if (index < uniforms.threads) {
          ${this.body}
        }
      }`;
  }
}

function run(
  backend: WebGPUBackend,
  program: FlatProgram,
  inputs: TensorInfo[],
  threads: number,
  uniforms: Uniform[],
  shape: number[],
): TensorInfo {
  const flat = backend.runWebGPUProgram(program, inputs, 'float32', [{ type: 'int32', data: [threads] }, ...uniforms]);
  // A flat output viewed with the caller's shape (same buffer, as tfjs's Reshape does).
  return { dataId: flat.dataId, shape, dtype: 'float32' };
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the approximation tfjs's own Erf kernels use.
const ERF = `
  fn erf_(x : f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return select(-y, y, x >= 0.0);
  }`;

function gelu({ inputs, backend }: KernelArgs): TensorInfo {
  const { x } = inputs;
  const n = size(x.shape);
  const program = new FlatProgram(
    'vswin_gelu',
    ['X'],
    n,
    n,
    '',
    `let v = X[index]; result[index] = 0.5 * v * (1.0 + erf_(v * ${Math.SQRT1_2}));`,
    ERF,
  );
  return run(backend, program, [x], n, [], x.shape);
}

function geluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, x } = inputs;
  const n = size(x.shape);
  const body = `
    let v = X[index];
    let cdf = 0.5 * (1.0 + erf_(v * ${Math.SQRT1_2}));
    let pdf = exp(-0.5 * v * v) * ${1 / Math.sqrt(2 * Math.PI)};
    result[index] = DY[index] * (cdf + v * pdf);`;
  return run(backend, new FlatProgram('vswin_gelu_grad', ['DY', 'X'], n, n, '', body, ERF), [dy, x], n, [], x.shape);
}

function rowsAndCols(shape: number[]): [number, number] {
  const cols = shape[shape.length - 1];
  return [size(shape) / cols, cols];
}

/** LayerNorm: a row pass for the mean and 1/std (two-pass variance, biased, like PyTorch), then an elementwise pass. */
function layerNorm({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const [rows, cols] = rowsAndCols(x.shape);
  const stats = (which: 'mean' | 'rstd') => `
    let start = index * uniforms.cols;
    var sum = 0.0;
    for (var c = 0; c < uniforms.cols; c++) { sum += X[start + c]; }
    let mean = sum / f32(uniforms.cols);
    ${
      which === 'mean'
        ? 'result[index] = mean;'
        : `var squares = 0.0;
    for (var c = 0; c < uniforms.cols; c++) { let d = X[start + c] - mean; squares += d * d; }
    result[index] = inverseSqrt(squares / f32(uniforms.cols) + uniforms.eps);`
    }`;
  const uniforms: Uniform[] = [
    { type: 'int32', data: [cols] },
    { type: 'float32', data: [attrs.eps as number] },
  ];
  const declared = 'cols : i32, eps : f32,';
  const mean = run(backend, new FlatProgram('vswin_ln_mean', ['X'], rows, rows, declared, stats('mean')), [x], rows, uniforms, [
    rows,
  ]);
  const rstd = run(backend, new FlatProgram('vswin_ln_rstd', ['X'], rows, rows, declared, stats('rstd')), [x], rows, uniforms, [
    rows,
  ]);
  const n = rows * cols;
  const body = `
    let row = index / uniforms.cols;
    let c = index - row * uniforms.cols;
    result[index] = (X[index] - MEAN[row]) * RSTD[row] * GAMMA[c] + BETA[c];`;
  const program = new FlatProgram('vswin_ln', ['X', 'MEAN', 'RSTD', 'GAMMA', 'BETA'], n, n, declared, body);
  const y = run(backend, program, [x, mean, rstd, gamma, beta], n, uniforms, x.shape);
  return [y, mean, rstd];
}

/**
 * LayerNorm's gradient: dx = rstd (g - mean(g) - x̂ mean(g x̂)) with g = dy γ, from a row pass for the
 * two means and an elementwise pass; dγ = Σ_rows dy x̂ and dβ = Σ_rows dy by tfjs's reductions.
 */
function layerNormGrad({ inputs, backend }: KernelArgs): TensorInfo[] {
  const { dy, x, gamma, mean, rstd } = inputs;
  const [rows, cols] = rowsAndCols(x.shape);
  const uniforms: Uniform[] = [{ type: 'int32', data: [cols] }];
  const declared = 'cols : i32,';
  const rowMeans = `
    let start = index * uniforms.cols;
    var sumG = 0.0;
    var sumGX = 0.0;
    for (var c = 0; c < uniforms.cols; c++) {
      let g = DY[start + c] * GAMMA[c];
      sumG += g;
      sumGX += g * (X[start + c] - MEAN[index]) * RSTD[index];
    }
    result[2 * index] = sumG / f32(uniforms.cols);
    result[2 * index + 1] = sumGX / f32(uniforms.cols);`;
  const names = ['DY', 'X', 'GAMMA', 'MEAN', 'RSTD'];
  const means = run(
    backend,
    new FlatProgram('vswin_ln_grad_means', names, 2 * rows, rows, declared, rowMeans),
    [dy, x, gamma, mean, rstd],
    rows,
    uniforms,
    [rows, 2],
  );
  const n = rows * cols;
  const dxBody = `
    let row = index / uniforms.cols;
    let c = index - row * uniforms.cols;
    let xhat = (X[index] - MEAN[row]) * RSTD[row];
    result[index] = RSTD[row] * (DY[index] * GAMMA[c] - MEANS[2 * row] - xhat * MEANS[2 * row + 1]);`;
  const dx = run(
    backend,
    new FlatProgram('vswin_ln_grad_dx', [...names, 'MEANS'], n, n, declared, dxBody),
    [dy, x, gamma, mean, rstd, means],
    n,
    uniforms,
    x.shape,
  );
  const xhatBody = `
    let row = index / uniforms.cols;
    result[index] = DY[index] * (X[index] - MEAN[row]) * RSTD[row];`;
  const dyXhat = run(
    backend,
    new FlatProgram('vswin_ln_grad_dyxhat', ['DY', 'X', 'MEAN', 'RSTD'], n, n, declared, xhatBody),
    [dy, x, mean, rstd],
    n,
    uniforms,
    [rows, cols],
  );
  const sum = tf.getKernel('Sum', 'webgpu')!.kernelFunc as unknown as (args: unknown) => TensorInfo;
  const columnSum = (t: TensorInfo) => sum({ inputs: { x: t }, backend, attrs: { axis: [0], keepDims: false } });
  const dy2d = { ...dy, shape: [rows, cols] };
  const dgamma = columnSum(dyXhat);
  const dbeta = columnSum(dy2d);
  backend.disposeData(means.dataId);
  backend.disposeData(dyXhat.dataId);
  return [dx, dgamma, dbeta];
}

/** AdamW for one parameter, three elementwise passes (parameter, first and second moment), order as in ../kernels/optimizer.ts. */
function adamW({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { param, grad, expAvg, expAvgSq } = inputs;
  const s = attrs as unknown as AdamWStep;
  const n = size(param.shape);
  const first = !expAvg;
  // A pipeline binds only the arrays its shader reads, so each pass is given exactly those.
  const named: Record<string, TensorInfo> = first ? { P: param, G: grad } : { P: param, G: grad, M: expAvg, V: expAvgSq };
  const declared =
    'decay : f32, beta1 : f32, oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32, correction2Sqrt : f32, eps : f32, stepSize : f32,';
  const scalars = [
    1 - s.lr * s.weightDecay,
    s.beta1,
    1 - s.beta1,
    s.beta2,
    1 - s.beta2,
    s.correction2Sqrt,
    s.eps,
    s.lr / s.correction1,
  ];
  const uniforms: Uniform[] = scalars.map((value) => ({ type: 'float32', data: [value] }));
  const m = first ? 'G[index] * uniforms.oneMinusBeta1' : 'M[index] * uniforms.beta1 + G[index] * uniforms.oneMinusBeta1';
  const v = first
    ? '(G[index] * G[index]) * uniforms.oneMinusBeta2'
    : 'V[index] * uniforms.beta2 + (G[index] * G[index]) * uniforms.oneMinusBeta2';
  const decayed = s.weightDecay !== 0 ? 'P[index] * uniforms.decay' : 'P[index]';
  const pass = (key: string, names: string[], body: string) => {
    const used = names.filter((name) => name in named);
    const program = new FlatProgram(`vswin_adamw_${key}_${first}_${s.weightDecay !== 0}`, used, n, n, declared, body);
    return run(
      backend,
      program,
      used.map((name) => named[name]),
      n,
      uniforms,
      param.shape,
    );
  };
  const newParam = `
    let m = ${m};
    let v = ${v};
    let denominator = sqrt(v) / uniforms.correction2Sqrt + uniforms.eps;
    result[index] = ${decayed} - (m / denominator) * uniforms.stepSize;`;
  return [
    pass('param', ['P', 'G', 'M', 'V'], newParam),
    pass('m', ['G', 'M'], `result[index] = ${m};`),
    pass('v', ['G', 'V'], `result[index] = ${v};`),
  ];
}

/**
 * softmax(q kᵀ + bias + mask) v with one invocation per (window, head, query row): the scores of the
 * row are visited twice (maximum, then exponentials and the weighted sum of v), never stored.
 * q, k, v [windows*batch, heads, n, dim], bias [heads, n, n], mask [windows, n, n] or none.
 */
function windowAttention({ inputs, backend }: KernelArgs): TensorInfo {
  const { q, k, v, bias, mask } = inputs;
  const [batch, heads, n, dim] = q.shape;
  const windows = mask ? mask.shape[0] : 1;
  const rows = batch * heads * n;
  const maskTerm = mask ? ' + MASK[(b % uniforms.windows) * n * n + i * n + j]' : '';
  const body = `
    let n = uniforms.n;
    let i = index % n;
    let bh = index / n;
    let h = bh % uniforms.heads;
    let b = bh / uniforms.heads;
    let qStart = index * ${dim};
    let kvStart = bh * n * ${dim};
    var qRow : array<f32, ${dim}>;
    for (var d = 0; d < ${dim}; d++) { qRow[d] = Q[qStart + d]; }
    var best = -3.402823e38;
    for (var j = 0; j < n; j++) {
      var s = 0.0;
      for (var d = 0; d < ${dim}; d++) { s += qRow[d] * K[kvStart + j * ${dim} + d]; }
      s = s + BIAS[h * n * n + i * n + j]${maskTerm};
      best = max(best, s);
    }
    var total = 0.0;
    var acc : array<f32, ${dim}>;
    for (var j = 0; j < n; j++) {
      var s = 0.0;
      for (var d = 0; d < ${dim}; d++) { s += qRow[d] * K[kvStart + j * ${dim} + d]; }
      s = s + BIAS[h * n * n + i * n + j]${maskTerm};
      let e = exp(s - best);
      total += e;
      for (var d = 0; d < ${dim}; d++) { acc[d] += e * V[kvStart + j * ${dim} + d]; }
    }
    for (var d = 0; d < ${dim}; d++) { result[qStart + d] = acc[d] / total; }`;
  const names = mask ? ['Q', 'K', 'V', 'BIAS', 'MASK'] : ['Q', 'K', 'V', 'BIAS'];
  const program = new FlatProgram(
    `vswin_window_attention_${dim}_${!!mask}`,
    names,
    rows * dim,
    rows,
    'n : i32, heads : i32, windows : i32,',
    body,
  );
  const uniforms: Uniform[] = [n, heads, windows].map((value) => ({ type: 'int32', data: [value] }));
  return run(backend, program, mask ? [q, k, v, bias, mask] : [q, k, v, bias], rows, uniforms, q.shape);
}

const KERNELS: Record<string, (args: KernelArgs) => TensorInfo | TensorInfo[]> = {
  [GELU]: gelu,
  [GELU_GRAD]: geluGrad,
  [LAYER_NORM]: layerNorm,
  [LAYER_NORM_GRAD]: layerNormGrad,
  [ADAMW]: adamW,
  [WINDOW_ATTENTION]: windowAttention,
};

/** Kernel names the webgpu backend runs as fused WGSL programs. */
export const WEBGPU_KERNELS = Object.keys(KERNELS);

/** Registers the fused kernels for the webgpu backend (once; they stay registered with it). */
export function installWebGpuKernels(): void {
  for (const [name, kernel] of Object.entries(KERNELS)) {
    if (tf.getKernel(name, 'webgpu')) continue;
    tf.registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc: kernel as unknown as tf.KernelFunc });
  }
}

/** Removes them again (tests compare against the composed versions). */
export function uninstallWebGpuKernels(): void {
  for (const name of WEBGPU_KERNELS) if (tf.getKernel(name, 'webgpu')) tf.unregisterKernel(name, 'webgpu');
}
