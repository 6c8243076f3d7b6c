// Fused LayerNorm and exact GELU, forward and backward, as ops with custom gradients. On a tier
// that has them each is one kernel (one pass over the activation instead of ~10 for LayerNorm and
// 4-8 for GELU); elsewhere they are composed from ordinary ops with the same gradients.
import { tf } from '../tf.ts';
import type { KernelProvider } from './provider.ts';
import { floatView, wasmBackendOf, type KernelContext, type KernelFunction, type TensorInfo } from './kernel-types.ts';

type Tensor = tf.Tensor;

export const LAYER_NORM = 'VswinLayerNorm';
export const LAYER_NORM_GRAD = 'VswinLayerNormGrad';
export const GELU = 'VswinGelu';
export const GELU_GRAD = 'VswinGeluGrad';

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function rowsAndCols(shape: number[]): [number, number] {
  const cols = shape[shape.length - 1] ?? 1;
  return [shape.reduce((a, b) => a * b, 1) / Math.max(cols, 1), cols];
}

export function layerNormKernel(provider: KernelProvider, _context: KernelContext): KernelFunction {
  return (args) => {
    const { x, gamma, beta } = args.inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const { eps } = args.attrs as { eps: number };
    const [rows, cols] = rowsAndCols(x.shape);
    const backend = wasmBackendOf(args);
    const y = backend.makeOutput(x.shape, 'float32');
    const mean = backend.makeOutput([rows], 'float32');
    const rstd = backend.makeOutput([rows], 'float32');
    provider.layerNorm!(
      floatView(backend, x),
      floatView(backend, gamma),
      floatView(backend, beta),
      floatView(backend, y),
      floatView(backend, mean),
      floatView(backend, rstd),
      rows,
      cols,
      eps,
    );
    return [y, mean, rstd];
  };
}

export function layerNormGradKernel(provider: KernelProvider, _context: KernelContext): KernelFunction {
  return (args) => {
    const { dy, x, gamma, mean, rstd } = args.inputs as Record<'dy' | 'x' | 'gamma' | 'mean' | 'rstd', TensorInfo>;
    const [rows, cols] = rowsAndCols(x.shape);
    const backend = wasmBackendOf(args);
    const dx = backend.makeOutput(x.shape, 'float32');
    const dgamma = backend.makeOutput([cols], 'float32');
    const dbeta = backend.makeOutput([cols], 'float32');
    provider.layerNormGrad!(
      floatView(backend, dy),
      floatView(backend, x),
      floatView(backend, gamma),
      floatView(backend, mean),
      floatView(backend, rstd),
      floatView(backend, dx),
      floatView(backend, dgamma),
      floatView(backend, dbeta),
      rows,
      cols,
    );
    return [dx, dgamma, dbeta];
  };
}

export function geluKernel(provider: KernelProvider, _context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const backend = wasmBackendOf(args);
    const y = backend.makeOutput(x.shape, 'float32');
    provider.gelu!(floatView(backend, x), floatView(backend, y));
    return y;
  };
}

export function geluGradKernel(provider: KernelProvider, _context: KernelContext): KernelFunction {
  return (args) => {
    const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
    const backend = wasmBackendOf(args);
    const dx = backend.makeOutput(x.shape, 'float32');
    provider.geluGrad!(floatView(backend, dy), floatView(backend, x), floatView(backend, dx));
    return dx;
  };
}

const has = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

function withSavedGradient(
  forward: (inputs: Tensor[], save: tf.GradSaveFunc) => { value: Tensor; gradFunc: (dy: Tensor, saved: Tensor[]) => Tensor[] },
) {
  return tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) =>
    forward(args.slice(0, -1) as Tensor[], args[args.length - 1] as tf.GradSaveFunc),
  );
}

const layerNormOps = new Map<number, ReturnType<typeof withSavedGradient>>();

function layerNormOp(eps: number) {
  return withSavedGradient(([x, gamma, beta], save) => {
    const cols = x.shape[1] as number;
    if (has(LAYER_NORM) && has(LAYER_NORM_GRAD)) {
      const [value, mean, rstd] = tf.engine().runKernel(LAYER_NORM, { x, gamma, beta }, { eps }) as Tensor[];
      save([x, gamma, mean, rstd]);
      return {
        value,
        gradFunc: (dy, [xs, gs, ms, rs]) =>
          tf.engine().runKernel(LAYER_NORM_GRAD, { dy, x: xs, gamma: gs, mean: ms, rstd: rs }, {}) as Tensor[],
      };
    }
    const mean = tf.mean(x, 1, true);
    const centered = tf.sub(x, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centered), 1, true), eps));
    const normalized = tf.mul(centered, rstd);
    save([normalized, rstd, gamma]);
    return {
      value: tf.add(tf.mul(normalized, gamma), beta),
      gradFunc: (dy, [xhat, r, gs]) => {
        const g = tf.mul(dy, gs);
        const dx = tf.mul(
          r,
          tf.sub(tf.sub(g, tf.mean(g, 1, true)), tf.mul(xhat, tf.div(tf.sum(tf.mul(g, xhat), 1, true), cols))),
        );
        return [dx, tf.sum(tf.mul(dy, xhat), 0), tf.sum(dy, 0)];
      },
    };
  });
}

/** PyTorch `nn.LayerNorm(C, eps)` over the last axis (biased variance); gamma and beta [C]. */
export function fusedLayerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const cols = x.shape[x.rank - 1];
  if (gamma.shape.join() !== `${cols}` || beta.shape.join() !== `${cols}`) {
    throw new Error(
      `fusedLayerNorm: gamma [${gamma.shape}] and beta [${beta.shape}] must both have shape [${cols}] (the last axis of x [${x.shape}])`,
    );
  }
  let op = layerNormOps.get(eps);
  if (!op) layerNormOps.set(eps, (op = layerNormOp(eps)));
  return tf.reshape(op(tf.reshape(x, [-1, cols]), gamma, beta), x.shape);
}

const geluOp = withSavedGradient(([x], save) => {
  save([x]);
  if (has(GELU) && has(GELU_GRAD)) {
    return {
      value: tf.engine().runKernel(GELU, { x }, {}) as Tensor,
      gradFunc: (dy, [xs]) => [tf.engine().runKernel(GELU_GRAD, { dy, x: xs }, {}) as Tensor],
    };
  }
  return {
    value: tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1)),
    gradFunc: (dy, [xs]) => {
      const cdf = tf.mul(tf.add(tf.erf(tf.mul(xs, SQRT1_2)), 1), 0.5);
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI);
      return [tf.mul(dy, tf.add(cdf, tf.mul(xs, pdf)))];
    },
  };
});

/** Exact (erf) GELU, PyTorch's nn.GELU() default. */
export function fusedGelu(x: Tensor): Tensor {
  if (x.dtype !== 'float32') throw new Error(`fusedGelu: x must be float32, got ${x.dtype}`);
  return geluOp(x);
}
