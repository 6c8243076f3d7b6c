// Fused window attention: softmax(q kᵀ + bias + mask) v per window and head with the n x n scores
// kept in cache. On a tier that has it, the op runs as one kernel (VswinWindowAttention); anywhere
// else it is composed from ordinary ops. Its gradient recomputes the probabilities from the saved
// inputs instead of keeping them, so training never holds the [windows, heads, n, n] tensor either.
import { tf } from '../tf.ts';
import type { KernelProvider } from './provider.ts';
import { floatView, wasmBackendOf, type KernelContext, type KernelFunction, type TensorInfo } from './kernel-types.ts';

type Tensor = tf.Tensor;

export const WINDOW_ATTENTION = 'VswinWindowAttention';

export function windowAttentionKernel(provider: KernelProvider, _context: KernelContext): KernelFunction {
  return (args) => {
    const { q, k, v, bias, mask } = args.inputs as {
      q: TensorInfo;
      k: TensorInfo;
      v: TensorInfo;
      bias: TensorInfo;
      mask?: TensorInfo;
    };
    const [batch, heads, n, dim] = q.shape;
    const windows = mask ? mask.shape[0] : 1;
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(q.shape, 'float32');
    provider.windowAttention!(
      floatView(backend, q),
      floatView(backend, k),
      floatView(backend, v),
      floatView(backend, bias),
      mask ? floatView(backend, mask) : null,
      floatView(backend, out),
      Int32Array.from([batch, heads, n, dim, windows]),
    );
    return out;
  };
}

/** Scores as the official code forms them: [batch * heads, n, n], bias and mask added. */
function scores(q: Tensor, k: Tensor, bias: Tensor, mask: Tensor | null): Tensor {
  const [batch, heads, n, dim] = q.shape;
  const raw = tf.matMul(tf.reshape(q, [batch * heads, n, dim]), tf.reshape(k, [batch * heads, n, dim]), false, true);
  let biased = tf.add(tf.reshape(raw, [batch, heads, n, n]), bias); // bias [heads, n, n]
  if (mask) {
    const windows = mask.shape[0];
    biased = tf.add(tf.reshape(biased, [batch / windows, windows, heads, n, n]), tf.reshape(mask, [1, windows, 1, n, n]));
  }
  return tf.reshape(biased, [batch * heads, n, n]);
}

function composed(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | null): Tensor {
  const [batch, heads, n, dim] = q.shape;
  const probs = tf.softmax(scores(q, k, bias, mask));
  return tf.reshape(tf.matMul(probs, tf.reshape(v, [batch * heads, n, dim])), [batch, heads, n, dim]);
}

function checkShapes(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | null): void {
  const [batch, heads, n, dim] = q.shape;
  const same = (t: Tensor) => t.shape.length === 4 && t.shape.every((extent, d) => extent === q.shape[d]);
  const problems: string[] = [];
  if (q.rank !== 4) problems.push(`q has shape [${q.shape}], expected [windows*batch, heads, tokens, dim]`);
  if (!same(k) || !same(v)) problems.push(`k [${k.shape}] and v [${v.shape}] must match q [${q.shape}]`);
  if (bias.shape.join() !== [heads, n, n].join())
    problems.push(`bias has shape [${bias.shape}], expected [${heads}, ${n}, ${n}]`);
  if (mask && (mask.rank !== 3 || mask.shape[1] !== n || mask.shape[2] !== n || batch % mask.shape[0] !== 0)) {
    problems.push(`mask has shape [${mask.shape}], expected [windows, ${n}, ${n}] with windows dividing ${batch}`);
  }
  if ([q, k, v, bias, ...(mask ? [mask] : [])].some((t) => t.dtype !== 'float32')) problems.push('every input must be float32');
  if (problems.length > 0) throw new Error(`fusedWindowAttention: ${problems.join('; ')} (dim ${dim})`);
}

/**
 * out = softmax(q kᵀ + bias + mask) v, per window and head: q, k, v [windows*batch, heads, n, dim]
 * (q already scaled), bias [heads, n, n], mask [windows, n, n] or null (windows are the inner
 * factor of the first dimension, as in the official code). Differentiable in q, k, v and bias.
 */
export function fusedWindowAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, mask: Tensor | null): Tensor {
  checkShapes(q, k, v, bias, mask);
  const [batch, heads, n, dim] = q.shape;
  const fused = tf.getKernel(WINDOW_ATTENTION, tf.getBackend()) !== undefined;
  const forward = (inputs: Tensor[]): Tensor => {
    const [qi, ki, vi, bi, mi] = inputs;
    return fused
      ? (tf
          .engine()
          .runKernel(
            WINDOW_ATTENTION,
            mi ? { q: qi, k: ki, v: vi, bias: bi, mask: mi } : { q: qi, k: ki, v: vi, bias: bi },
            {},
          ) as Tensor)
      : composed(qi, ki, vi, bi, mi ?? null);
  };
  const backward = (dy: Tensor, saved: Tensor[]): Tensor[] => {
    const [qs, ks, vs, bs, ms] = saved;
    const q3 = tf.reshape(qs, [batch * heads, n, dim]);
    const k3 = tf.reshape(ks, [batch * heads, n, dim]);
    const v3 = tf.reshape(vs, [batch * heads, n, dim]);
    const dy3 = tf.reshape(dy, [batch * heads, n, dim]);
    const probs = tf.softmax(scores(qs, ks, bs, ms ?? null));
    const dProbs = tf.matMul(dy3, v3, false, true);
    const dScores = tf.mul(probs, tf.sub(dProbs, tf.sum(tf.mul(dProbs, probs), -1, true)));
    const grads = [
      tf.reshape(tf.matMul(dScores, k3), qs.shape),
      tf.reshape(tf.matMul(dScores, q3, true, false), ks.shape),
      tf.reshape(tf.matMul(probs, dy3, true, false), vs.shape),
      // Sum over windows as a ones-vector matMul: a Sum over the leading axis is slow on wasm.
      tf.reshape(tf.matMul(tf.ones([1, batch]), tf.reshape(dScores, [batch, heads * n * n])), [heads, n, n]),
    ];
    return ms ? [...grads, tf.zerosLike(ms)] : grads; // the mask is a constant
  };
  const op = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as Tensor[];
    save(inputs);
    return { value: forward(inputs), gradFunc: (dy: Tensor, saved: Tensor[]) => backward(dy, saved) };
  });
  return mask ? op(q, k, v, bias, mask) : op(q, k, v, bias);
}
