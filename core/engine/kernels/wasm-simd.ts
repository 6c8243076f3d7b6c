// The WebAssembly SIMD tier: kernels compiled from native/wasm/kernels.c (committed as .wasm, so
// no compiler is needed). Small and memory-bound kernels run on one thread, instantiated on
// TensorFlow.js's own wasm memory so they work on the tensors in place with no copies. Matrix
// products and window attention big enough to pay for copying their operands run on several
// threads over a shared memory of their own (wasm-threads.ts); VSWIN_WASM_THREADS forces the count.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { KernelProvider } from './provider.ts';
import { browserSpawner, WasmThreadPool, type WorkerSpawner } from './wasm-threads.ts';

export const WASM_KERNELS_PATH = fileURLToPath(new URL('../../../native/wasm/kernels.wasm', import.meta.url));
export const WASM_THREADED_KERNELS_PATH = fileURLToPath(new URL('../../../native/wasm/kernels-threads.wasm', import.meta.url));
/** Forces the wasm tier's thread count (default: the machine's available parallelism). */
export const WASM_THREADS_ENV = 'VSWIN_WASM_THREADS';
const MAX_THREADS = 64;

interface KernelExports {
  scratch_bytes(): number;
  attention_scratch_bytes(n: number): number;
  job_words(): number;
  gemm(...args: number[]): void;
  strided_copy(input: number, output: number, rank: number, offset: number, params: number): void;
  gather(
    x: number,
    indices: number,
    out: number,
    batch: number,
    outer: number,
    dim: number,
    slice: number,
    count: number,
  ): number;
  binary(op: number, a: number, b: number, out: number, rank: number, params: number): void;
  erf(input: number, output: number, size: number): void;
  gelu(x: number, y: number, size: number): void;
  gelu_grad(dy: number, x: number, dx: number, size: number): void;
  layer_norm(
    x: number,
    gamma: number,
    beta: number,
    y: number,
    mean: number,
    rstd: number,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layer_norm_grad(
    dy: number,
    x: number,
    gamma: number,
    mean: number,
    rstd: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    rows: number,
    cols: number,
  ): void;
  adamw(...args: number[]): void;
  run(job: number, scratch: number): void;
}

/** The members of tfjs's wasm backend this tier needs (its Emscripten module). */
interface EmscriptenHost {
  wasm: {
    asm: { memory?: WebAssembly.Memory };
    _malloc(bytes: number): number;
    _free(address: number): void;
    HEAP32: Int32Array;
  };
}

// Job layout shared with kernels.c (run()): op, then the arguments after op/next/tasks.
const OP_GEMM = 1;
const OP_ATTENTION = 2;
const GEMM_ALPHA = 18; // index of alpha among the GEMM arguments
const MR = 2; // the register tile's rows and columns (kernels.c)
const NR = 16;

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

/** The thread count VSWIN_WASM_THREADS asks for, else the machine's available parallelism. */
export function wasmThreadRequest(
  value: string | undefined = typeof process !== 'undefined' ? process.env[WASM_THREADS_ENV] : undefined,
): number {
  if (value === undefined || value === '') {
    const cores =
      typeof availableParallelism === 'function' ? availableParallelism() : (globalThis.navigator?.hardwareConcurrency ?? 1);
    return Math.min(MAX_THREADS, Math.max(1, cores));
  }
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > MAX_THREADS) {
    throw new Error(`${WASM_THREADS_ENV}: expected a whole number of threads from 1 to ${MAX_THREADS}, got "${value}"`);
  }
  return count;
}

// ---------------------------------------------------------------- threads (one pool per process)

interface Threading {
  /** Threads asked for. */
  requested: number;
  pool: WasmThreadPool | null;
  /** Why the tier runs on one thread although more were asked for (null when it does not). */
  problem: string | null;
  /** Every matmul and attention goes to the threads whatever its size (tests of the threaded path). */
  always?: boolean;
}

let threading: Threading | null = null;
let threadedModule: WebAssembly.Module | null = null;

/** node:worker_threads workers that never keep the process alive. */
function nodeSpawner(): WorkerSpawner {
  const { Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  return (source, data, onError) => {
    // execArgv []: the worker is plain JavaScript and needs none of the parent's loaders (tsx).
    const worker = new Worker(source, { eval: true, workerData: data, execArgv: [] });
    worker.unref();
    worker.on('error', (error) => onError(error.message));
    return { terminate: () => worker.terminate() };
  };
}

function startThreads(requested: number, path = WASM_THREADED_KERNELS_PATH): Threading {
  if (requested === 1) return { requested, pool: null, problem: null };
  try {
    if (!threadedModule) {
      if (!existsSync(path)) throw new Error(`${path} is missing (rebuild with native/wasm/build-wasm.sh)`);
      threadedModule = new WebAssembly.Module(readFileSync(path));
    }
    // Node (and Electron's main and utility processes) use worker_threads; a page uses Web Workers.
    const spawner = typeof process !== 'undefined' && process.versions?.node ? nodeSpawner() : browserSpawner();
    if (!spawner) throw new Error('this environment has no worker threads');
    return { requested, pool: new WasmThreadPool(threadedModule, requested, spawner), problem: null };
  } catch (error) {
    return { requested, pool: null, problem: `threads unavailable (${(error as Error).message})` };
  }
}

function currentThreading(): Threading {
  if (!threading) threading = startThreads(wasmThreadRequest());
  return threading;
}

/** Threads the tier runs on and, when it runs on one although more were asked for, why. */
export function wasmThreadingStatus(): { threads: number; requested: number; problem: string | null } {
  const { requested, pool } = currentThreading();
  const problem = currentThreading().problem ?? pool?.failure ?? null;
  return { threads: pool && !problem ? pool.threads : 1, requested, problem };
}

/**
 * Restarts the worker threads with `count` threads (tests, benchmarks) and waits until they are
 * ready. `always`: send every matmul and attention to the threads, however small.
 */
export async function useWasmThreads(count: number, options: { always?: boolean } = {}): Promise<void> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_THREADS)
    throw new RangeError(`useWasmThreads: expected 1 to ${MAX_THREADS} threads, got ${count}`);
  await shutdownWasmThreads();
  threading = { ...startThreads(count), always: options.always };
  if (threading.pool && !threading.pool.waitUntilReady(10_000)) threading.problem = 'worker threads did not start within 10 s';
}

/** Bytes of the threads' shared memory the last threaded call used (0 without threads). */
export function wasmThreadsBytesInUse(): number {
  return threading?.pool?.bytesInUse ?? 0;
}

/** Ends the worker threads (they restart on the next use of the tier). */
export async function shutdownWasmThreads(): Promise<void> {
  const pool = threading?.pool;
  threading = null;
  await pool?.close();
}

/** The pool when it is started and worth using for `flops` of work needing `floats` copied in and out. */
function poolFor(flops: number, floats: number): WasmThreadPool | null {
  const { pool, problem, always } = currentThreading();
  if (!pool || problem || !pool.ready) return null;
  if (always) return pool;
  // Measured on one 2-core Xeon: ~35 GFLOP/s per thread on these kernels, ~0.5 ns per float
  // copied in or out (TypedArray.set), ~50 us to wake the workers. Threads only where they win by 15 %.
  const single = flops / 35e9;
  const threaded = flops / (35e9 * pool.threads) + floats * 0.6e-9 + 50e-6;
  return threaded < 0.85 * single ? pool : null;
}

/**
 * How a threaded GEMM is cut into tasks: whole batch entries when there are enough, else bands
 * along the longer side of C. A band repacks all of the other operand, which costs about as much
 * as 15 rows (or columns) of compute, so bands stay >= 256 wide unless that leaves a thread idle.
 */
export function gemmBands(batch: number, m: number, n: number, threads: number): { rowsPerTask: number; colsPerTask: number } {
  if (batch >= 2 * threads) return { rowsPerTask: m, colsPerTask: n };
  const side = Math.max(m, n);
  const bands = Math.max(1, Math.round(Math.min(4 * threads, Math.max(threads, Math.floor(side / 256))) / batch));
  if (m >= n) return { rowsPerTask: Math.ceil(Math.ceil(m / bands) / MR) * MR, colsPerTask: n };
  return { rowsPerTask: m, colsPerTask: Math.ceil(Math.ceil(n / bands) / NR) * NR };
}

// ---------------------------------------------------------------- the provider

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
  if (!(memory instanceof WebAssembly.Memory))
    return { ok: false, reason: 'the wasm backend does not expose its memory (tfjs-backend-wasm internals changed)' };
  if (!existsSync(path)) return { ok: false, reason: `${path} is missing (rebuild with native/wasm/build-wasm.sh)` };
  try {
    currentThreading();
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  let kernels: KernelExports;
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory } });
    kernels = instance.exports as unknown as KernelExports;
  } catch (error) {
    return { ok: false, reason: `${path} failed to instantiate: ${(error as Error).message}` };
  }
  // Scratch for packed panels (and attention scores, grown on demand), the walk counters and one
  // job block, allocated from tfjs's own heap.
  let scratchBytes = kernels.scratch_bytes();
  let scratchBlock = host.wasm._malloc(scratchBytes + 16);
  const paramsAddress = host.wasm._malloc(4 * MAX_RANK * 4);
  const jobWords = kernels.job_words();
  const jobAddress = host.wasm._malloc(4 * jobWords);
  if (scratchBlock === 0 || paramsAddress === 0 || jobAddress === 0)
    return { ok: false, reason: "could not allocate the kernels' scratch in the wasm heap" };
  /** Scratch of at least `bytes`; call only after taking every operand's address (growing the heap detaches views). */
  const scratchOf = (bytes: number): number => {
    if (bytes > scratchBytes) {
      host.wasm._free(scratchBlock);
      scratchBlock = host.wasm._malloc(bytes + 16);
      if (scratchBlock === 0) throw new RangeError(`wasm kernels: cannot allocate ${bytes} bytes of scratch in the wasm heap`);
      scratchBytes = bytes;
    }
    return (scratchBlock + 15) & ~15;
  };
  const runHere = (op: number, tasks: number, args: number[], scratch: number) => {
    const job = new Int32Array(memory.buffer, jobAddress, jobWords);
    job.fill(0);
    job.set([op, 0, tasks, ...args]);
    kernels.run(jobAddress, scratch);
  };

  const address = (view: ArrayBufferView, name: string): number => {
    if (view.buffer !== memory.buffer) throw new Error(`wasm kernels: ${name} is not a view of the wasm backend's memory`);
    return view.byteOffset;
  };
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new RangeError(`wasm kernels: ${message}`);
  };
  const same = (size: number, views: [ArrayBufferView & { length: number }, string][]) => {
    for (const [view, name] of views)
      check(view.length >= size, `${name} has ${view.length} elements, expected at least ${size}`);
  };

  const provider: KernelProvider = {
    gemm(a, b, c, bias, params, alpha) {
      const [batch, m, n, k, aBatch, aRow, aCol, bBatch, bRow, bCol, biasBatch, biasRow, biasCol, activation] = params;
      const aEnd = (highestIndex([batch, m, k], [aBatch, aRow, aCol]) ?? Infinity) + 1;
      const bEnd = (highestIndex([batch, k, n], [bBatch, bRow, bCol]) ?? Infinity) + 1;
      const biasEnd = bias ? (highestIndex([batch, m, n], [biasBatch, biasRow, biasCol]) ?? Infinity) + 1 : 0;
      // Same wording as the native tier's, plus the sizes.
      const reach = (length: number, end: number) =>
        `(${length} elements; ${Number.isFinite(end) ? `they reach element ${end - 1}` : 'they reach below element 0'})`;
      check(aEnd <= a.length, `a is smaller than its strides say ${reach(a.length, aEnd)}`);
      check(bEnd <= b.length, `b is smaller than its strides say ${reach(b.length, bEnd)}`);
      check(batch * m * n <= c.length, `c is smaller than batch*m*n (${c.length} elements, expected ${batch * m * n})`);
      if (bias) check(biasEnd <= bias.length, `bias is smaller than its strides say ${reach(bias.length, biasEnd)}`);
      const pool = poolFor(2 * batch * m * n * k, aEnd + bEnd + biasEnd + batch * m * n);
      const regions = pool?.reserve(kernels.scratch_bytes(), [aEnd, bEnd, batch * m * n, biasEnd]);
      if (pool && regions) {
        const [sharedA, sharedB, sharedC, sharedBias] = regions;
        sharedA.floats.set(a.subarray(0, aEnd));
        sharedB.floats.set(b.subarray(0, bEnd));
        if (bias) sharedBias.floats.set(bias.subarray(0, biasEnd));
        const { rowsPerTask, colsPerTask } = gemmBands(batch, m, n, pool.threads);
        const rowBands = Math.ceil(m / rowsPerTask);
        const colBands = Math.ceil(n / colsPerTask);
        pool.run(
          OP_GEMM,
          batch * rowBands * colBands,
          [
            sharedA.address,
            sharedB.address,
            sharedC.address,
            bias ? sharedBias.address : 0,
            batch,
            m,
            n,
            k,
            aBatch,
            aRow,
            aCol,
            bBatch,
            bRow,
            bCol,
            biasBatch,
            biasRow,
            biasCol,
            activation,
            0,
            rowsPerTask,
            colsPerTask,
            rowBands,
            colBands,
          ],
          { index: GEMM_ALPHA, value: alpha },
        );
        c.set(sharedC.floats.subarray(0, batch * m * n));
        return;
      }
      const addresses = [address(a, 'a'), address(b, 'b'), address(c, 'c'), bias ? address(bias, 'bias') : 0];
      kernels.gemm(
        ...addresses,
        batch,
        m,
        n,
        k,
        aBatch,
        aRow,
        aCol,
        bBatch,
        bRow,
        bCol,
        biasBatch,
        biasRow,
        biasCol,
        activation,
        alpha,
        scratchOf(0),
      );
    },
    windowAttention(q, k, v, bias, mask, out, params) {
      const [batch, heads, n, dim, windows] = params;
      const size = batch * heads * n * dim;
      check(
        batch >= 0 && heads >= 0 && n >= 0 && dim >= 0 && windows >= 1,
        `batch ${batch}, heads ${heads}, n ${n}, dim ${dim} must be >= 0 and windows ${windows} >= 1`,
      );
      check(batch % windows === 0, `batch ${batch} is not a multiple of windows ${windows}`);
      same(size, [
        [q, 'q'],
        [k, 'k'],
        [v, 'v'],
        [out, 'out'],
      ]);
      same(heads * n * n, [[bias, 'bias']]);
      if (mask) same(windows * n * n, [[mask, 'mask']]);
      if (batch * heads * n === 0) return;
      const maskFloats = mask ? windows * n * n : 0;
      const pool = poolFor(4 * batch * heads * n * n * dim, 4 * size + heads * n * n + maskFloats);
      const regions = pool?.reserve(kernels.attention_scratch_bytes(n), [size, size, size, size, heads * n * n, maskFloats]);
      if (pool && regions) {
        const [sq, sk, sv, so, sb, sm] = regions;
        sq.floats.set(q.subarray(0, size));
        sk.floats.set(k.subarray(0, size));
        sv.floats.set(v.subarray(0, size));
        sb.floats.set(bias.subarray(0, heads * n * n));
        if (mask) sm.floats.set(mask.subarray(0, maskFloats));
        pool.run(OP_ATTENTION, batch * heads, [
          sq.address,
          sk.address,
          sv.address,
          sb.address,
          mask ? sm.address : 0,
          so.address,
          heads,
          n,
          dim,
          windows,
        ]);
        out.set(so.floats);
        return;
      }
      const args = [
        address(q, 'q'),
        address(k, 'k'),
        address(v, 'v'),
        address(bias, 'bias'),
        mask ? address(mask, 'mask') : 0,
        address(out, 'out'),
        heads,
        n,
        dim,
        windows,
      ];
      runHere(OP_ATTENTION, batch * heads, args, scratchOf(kernels.attention_scratch_bytes(n)));
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
      check(
        (highestIndex(shape, aStrides) ?? Infinity) < a.length && (highestIndex(shape, bStrides) ?? Infinity) < b.length,
        'an input is smaller than its strides say',
      );
      check(shape.reduce((x, y) => x * y, 1) <= out.length, 'output too small');
      if (shape.includes(0)) return;
      const words = paramsAddress >> 2;
      host.wasm.HEAP32.set(shape, words);
      host.wasm.HEAP32.set(aStrides, words + rank);
      host.wasm.HEAP32.set(bStrides, words + 2 * rank);
      host.wasm.HEAP32.fill(0, words + 3 * rank, words + 4 * rank);
      kernels.binary(op, address(a, 'a'), address(b, 'b'), address(out, 'out'), rank, paramsAddress);
    },
    erf(input, output) {
      same(input.length, [[output, 'output']]);
      kernels.erf(address(input, 'input'), address(output, 'output'), input.length);
    },
    // No softmax: stock XNNPACK's is faster (see kernels.c); the fused attention has its own.
    gelu(input, output) {
      same(input.length, [[output, 'output']]);
      kernels.gelu(address(input, 'input'), address(output, 'output'), input.length);
    },
    geluGrad(dy, x, dx) {
      same(x.length, [
        [dy, 'dy'],
        [dx, 'dx'],
      ]);
      kernels.gelu_grad(address(dy, 'dy'), address(x, 'x'), address(dx, 'dx'), x.length);
    },
    layerNorm(x, gamma, beta, y, mean, rstd, rows, cols, eps) {
      check(rows >= 0 && cols >= 0, `rows ${rows} and cols ${cols} must be >= 0`);
      same(rows * cols, [
        [x, 'x'],
        [y, 'y'],
      ]);
      same(cols, [
        [gamma, 'gamma'],
        [beta, 'beta'],
      ]);
      same(rows, [
        [mean, 'mean'],
        [rstd, 'rstd'],
      ]);
      kernels.layer_norm(
        address(x, 'x'),
        address(gamma, 'gamma'),
        address(beta, 'beta'),
        address(y, 'y'),
        address(mean, 'mean'),
        address(rstd, 'rstd'),
        rows,
        cols,
        eps,
      );
    },
    layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols) {
      check(rows >= 0 && cols >= 0, `rows ${rows} and cols ${cols} must be >= 0`);
      same(rows * cols, [
        [dy, 'dy'],
        [x, 'x'],
        [dx, 'dx'],
      ]);
      same(cols, [
        [gamma, 'gamma'],
        [dgamma, 'dgamma'],
        [dbeta, 'dbeta'],
      ]);
      same(rows, [
        [mean, 'mean'],
        [rstd, 'rstd'],
      ]);
      kernels.layer_norm_grad(
        address(dy, 'dy'),
        address(x, 'x'),
        address(gamma, 'gamma'),
        address(mean, 'mean'),
        address(rstd, 'rstd'),
        address(dx, 'dx'),
        address(dgamma, 'dgamma'),
        address(dbeta, 'dbeta'),
        rows,
        cols,
      );
    },
    adamw(param, grad, expAvg, expAvgSq, outParam, outExpAvg, outExpAvgSq, settings) {
      check((expAvg === null) === (expAvgSq === null), 'expAvg and expAvgSq must both be given or both be null');
      check(
        settings.length >= 7,
        `settings has ${settings.length} values, expected 7 (lr, beta1, beta2, eps, weightDecay, correction1, correction2Sqrt)`,
      );
      const views: [Float32Array, string][] = [
        [grad, 'grad'],
        [outParam, 'outParam'],
        [outExpAvg, 'outExpAvg'],
        [outExpAvgSq, 'outExpAvgSq'],
      ];
      if (expAvg && expAvgSq) views.push([expAvg, 'expAvg'], [expAvgSq, 'expAvgSq']);
      same(param.length, views);
      kernels.adamw(
        address(param, 'param'),
        address(grad, 'grad'),
        expAvg ? address(expAvg, 'expAvg') : 0,
        expAvgSq ? address(expAvgSq, 'expAvgSq') : 0,
        address(outParam, 'outParam'),
        address(outExpAvg, 'outExpAvg'),
        address(outExpAvgSq, 'outExpAvgSq'),
        param.length,
        ...Array.from(settings.subarray(0, 7)),
      );
    },
    info: () => ({ isa: 'wasm-simd128', threads: wasmThreadingStatus().threads }),
  };
  return { ok: true, provider };
}
