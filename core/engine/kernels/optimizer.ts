// One-pass AdamW update: new parameter and moments from one kernel on a tier that has it, the
// same arithmetic from ordinary ops elsewhere (order as in core/train/adamw.ts, PyTorch's AdamW).
import { tf } from '../tf.ts';
import type { KernelProvider } from './provider.ts';
import { floatView, wasmBackendOf, type KernelContext, type KernelFunction, type TensorInfo } from './kernel-types.ts';

type Tensor = tf.Tensor;

export const ADAMW = 'VswinAdamW';

export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 - beta1^step */
  correction1: number;
  /** sqrt(1 - beta2^step) */
  correction2Sqrt: number;
}

export function adamWKernel(provider: KernelProvider, _context: KernelContext): KernelFunction {
  return (args) => {
    const { param, grad, expAvg, expAvgSq } = args.inputs as Record<'param' | 'grad', TensorInfo> &
      Partial<Record<'expAvg' | 'expAvgSq', TensorInfo>>;
    const s = args.attrs as unknown as AdamWStep;
    const backend = wasmBackendOf(args);
    const outputs = [0, 1, 2].map(() => backend.makeOutput(param.shape, 'float32'));
    provider.adamw!(
      floatView(backend, param),
      floatView(backend, grad),
      expAvg ? floatView(backend, expAvg) : null,
      expAvgSq ? floatView(backend, expAvgSq) : null,
      floatView(backend, outputs[0]),
      floatView(backend, outputs[1]),
      floatView(backend, outputs[2]),
      Float64Array.from([s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.correction1, s.correction2Sqrt]),
    );
    return outputs;
  };
}

/**
 * The AdamW step for one parameter: returns the updated parameter and moments (new tensors; the
 * caller assigns the parameter and disposes the old moments). Pass null moments on the first step.
 */
export function fusedAdamWUpdate(
  param: Tensor,
  grad: Tensor,
  expAvg: Tensor | null,
  expAvgSq: Tensor | null,
  step: AdamWStep,
): { param: Tensor; expAvg: Tensor; expAvgSq: Tensor } {
  const same = (t: Tensor) => t.shape.length === param.shape.length && t.shape.every((extent, d) => extent === param.shape[d]);
  if (!same(grad) || (expAvg && !same(expAvg)) || (expAvgSq && !same(expAvgSq)) || (expAvg === null) !== (expAvgSq === null)) {
    throw new Error(
      `fusedAdamWUpdate: grad [${grad.shape}] and both moments (or neither) must have the parameter's shape [${param.shape}]`,
    );
  }
  if (tf.getKernel(ADAMW, tf.getBackend()) && [param, grad].every((t) => t.dtype === 'float32')) {
    const inputs: tf.NamedTensorMap = expAvg && expAvgSq ? { param, grad, expAvg, expAvgSq } : { param, grad };
    const [p, m, v] = tf.engine().runKernel(ADAMW, inputs, step as unknown as tf.NamedAttrMap) as Tensor[];
    return { param: p, expAvg: m, expAvgSq: v };
  }
  return tf.tidy(() => {
    const { lr, beta1, beta2, eps, weightDecay, correction1, correction2Sqrt } = step;
    const decayed = weightDecay !== 0 ? tf.mul(param, 1 - lr * weightDecay) : param;
    const m = expAvg ? tf.add(tf.mul(expAvg, beta1), tf.mul(grad, 1 - beta1)) : tf.mul(grad, 1 - beta1);
    const squared = tf.mul(grad, grad);
    const v = expAvgSq ? tf.add(tf.mul(expAvgSq, beta2), tf.mul(squared, 1 - beta2)) : tf.mul(squared, 1 - beta2);
    const denominator = tf.add(tf.div(tf.sqrt(v), correction2Sqrt), eps);
    const updated = tf.sub(decayed, tf.mul(tf.div(m, denominator), lr / correction1));
    return { param: updated, expAvg: m, expAvgSq: v };
  });
}
