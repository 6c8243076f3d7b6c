// Worker threads for the WebAssembly SIMD tier. TensorFlow.js's wasm memory is not shared, so the
// threaded kernels get their own shared WebAssembly.Memory: the calling thread copies the operands
// in, every thread (the caller plus N - 1 workers, each with its own instance of
// kernels-threads.wasm on that memory) takes tasks of one job from an atomic counter, and the
// caller copies the result out. The module keeps no shadow stack (check-wasm.mjs verifies it), so
// all instances can share one memory. Synchronisation is Atomics.wait/notify on a control block at
// address 0; nothing goes through the event loop, so a kernel call stays synchronous.
//
// Layout of the shared memory: control block (64 bytes), the job (int32 words), then per call:
// one scratch block per thread, then the operands (bump-allocated, reset every call).

/** Control block words (int32 indices at address 0). */
const GENERATION = 0; // bumped by the caller for every job (workers wait on it)
const DONE = 1; // workers that finished the current job
const STOP = 2; // 1: workers leave their loop
const JOB = 3; // address of the job block
const SCRATCH = 4; // address of thread 0's scratch
const SCRATCH_STRIDE = 5; // bytes between two threads' scratch blocks
const READY = 6; // workers that have started and wait for jobs
const FAILED = 7; // a worker's run() threw (a bug: JS checks every operand before a job)
const CONTROL_BYTES = 64;
const PAGE = 65536;
/** Largest shared memory the pool asks for (2 GiB keeps every address a positive int32). */
const MAX_PAGES = 32768;

/**
 * The worker's whole program, as source text so it runs unchanged from `node:worker_threads`
 * (eval) and from a browser Worker (a Blob URL); it receives { module, memory, index, workers }.
 */
export const WORKER_SOURCE = `'use strict';
function serve(data) {
  const { module, memory, index, workers } = data;
  const run = new WebAssembly.Instance(module, { env: { memory } }).exports.run;
  const control = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
  let seen = Atomics.load(control, ${GENERATION}); // read before READY: a job posted after READY is never missed
  Atomics.add(control, ${READY}, 1);
  for (;;) {
    Atomics.wait(control, ${GENERATION}, seen);
    seen = Atomics.load(control, ${GENERATION});
    if (Atomics.load(control, ${STOP}) === 1) return;
    try {
      run(Atomics.load(control, ${JOB}), Atomics.load(control, ${SCRATCH}) + index * Atomics.load(control, ${SCRATCH_STRIDE}));
    } catch (error) {
      Atomics.store(control, ${FAILED}, 1);
    }
    if (Atomics.add(control, ${DONE}, 1) + 1 === workers) Atomics.notify(control, ${DONE});
  }
}
if (typeof require === 'function') serve(require('node:worker_threads').workerData);
else self.onmessage = (event) => { self.onmessage = null; serve(event.data); };
`;

/** What the pool needs of a started worker. */
export interface WorkerHandle {
  /** Ends the thread; resolves when it has gone. */
  terminate(): Promise<unknown>;
}

/**
 * Starts one worker running WORKER_SOURCE with `data`; throws if threads cannot start here.
 * `onError` is called if the worker fails later (the pool then stops using its threads).
 */
export type WorkerSpawner = (
  source: string,
  data: { module: WebAssembly.Module; memory: WebAssembly.Memory; index: number; workers: number },
  onError: (message: string) => void,
) => WorkerHandle;

/** Browser and Electron-renderer spawner (needs cross-origin isolation for SharedArrayBuffer). */
export function browserSpawner(): WorkerSpawner | null {
  const scope = globalThis as unknown as {
    Worker?: new (url: string) => { postMessage(data: unknown): void; terminate(): void };
    Blob?: typeof Blob;
    URL?: typeof URL;
  };
  if (!scope.Worker || !scope.Blob || !scope.URL?.createObjectURL) return null;
  const url = scope.URL.createObjectURL(new scope.Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  return (_source, data, onError) => {
    const worker = new scope.Worker!(url) as unknown as {
      postMessage(data: unknown): void;
      terminate(): void;
      onerror: ((event: { message?: string }) => void) | null;
    };
    worker.onerror = (event) => onError(event.message ?? 'worker error');
    worker.postMessage(data);
    return { terminate: async () => worker.terminate() };
  };
}

interface PoolExports {
  run(job: number, scratch: number): void;
  job_words(): number;
}

/** A region of the shared memory handed out for one call. */
export interface SharedRegion {
  address: number;
  floats: Float32Array;
}

export class WasmThreadPool {
  readonly threads: number;
  private readonly memory: WebAssembly.Memory;
  private readonly exports: PoolExports;
  private readonly control: Int32Array;
  private readonly workers: WorkerHandle[] = [];
  private readonly jobAddress = CONTROL_BYTES;
  private readonly jobWords: number;
  private readonly canBlock: boolean;
  private top = 0;
  private closed = false;
  /** Why a worker stopped, if one did: the pool is then no longer used. */
  failure: string | null = null;

  /** Throws (with the reason) when shared memory or workers are unavailable. */
  constructor(module: WebAssembly.Module, threads: number, spawn: WorkerSpawner) {
    if (!Number.isInteger(threads) || threads < 2)
      throw new RangeError(`wasm thread pool: threads must be an integer >= 2, got ${threads}`);
    if (typeof SharedArrayBuffer === 'undefined')
      throw new Error('SharedArrayBuffer is unavailable (a browser page needs cross-origin isolation)');
    // The module asks for at least 2 pages (the linker reserves a stack the code never uses).
    this.memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true });
    this.exports = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as unknown as PoolExports;
    this.jobWords = this.exports.job_words();
    this.control = new Int32Array(this.memory.buffer, 0, CONTROL_BYTES / 4);
    this.canBlock = blockingAllowed(this.control);
    this.threads = threads;
    try {
      const onError = (message: string) => {
        this.failure ??= `a worker thread failed: ${message}`;
      };
      for (let index = 1; index < threads; index++)
        this.workers.push(spawn(WORKER_SOURCE, { module, memory: this.memory, index, workers: threads - 1 }, onError));
    } catch (error) {
      void this.close();
      throw error;
    }
  }

  /** True once every worker waits for jobs (before that, callers run single-threaded). */
  get ready(): boolean {
    return !this.closed && this.failure === null && Atomics.load(this.control, READY) === this.threads - 1;
  }

  /** Blocks until every worker has started or `timeoutMs` passes (not in a browser's main thread). */
  waitUntilReady(timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs;
    while (!this.ready && performance.now() < deadline) {
      const started = Atomics.load(this.control, READY);
      if (this.canBlock) Atomics.wait(this.control, READY, started, 5);
    }
    return this.ready;
  }

  /**
   * Lays out a call: `scratchBytes` per thread, then one region per operand size (floats).
   * Returns null when the shared memory cannot grow that far (the caller then runs single-threaded).
   */
  reserve(scratchBytes: number, floats: number[]): SharedRegion[] | null {
    const align = (value: number) => Math.ceil(value / 64) * 64;
    const stride = align(scratchBytes);
    const scratch = align(this.jobAddress + this.jobWords * 4);
    let next = scratch + stride * this.threads;
    const addresses = floats.map((count) => {
      const address = next;
      next = align(next + 4 * count);
      return address;
    });
    const pages = Math.ceil(next / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (pages > MAX_PAGES) return null;
    if (pages > have) {
      try {
        this.memory.grow(pages - have);
      } catch {
        return null;
      }
    }
    this.control[SCRATCH] = scratch;
    this.control[SCRATCH_STRIDE] = stride;
    this.top = next;
    const buffer = this.memory.buffer;
    return addresses.map((address, index) => ({ address, floats: new Float32Array(buffer, address, floats[index]) }));
  }

  /** Bytes of shared memory in use by the last call (for tests). */
  get bytesInUse(): number {
    return this.top;
  }

  /** Runs one job (words after op/next/tasks as in kernels.c) on every thread; returns when all are done. */
  run(op: number, tasks: number, args: ArrayLike<number>, alpha?: { index: number; value: number }): void {
    if (this.closed) throw new Error('wasm thread pool: used after close()');
    const job = new Int32Array(this.memory.buffer, this.jobAddress, this.jobWords);
    job.fill(0);
    job[0] = op;
    job[1] = 0;
    job[2] = tasks;
    job.set(args, 3);
    if (alpha) new Float32Array(this.memory.buffer, this.jobAddress, this.jobWords)[3 + alpha.index] = alpha.value;
    const control = this.control;
    control[JOB] = this.jobAddress;
    Atomics.store(control, DONE, 0);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    try {
      this.exports.run(this.jobAddress, control[SCRATCH]);
    } finally {
      // Even if this thread failed, the workers still use the job's memory until they are done.
      const workers = this.threads - 1;
      for (let done = Atomics.load(control, DONE); done < workers; done = Atomics.load(control, DONE)) {
        if (this.canBlock) Atomics.wait(control, DONE, done, 100);
      }
    }
    if (Atomics.exchange(control, FAILED, 0) !== 0) throw new Error('wasm thread pool: a worker failed while running a job');
  }

  /** Stops and ends the workers; resolves when they have exited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    await Promise.all(this.workers.map((worker) => worker.terminate()));
    this.workers.length = 0;
  }
}

/** Atomics.wait throws on a browser's main thread; there the caller spins on Atomics.load instead. */
function blockingAllowed(control: Int32Array): boolean {
  try {
    Atomics.wait(control, STOP, 1, 0); // STOP is 0: returns "not-equal" at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}
