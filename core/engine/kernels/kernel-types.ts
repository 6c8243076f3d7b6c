// Types shared by the replacement kernels. The wasm backend class is not exported by
// tfjs-backend-wasm's typings in a usable way, so the few members used here are declared.
import type { tf } from '../tf.ts';

export type TensorInfo = tf.TensorInfo;
export type KernelArgs = Parameters<tf.KernelFunc>[0];
export type KernelResult = TensorInfo | TensorInfo[];
export type KernelFunction = (args: KernelArgs) => KernelResult;

export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

/** What a replacement kernel can reach besides its provider: the kernel it replaced and others. */
export interface KernelContext {
  original: KernelFunction;
  /** The registered wasm kernel of another name (for composite cases, e.g. Prelu after a matmul). */
  kernel(name: string): KernelFunction;
}

export function wasmBackendOf(args: KernelArgs): WasmBackend {
  return args.backend as unknown as WasmBackend;
}

export function floatView(backend: WasmBackend, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}
