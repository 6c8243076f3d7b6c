// BatchMatMul and _FusedMatMul on a provider's GEMM. Transposes become strides and broadcast
// batches become a zero batch stride, so no input is ever copied. The fused kernel applies bias
// and activation in the GEMM's epilogue, correctly for transposed and batched inputs (stock wasm
// gets the bias wrong there) and K = 0 gives zeros (stock wasm returns uninitialised memory).
import { tf } from '../tf.ts';
import { ACTIVATIONS, type KernelProvider } from './provider.ts';
import { fitsInt32, sizeOf } from './strides.ts';
import { floatView, wasmBackendOf, type KernelContext, type KernelFunction, type TensorInfo } from './kernel-types.ts';

interface GemmPlan {
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  /** batch, m, n, k, aBatch, aRow, aCol, bBatch, bRow, bCol (bias and activation are appended). */
  geometry: number[];
}

function planGemm(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): GemmPlan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  if (rankA < 2 || rankB < 2) return null;
  const m = transposeA ? a.shape[rankA - 1] : a.shape[rankA - 2];
  const k = transposeA ? a.shape[rankA - 2] : a.shape[rankA - 1];
  const kB = transposeB ? b.shape[rankB - 1] : b.shape[rankB - 2];
  const n = transposeB ? b.shape[rankB - 2] : b.shape[rankB - 1];
  if (k !== kB) return null; // the original kernel raises tfjs's own error message
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  let outBatch: number[];
  try {
    outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  } catch {
    return null;
  }
  const batch = sizeOf(outBatch);
  const sizeA = sizeOf(batchA);
  const sizeB = sizeOf(batchB);
  // Batches that broadcast along some dimensions but not others ([2,1] x [1,3]) have no single
  // batch stride; they are left to the original kernel.
  if ((sizeA !== 1 && sizeA !== batch) || (sizeB !== 1 && sizeB !== batch)) return null;
  const geometry = [
    batch,
    m,
    n,
    k,
    sizeA === 1 ? 0 : m * k,
    transposeA ? 1 : k,
    transposeA ? m : 1,
    sizeB === 1 ? 0 : k * n,
    transposeB ? 1 : n,
    transposeB ? k : 1,
  ];
  if (!fitsInt32(geometry) || !fitsInt32([batch * m * k, batch * k * n, batch * m * n])) return null;
  return { outShape: [...outBatch, m, n], batch, m, n, geometry };
}

/** Bias strides (batch, row, column) against the [batch, m, n] output, or null if none fits. */
export function biasStrides(biasShape: readonly number[], batch: number, m: number, n: number): [number, number, number] | null {
  const rank = biasShape.length;
  const columns = rank >= 1 ? biasShape[rank - 1] : 1;
  const rows = rank >= 2 ? biasShape[rank - 2] : 1;
  const batches = sizeOf(biasShape.slice(0, Math.max(0, rank - 2)));
  if ((columns !== n && columns !== 1) || (rows !== m && rows !== 1)) return null;
  if (batches !== 1 && batches !== batch) return null;
  return [batches === 1 ? 0 : rows * columns, rows === 1 ? 0 : columns, columns === 1 ? 0 : 1];
}

function runGemm(
  provider: KernelProvider,
  args: Parameters<KernelFunction>[0],
  plan: GemmPlan,
  a: TensorInfo,
  b: TensorInfo,
  bias: TensorInfo | null,
  strides: [number, number, number],
  activation: number,
  alpha: number,
): TensorInfo {
  const backend = wasmBackendOf(args);
  // Allocate first: allocation may grow the wasm heap and detach views taken earlier.
  const out = backend.makeOutput(plan.outShape, 'float32');
  if (plan.batch * plan.m * plan.n === 0) return out;
  const params = Int32Array.from([...plan.geometry, ...strides, activation]);
  provider.gemm(
    floatView(backend, a),
    floatView(backend, b),
    floatView(backend, out),
    bias ? floatView(backend, bias) : null,
    params,
    alpha,
  );
  return out;
}

export function batchMatMulKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const plan = planGemm(a, b, transposeA, transposeB);
    if (!plan) return context.original(args);
    return runGemm(provider, args, plan, a, b, null, [0, 0, 0], ACTIVATIONS.linear, 0);
  };
}

export function fusedMatMulKernel(provider: KernelProvider, context: KernelContext): KernelFunction {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation: string;
      leakyreluAlpha?: number;
    };
    const plan = planGemm(a, b, transposeA, transposeB);
    if (!plan || (bias && bias.dtype !== 'float32')) return context.original(args);
    let strides: [number, number, number] = [0, 0, 0];
    if (bias) {
      const found = biasStrides(bias.shape, plan.batch, plan.m, plan.n);
      if (!found) {
        // The stock kernel would add this bias wrongly, so falling back is not an option.
        throw new Error(
          `_FusedMatMul: bias of shape [${bias.shape}] cannot be broadcast onto the [${plan.batch}, ${plan.m}, ${plan.n}] product; expected a bias of shape [n], [m, n] or one batch entry per product. Use matMul followed by add.`,
        );
      }
      strides = found;
    }
    const isPrelu = activation === 'prelu';
    const code = isPrelu ? ACTIVATIONS.linear : ACTIVATIONS[activation as keyof typeof ACTIVATIONS];
    if (code === undefined)
      throw new Error(
        `_FusedMatMul: unsupported activation "${activation}"; expected one of ${Object.keys(ACTIVATIONS).join(', ')}, prelu`,
      );
    const out = runGemm(provider, args, plan, a, b, bias ?? null, strides, code, leakyreluAlpha ?? 0.2);
    if (!isPrelu) return out;
    if (!preluActivationWeights) throw new Error('_FusedMatMul: activation "prelu" needs preluActivationWeights');
    const result = context.kernel('Prelu')({
      inputs: { x: out, alpha: preluActivationWeights },
      backend: args.backend,
      attrs: {},
    }) as TensorInfo;
    wasmBackendOf(args).disposeData(out.dataId);
    return result;
  };
}
