// Binary arithmetic with general broadcasting (any rank that merges to <= 8), Erf and Softmax.
// Stock wasm elementwise ops are wrong at rank 7 and slow on the model's `[..., 1]` broadcasts.
import { tf } from '../tf.ts';
import { BINARY_OPS, MAX_RANK, type BinaryKernelName, type KernelProvider } from './provider.ts';
import { broadcastStrides, fitsInt32, simplifyWalk, sizeOf } from './strides.ts';
import { floatView, wasmBackendOf, type KernelContext, type KernelFunction, type TensorInfo } from './kernel-types.ts';

export function binaryKernel(name: BinaryKernelName, provider: KernelProvider, context: KernelContext): KernelFunction {
  const op = BINARY_OPS[name];
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return context.original(args);
    const sameShape = a.shape.length === b.shape.length && a.shape.every((extent, d) => extent === b.shape[d]);
    if (provider.binaryBroadcastOnly && sameShape && a.shape.length <= 6) return context.original(args);
    let outShape: number[];
    try {
      outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    } catch {
      return context.original(args);
    }
    const walk = simplifyWalk(outShape, [broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape)]);
    const rank = walk.shape.length;
    const params = [rank, ...walk.shape, ...walk.strides[0], ...walk.strides[1]];
    if (rank > MAX_RANK || !fitsInt32(params) || !fitsInt32([sizeOf(outShape)])) return context.original(args);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(outShape, 'float32');
    if (sizeOf(outShape) === 0) return out;
    provider.binary!(op, floatView(backend, a), floatView(backend, b), floatView(backend, out), Int32Array.from(params));
    return out;
  };
}

export function erfKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return context.original(args);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(x.shape, 'float32');
    if (sizeOf(x.shape) > 0) provider.erf!(floatView(backend, x), floatView(backend, out));
    return out;
  };
}

export function softmaxKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { logits } = args.inputs as { logits: TensorInfo };
    const { dim } = args.attrs as { dim: number };
    const rank = logits.shape.length;
    if (logits.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return context.original(args);
    const cols = logits.shape[rank - 1];
    const rows = sizeOf(logits.shape) / Math.max(cols, 1);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(logits.shape, 'float32');
    if (rows * cols > 0) provider.softmax!(floatView(backend, logits), floatView(backend, out), rows, cols);
    return out;
  };
}
