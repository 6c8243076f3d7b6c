// The WebAssembly SIMD tier: kernels compiled from native/wasm/kernels.c (committed as a .wasm, so
// no compiler is needed) and instantiated on TensorFlow.js's own wasm memory, so they work on the
// tensors in place, with no copies, wherever tfjs-backend-wasm runs. One thread for now.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KernelProvider } from './provider.ts';

export const WASM_KERNELS_PATH = fileURLToPath(new URL('../../../native/wasm/kernels.wasm', import.meta.url));

interface KernelExports {
  scratch_bytes(): number;
  gemm(...args: number[]): void;
  strided_copy(input: number, output: number, rank: number, offset: number, params: number): void;
  gather(x: number, indices: number, out: number, batch: number, outer: number, dim: number, slice: number, count: number): number;
  binary(op: number, a: number, b: number, out: number, rank: number, params: number): void;
}

/** The members of tfjs's wasm backend this tier needs (its Emscripten module). */
interface EmscriptenHost {
  wasm: { asm: { memory?: WebAssembly.Memory }; _malloc(bytes: number): number; HEAP32: Int32Array };
}

export type WasmLoad = { ok: true; provider: KernelProvider } | { ok: false; reason: string };

const MAX_RANK = 8;

/** Highest element index a strided walk reaches; null when it also reaches below 0. */
function highestIndex(shape: number[], strides: number[], base = 0): number | null {
  let low = base;
  let high = base;
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 0) return base - 1; // nothing is read
    const span = (shape[d] - 1) * strides[d];
    if (span < 0) low += span;
    else high += span;
  }
  return low < 0 ? null : high;
}

const loaded = new WeakMap<object, WasmLoad>();

/** Instantiates the kernels on a wasm backend's memory, once per backend (scratch is never freed). */
export function loadWasmKernels(backend: unknown, path = WASM_KERNELS_PATH): WasmLoad {
  const known = typeof backend === 'object' && backend !== null ? loaded.get(backend) : undefined;
  if (known) return known;
  const result = instantiate(backend, path);
  if (result.ok && typeof backend === 'object' && backend !== null) loaded.set(backend, result);
  return result;
}

function instantiate(backend: unknown, path: string): WasmLoad {
  const host = backend as EmscriptenHost;
  const memory = host?.wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return { ok: false, reason: 'the wasm backend does not expose its memory (tfjs-backend-wasm internals changed)' };
  if (!existsSync(path)) return { ok: false, reason: `${path} is missing (rebuild with native/wasm/build-wasm.sh)` };
  let kernels: KernelExports;
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory } });
    kernels = instance.exports as unknown as KernelExports;
  } catch (error) {
    return { ok: false, reason: `${path} failed to instantiate: ${(error as Error).message}` };
  }
  // Scratch for packed panels and the copy counters, allocated once from tfjs's own heap.
  const scratch = (host.wasm._malloc(kernels.scratch_bytes() + 16) + 15) & ~15;
  const paramsAddress = host.wasm._malloc(4 * MAX_RANK * 4);

  const address = (view: ArrayBufferView, name: string): number => {
    if (view.buffer !== memory.buffer) throw new Error(`wasm kernels: ${name} is not a view of the wasm backend's memory`);
    return view.byteOffset;
  };
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new RangeError(`wasm kernels: ${message}`);
  };

  const provider: KernelProvider = {
    gemm(a, b, c, bias, params, alpha) {
      const [batch, m, n, k, aBatch, aRow, aCol, bBatch, bRow, bCol, biasBatch, biasRow, biasCol, activation] = params;
      check((highestIndex([batch, m, k], [aBatch, aRow, aCol]) ?? Infinity) < a.length, 'a is smaller than its strides say');
      check((highestIndex([batch, k, n], [bBatch, bRow, bCol]) ?? Infinity) < b.length, 'b is smaller than its strides say');
      check(batch * m * n <= c.length, 'c is smaller than batch*m*n');
      if (bias) check((highestIndex([batch, m, n], [biasBatch, biasRow, biasCol]) ?? Infinity) < bias.length, 'bias is smaller than its strides say');
      kernels.gemm(address(a, 'a'), address(b, 'b'), address(c, 'c'), bias ? address(bias, 'bias') : 0,
        batch, m, n, k, aBatch, aRow, aCol, bBatch, bRow, bCol, biasBatch, biasRow, biasCol, activation, alpha, scratch);
    },
    stridedCopy(input, output, params) {
      const rank = params[0];
      const offset = params[1];
      check(rank >= 0 && rank <= MAX_RANK, `rank ${rank} is outside [0, ${MAX_RANK}]`);
      const shape = Array.from(params.subarray(2, 2 + rank));
      const strides = Array.from(params.subarray(2 + rank, 2 + 2 * rank));
      check((highestIndex(shape, strides, offset) ?? Infinity) < input.length, 'input smaller than its strides say');
      check(shape.reduce((x, y) => x * y, 1) <= output.length, 'output too small');
      if (shape.includes(0)) return;
      const words = paramsAddress >> 2;
      host.wasm.HEAP32.set(shape, words);
      host.wasm.HEAP32.set(strides, words + rank);
      host.wasm.HEAP32.fill(0, words + 2 * rank, words + 3 * rank);
      kernels.strided_copy(address(input, 'input'), address(output, 'output'), rank, offset, paramsAddress);
    },
    gather(x, indices, out, params) {
      const [batch, outer, dim, slice, count] = params;
      check(batch * outer * dim * slice <= x.length, 'x smaller than its shape');
      check(batch * count <= indices.length, 'fewer indices than batch*count');
      check(batch * outer * count * slice <= out.length, 'out too small');
      return kernels.gather(address(x, 'x'), address(indices, 'indices'), address(out, 'out'), batch, outer, dim, slice, count);
    },
    // Measured: stock XNNPACK beats this single-threaded loop on same-shape operands.
    binaryBroadcastOnly: true,
    binary(op, a, b, out, params) {
      const rank = params[0];
      check(rank >= 0 && rank <= MAX_RANK, `rank ${rank} is outside [0, ${MAX_RANK}]`);
      const shape = Array.from(params.subarray(1, 1 + rank));
      const aStrides = Array.from(params.subarray(1 + rank, 1 + 2 * rank));
      const bStrides = Array.from(params.subarray(1 + 2 * rank, 1 + 3 * rank));
      check((highestIndex(shape, aStrides) ?? Infinity) < a.length && (highestIndex(shape, bStrides) ?? Infinity) < b.length, 'an input is smaller than its strides say');
      check(shape.reduce((x, y) => x * y, 1) <= out.length, 'output too small');
      if (shape.includes(0)) return;
      const words = paramsAddress >> 2;
      host.wasm.HEAP32.set(shape, words);
      host.wasm.HEAP32.set(aStrides, words + rank);
      host.wasm.HEAP32.set(bStrides, words + 2 * rank);
      host.wasm.HEAP32.fill(0, words + 3 * rank, words + 4 * rank);
      kernels.binary(op, address(a, 'a'), address(b, 'b'), address(out, 'out'), rank, paramsAddress);
    },
    info: () => ({ isa: 'wasm-simd128', threads: 1 }),
  };
  return { ok: true, provider };
}
