// The contract of a fast-kernel tier (the native addon, the WebAssembly SIMD module). Arrays are
// views of tfjs's wasm heap; `params` packs sizes and strides as int32. A tier may leave out the
// optional kernels; their tfjs kernels then stay stock.

export interface KernelProvider {
  /** params: batch, m, n, k, aBatch, aRow, aCol, bBatch, bRow, bCol, biasBatch, biasRow, biasCol, activation */
  gemm(a: Float32Array, b: Float32Array, c: Float32Array, bias: Float32Array | null, params: Int32Array, alpha: number): void;
  /** params: rank, offset, shape[rank], inputStrides[rank]; the output is contiguous. 32-bit elements. */
  stridedCopy(input: Float32Array | Int32Array, output: Float32Array | Int32Array, params: Int32Array): void;
  /** params: rank, shape[rank], aStrides[rank], bStrides[rank] */
  /** True when the tier's binary ops only pay off on broadcasts: same-shape ops (rank <= 6, where
   * stock is correct) then stay on the stock XNNPACK kernels. */
  binaryBroadcastOnly?: boolean;
  binary?(op: BinaryOpCode, a: Float32Array, b: Float32Array, out: Float32Array, params: Int32Array): void;
  /** params: batch, outer, dim, slice, count. Returns -1, or the position of the first index outside [0, dim). */
  gather?(x: Float32Array | Int32Array, indices: Int32Array, out: Float32Array | Int32Array, params: Int32Array): number;
  erf?(input: Float32Array, output: Float32Array): void;
  softmax?(input: Float32Array, output: Float32Array, rows: number, cols: number): void;
  /** params: batch, heads, n, dim, windows. See fusedWindowAttention (attention.ts). */
  windowAttention?(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    bias: Float32Array,
    mask: Float32Array | null,
    out: Float32Array,
    params: Int32Array,
  ): void;
  gelu?(input: Float32Array, output: Float32Array): void;
  geluGrad?(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  layerNorm?(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormGrad?(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    rows: number,
    cols: number,
  ): void;
  /** settings: lr, beta1, beta2, eps, weightDecay, correction1, correction2Sqrt */
  adamw?(
    param: Float32Array,
    grad: Float32Array,
    expAvg: Float32Array | null,
    expAvgSq: Float32Array | null,
    outParam: Float32Array,
    outExpAvg: Float32Array,
    outExpAvgSq: Float32Array,
    settings: Float64Array,
  ): void;
  info(): { isa: string; threads: number };
  /** Forces a matrix micro-kernel family ("avx512", "avx2", "neon", "portable") or "auto"; false if the CPU lacks it. */
  setIsa?(name: string): boolean;
}

export const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;
export type BinaryKernelName = keyof typeof BINARY_OPS;
export type BinaryOpCode = (typeof BINARY_OPS)[BinaryKernelName];

export const ACTIVATIONS = { linear: 0, relu: 1, relu6: 2, leakyrelu: 3, sigmoid: 4, elu: 5 } as const;

/** Largest rank the providers accept after adjacent dimensions are merged. */
export const MAX_RANK = 8;
