// The WebAssembly tier's own kernels (fused attention, LayerNorm, GELU, erf, softmax, AdamW and the
// GEMM) against the pure-JS cpu backend, on one thread and on two worker threads with every
// matmul and attention forced through the shared-memory path, plus the pool's lifecycle.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fastKernelStatus,
  fusedAdamWUpdate,
  fusedGelu,
  fusedLayerNorm,
  fusedWindowAttention,
  shutdownWasmThreads,
  uninstallFastKernels,
  useWasmThreads,
  type AdamWStep,
} from '../../../core/engine/kernels/index.ts';
import {
  gemmBands,
  WASM_THREADED_KERNELS_PATH,
  wasmThreadRequest,
  wasmThreadsBytesInUse,
} from '../../../core/engine/kernels/wasm-simd.ts';
import { WasmThreadPool } from '../../../core/engine/kernels/wasm-threads.ts';
import { tf } from '../../../core/engine/tf.ts';
import { expectSameOnBoth, seeded, useTier } from './compare.ts';

function tensor(shape: number[], seed: number, scale = 1, shift = 0): tf.Tensor {
  return tf
    .tensor(
      seeded(
        shape.reduce((a, b) => a * b, 1),
        seed,
      ),
      shape,
    )
    .mul(scale)
    .add(shift);
}

/** Unfused attention, written out independently of attention.ts. */
function attentionReference(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, mask: tf.Tensor | null): tf.Tensor {
  const [batch, heads, n] = q.shape;
  let scores = tf.matMul(q, k, false, true).add(bias);
  if (mask) {
    const windows = mask.shape[0];
    scores = scores
      .reshape([batch / windows, windows, heads, n, n])
      .add(mask.reshape([1, windows, 1, n, n]))
      .reshape([batch, heads, n, n]);
  }
  return tf.matMul(tf.softmax(scores), v);
}

function layerNormReference(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).div(variance.add(1e-5).sqrt()).mul(gamma).add(beta);
}

const geluReference = (x: tf.Tensor) => x.mul(0.5).mul(tf.erf(x.div(Math.SQRT2)).add(1));

describe.each([1, 2])('wasm tier kernels on %i thread(s) against the cpu backend', (threads) => {
  beforeAll(async () => {
    await useTier('wasm');
    await useWasmThreads(threads, { always: true });
  });
  afterAll(async () => {
    uninstallFastKernels();
    await shutdownWasmThreads();
  });

  it('reports the thread count it runs on and lists its fused kernels', () => {
    const status = fastKernelStatus();
    expect(status).toMatchObject({ tier: 'wasm', isa: 'wasm-simd128', threads });
    expect(status.kernels).toEqual(
      expect.arrayContaining([
        'VswinWindowAttention',
        'VswinLayerNorm',
        'VswinLayerNormGrad',
        'VswinGelu',
        'VswinGeluGrad',
        'VswinAdamW',
        'Erf',
      ]),
    );
    expect(status.kernels).not.toContain('Softmax'); // stock XNNPACK's measured faster
  });

  it('matMul: size-1 dims, K = 0, ragged tiles, batches (broadcast too) and transposes', async () => {
    // [batch of a, batch of b, m, k, n]
    const shapes: [number[], number[], number, number, number][] = [
      [[], [], 1, 1, 1],
      [[], [], 1, 7, 33],
      [[], [], 37, 1, 5],
      [[3], [3], 6, 0, 7],
      [[5], [], 19, 40, 35],
      [[1], [4], 130, 9, 6],
      [[], [], 300, 270, 70],
    ];
    for (const [batchA, batchB, m, k, n] of shapes) {
      for (const [transposeA, transposeB] of [
        [false, false],
        [true, true],
        [false, true],
      ] as const) {
        await expectSameOnBoth(
          () => {
            const a = tensor(transposeA ? [...batchA, k, m] : [...batchA, m, k], 1);
            const b = tensor(transposeB ? [...batchB, n, k] : [...batchB, k, n], 2);
            return tf.matMul(a, b, transposeA, transposeB);
          },
          { atol: 3e-5, rtol: 3e-5 },
          `[${batchA}] ${m}x${k} * [${batchB}] ${k}x${n} tA=${transposeA} tB=${transposeB}`,
        );
      }
    }
  });

  it('fused matMul with a bias and an activation, and its gradients', async () => {
    await expectSameOnBoth(
      () => {
        const a = tensor([2, 33, 20], 3);
        const b = tensor([2, 20, 45], 4);
        const bias = tensor([45], 5);
        // One batch entry, wider than tall: on threads C is cut into column bands (the bias too).
        const wide = [tensor([5, 20], 7), tensor([20, 70], 8)];
        return [
          tf.fused.matMul({ a, b, bias, activation: 'relu' }),
          tf.fused.matMul({ a, b, bias: tensor([2, 33, 1], 6), activation: 'elu' }),
          tf.fused.matMul({ a: wide[0], b: wide[1], bias: tensor([70], 9), activation: 'relu' }),
          tf.fused.matMul({ a: wide[0], b: wide[1], bias: tensor([5, 1], 10) }),
          ...tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.fused.matMul({ a: x, b: y, bias: z, activation: 'relu' }).square().sum(),
          )([a, b, bias]),
        ];
      },
      { atol: 5e-5, rtol: 5e-5 },
      'fused',
    );
  });

  it('window attention forward and gradients: masks, one token, one head, ragged sizes', async () => {
    const cases: [number, number, number, number, number][] = [
      [8, 3, 49, 16, 4],
      [3, 1, 1, 5, 3],
      [2, 2, 37, 20, 0],
      [1, 1, 7, 1, 1],
    ];
    for (const [batch, heads, n, dim, windows] of cases) {
      const mask = () => (windows ? tensor([windows, n, n], 5).greater(0.3).toFloat().mul(-100) : null);
      const inputs = () =>
        [
          tensor([batch, heads, n, dim], 1, 0.5),
          tensor([batch, heads, n, dim], 2),
          tensor([batch, heads, n, dim], 3),
          tensor([heads, n, n], 4),
        ] as const;
      await expectSameOnBoth(
        () => attentionReference(...inputs(), mask()),
        { atol: 2e-6, rtol: 2e-5 },
        `attention ${batch}x${heads}x${n}x${dim} w${windows}`,
        () => fusedWindowAttention(...inputs(), mask()),
      );
      const grads = (op: typeof attentionReference) => () =>
        tf.grads((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, b: tf.Tensor) =>
          op(q, k, v, b, mask())
            .mul(tensor([batch, heads, n, dim], 6))
            .sum(),
        )([...inputs()]);
      await expectSameOnBoth(
        grads(attentionReference),
        { atol: 2e-5, rtol: 1e-4 },
        `attention grads ${batch}x${heads}x${n}x${dim} w${windows}`,
        grads(fusedWindowAttention),
      );
    }
  });

  it('layer norm and gelu, forward and gradient, widths 1 to 97 and a single row', async () => {
    for (const shape of [
      [1, 1],
      [5, 1],
      [1, 97],
      [4, 3, 7],
      [33, 96],
    ]) {
      const c = shape[shape.length - 1];
      const inputs = () => [tensor(shape, 7, 3, 2), tensor([c], 8, 1, 1), tensor([c], 9)] as const;
      const weight = () => tensor(shape, 10);
      await expectSameOnBoth(
        () => layerNormReference(...inputs()),
        { atol: 2e-5, rtol: 1e-4 },
        `layer norm [${shape}]`,
        () => fusedLayerNorm(...inputs()),
      );
      const normGrads = (op: typeof layerNormReference) => () =>
        tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => op(x, g, b).mul(weight()).sum())([...inputs()]);
      await expectSameOnBoth(
        normGrads(layerNormReference),
        { atol: 5e-5, rtol: 1e-3 },
        `layer norm grads [${shape}]`,
        normGrads(fusedLayerNorm),
      );
      const x = () => tensor(shape, 11, 5);
      await expectSameOnBoth(
        () => geluReference(x()),
        { atol: 1e-6, rtol: 1e-5 },
        `gelu [${shape}]`,
        () => fusedGelu(x()),
      );
      const geluGrads = (op: typeof geluReference) => () => tf.grad((input: tf.Tensor) => op(input).mul(weight()).sum())(x());
      await expectSameOnBoth(geluGrads(geluReference), { atol: 1e-6, rtol: 1e-5 }, `gelu grad [${shape}]`, geluGrads(fusedGelu));
    }
  });

  it('transposes walk 4 x 4 tiles in blocks; ragged edges, thin slices and int32 come out exact', async () => {
    await expectSameOnBoth(
      () => [
        tensor([131, 70], 19).transpose(),
        tensor([5, 67, 130], 20).mul(1000).toInt().transpose([0, 2, 1]),
        tensor([3, 4, 5, 200], 21).transpose([0, 1, 3, 2]),
        tensor([2, 3, 9], 22).transpose([0, 2, 1]),
        tensor([7, 3], 23).transpose(),
      ],
      { atol: 0, rtol: 0 },
      'transposes',
    );
  });

  it('erf (and the stock softmax beside it): special values, odd lengths, one column', async () => {
    await expectSameOnBoth(
      () => [
        tf.tensor([NaN, Infinity, -Infinity, 0, -0.5, 0.999, 1, 1.001, 3, -9]).erf(),
        tensor([7], 12, 4).erf(),
        tensor([4, 1], 13).softmax(),
        tensor([3, 5], 14, 20).softmax(),
        tf
          .tensor([
            [1, NaN, 2, 0, 0],
            [-Infinity, 0, 1, 2, 3],
          ])
          .softmax(),
      ],
      { atol: 2e-7, rtol: 2e-6 },
      'erf/softmax',
    );
  });

  it('AdamW: first step, later step, odd lengths', async () => {
    const step = (n: number, decay: number): AdamWStep => ({
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: decay,
      correction1: 1 - 0.9 ** n,
      correction2Sqrt: Math.sqrt(1 - 0.999 ** n),
    });
    const reference = (p: tf.Tensor, g: tf.Tensor, m0: tf.Tensor | null, v0: tf.Tensor | null, s: AdamWStep) => {
      const m = (m0 ?? tf.zerosLike(p)).mul(s.beta1).add(g.mul(1 - s.beta1));
      const v = (v0 ?? tf.zerosLike(p)).mul(s.beta2).add(g.square().mul(1 - s.beta2));
      return [
        p.mul(1 - s.lr * s.weightDecay).sub(
          m
            .div(s.correction1)
            .div(
              v
                .div(s.correction2Sqrt ** 2)
                .sqrt()
                .add(s.eps),
            )
            .mul(s.lr),
        ),
        m,
        v,
      ];
    };
    for (const [n, decay, size] of [
      [1, 0.05, 1],
      [4, 0.02, 7],
      [9, 0, 4099],
    ] as const) {
      const inputs = () =>
        [
          tensor([size], 15),
          tensor([size], 16, 0.1),
          n > 1 ? tensor([size], 17, 0.01) : null,
          n > 1 ? tensor([size], 18, 0.001).abs() : null,
        ] as const;
      await expectSameOnBoth(
        () => reference(...inputs(), step(n, decay)),
        { atol: 1e-7, rtol: 1e-5 },
        `adamw ${n} ${size}`,
        () => {
          const next = fusedAdamWUpdate(...inputs(), step(n, decay));
          return [next.param, next.expAvg, next.expAvgSq];
        },
      );
    }
  });

  it('leaks no tensor, no heap block and no shared memory over 25 attention-block training steps', async () => {
    await tf.setBackend('wasm');
    const weight = tf.variable(tensor([16, 48], 20, 0.3));
    const gamma = tf.variable(tf.ones([16]));
    const beta = tf.variable(tf.zeros([16]));
    const input = tensor([4, 2, 9, 16], 21);
    const bias = tensor([2, 9, 9], 22);
    const mask = tensor([2, 9, 9], 23).greater(0).toFloat().mul(-100);
    const state = new Map<string, { m: tf.Tensor; v: tf.Tensor }>();
    let count = 0;
    const step = () => {
      count++;
      const { value, grads } = tf.variableGrads(() => {
        const qkv = fusedLayerNorm(input, gamma, beta).reshape([72, 16]).matMul(weight).reshape([4, 2, 9, 3, 16]);
        const [q, k, v] = [0, 1, 2].map((i) => qkv.slice([0, 0, 0, i, 0], [4, 2, 9, 1, 16]).reshape([4, 2, 9, 16]));
        return fusedGelu(fusedWindowAttention(q.mul(0.25), k, v, bias, mask))
          .square()
          .mean();
      });
      for (const variable of [weight, gamma, beta]) {
        const old = state.get(variable.name);
        const next = fusedAdamWUpdate(variable, grads[variable.name], old?.m ?? null, old?.v ?? null, {
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.01,
          correction1: 1 - 0.9 ** count,
          correction2Sqrt: Math.sqrt(1 - 0.999 ** count),
        });
        variable.assign(next.param);
        tf.dispose([next.param, old?.m, old?.v].filter((t): t is tf.Tensor => t !== undefined));
        state.set(variable.name, { m: next.expAvg, v: next.expAvgSq });
      }
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      return loss;
    };
    const first = step();
    const tensorsBefore = tf.memory().numTensors;
    const dataBefore = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    const sharedBefore = wasmThreadsBytesInUse();
    let last = first;
    for (let i = 0; i < 25; i++) last = step();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(dataBefore);
    expect(wasmThreadsBytesInUse()).toBe(sharedBefore);
    if (threads > 1) expect(sharedBefore).toBeGreaterThan(0);
    expect(last).toBeLessThan(first); // the updates are applied (and numerically sane)
    tf.dispose([weight, gamma, beta, input, bias, mask, ...[...state.values()].flatMap(({ m, v }) => [m, v])]);
  });
});

describe('wasm tier threads: choice and lifecycle', () => {
  it('a threaded GEMM is cut into whole batch entries, or bands along the longer side of C', () => {
    expect(gemmBands(8, 196, 196, 2)).toEqual({ rowsPerTask: 196, colsPerTask: 196 });
    expect(gemmBands(1, 25088, 96, 2)).toEqual({ rowsPerTask: 3136, colsPerTask: 96 }); // 8 bands of rows
    expect(gemmBands(1, 96, 96, 2)).toEqual({ rowsPerTask: 48, colsPerTask: 96 }); // one per thread
    expect(gemmBands(1, 5, 70, 2)).toEqual({ rowsPerTask: 5, colsPerTask: 48 }); // columns, whole register tiles (16 wide)
    expect(gemmBands(2, 1000, 50, 2)).toEqual({ rowsPerTask: 500, colsPerTask: 50 });
  });

  it('VSWIN_WASM_THREADS is parsed and a bad value is named', () => {
    expect(wasmThreadRequest('3')).toBe(3);
    expect(wasmThreadRequest(undefined)).toBeGreaterThanOrEqual(1);
    expect(() => wasmThreadRequest('0')).toThrow('VSWIN_WASM_THREADS: expected a whole number of threads from 1 to 64, got "0"');
    expect(() => wasmThreadRequest('two')).toThrow('got "two"');
  });

  it('shuts the workers down, then starts them again on the next use', async () => {
    await useTier('wasm');
    await useWasmThreads(2, { always: true });
    expect(fastKernelStatus().threads).toBe(2);
    await shutdownWasmThreads();
    await useWasmThreads(2, { always: true });
    const product = tf.tidy(() => tf.matMul(tf.ones([5, 3]), tf.ones([3, 4])));
    expect(Array.from(await product.data())).toEqual(new Array(20).fill(3));
    product.dispose();
    await shutdownWasmThreads();
    uninstallFastKernels();
  });

  /** Runs `body` in a fresh Node process with the wasm tier on 2 threads; returns its last stdout line, parsed. */
  function inProcess(prelude: string, body: string): unknown {
    const module = (path: string) => JSON.stringify(fileURLToPath(new URL(path, import.meta.url)));
    const script = `${prelude}
      const { initBackend } = await import(${module('../../../core/engine/backend.ts')});
      const { fastKernelStatus, useWasmThreads } = await import(${module('../../../core/engine/kernels/index.ts')});
      const { tf } = await import(${module('../../../core/engine/tf.ts')});
      await initBackend('wasm');
      ${body}`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, VSWIN_KERNELS: 'wasm', VSWIN_WASM_THREADS: '2' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.signal, `killed: ${result.stderr}`).toBeNull();
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout.trim().split('\n').pop()!);
  }

  it('a pool whose worker fails is never used, and says why; an operand beyond its memory is refused', async () => {
    const module = new WebAssembly.Module(readFileSync(WASM_THREADED_KERNELS_PATH));
    const failing = new WasmThreadPool(module, 2, (_source, data, onError) => {
      const worker = new Worker('throw new Error("boom")', { eval: true, workerData: data });
      worker.unref();
      worker.on('error', (error) => onError(error.message));
      return { terminate: () => worker.terminate() };
    });
    for (let waited = 0; failing.failure === null && waited < 100; waited++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(failing.failure).toBe('a worker thread failed: boom');
    expect(failing.ready).toBe(false);
    await failing.close();
    expect(() => failing.run(1, 0, [])).toThrow('wasm thread pool: used after close()');
    const pool = new WasmThreadPool(module, 2, (source, data) => {
      const worker = new Worker(source, { eval: true, workerData: data, execArgv: [] });
      worker.unref();
      return { terminate: () => worker.terminate() };
    });
    expect(pool.reserve(1024, [2 ** 29])).toBeNull(); // 2 GiB of operands: more than the pool may map
    expect(pool.reserve(1024, [1000, 3])!.map((region) => region.floats.length)).toEqual([1000, 3]);
    await pool.close();
  });

  it('idle workers never keep the process alive', () => {
    // The script runs threaded kernels, then simply ends: the process must exit by itself.
    expect(
      inProcess(
        '',
        `
      await useWasmThreads(2, { always: true });
      const sum = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).sum().dataSync()[0];
      console.log(JSON.stringify({ threads: fastKernelStatus().threads, sum }));`,
      ),
    ).toEqual({ threads: 2, sum: 64 * 64 * 64 });
  });

  it('without shared memory the tier runs on one thread and its reason says why', () => {
    expect(
      inProcess(
        'delete globalThis.SharedArrayBuffer;',
        `
      const { tier, threads, reason } = fastKernelStatus();
      const sum = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).sum().dataSync()[0];
      console.log(JSON.stringify({ tier, threads, reason, sum }));`,
      ),
    ).toEqual({
      tier: 'wasm',
      threads: 1,
      sum: 64 * 64 * 64,
      reason:
        'requested with VSWIN_KERNELS=wasm; one thread instead of 2: threads unavailable (SharedArrayBuffer is unavailable (a browser page needs cross-origin isolation))',
    });
  });
});
