// Kernel benchmark: GFLOP/s of the fast-kernels doc's matmul shapes and the time of the model's
// memory-bound ops, stock wasm kernels against the WebAssembly SIMD tier and the native tier, in
// one process. Kernels a tier does not replace run stock (marked "stock" in its column).
// Run: npm run bench:kernels [-- --repeats 3 --skip-stock-gradients --only <name part>]
import { initBackend } from '../core/engine/backend.ts';
import {
  fusedAdamWUpdate,
  fusedGelu,
  fusedLayerNorm,
  fusedWindowAttention,
  installFastKernels,
  nativeProvider,
  uninstallFastKernels,
  type KernelTier,
} from '../core/engine/kernels/index.ts';
import { tf } from '../core/engine/tf.ts';

const argv = process.argv.slice(2);
const repeats = Number(argv[argv.indexOf('--repeats') + 1]) || 3;
const skipStockGradients = argv.includes('--skip-stock-gradients');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : '';

interface Case {
  name: string;
  /** The tfjs kernel measured, to tell whether a tier replaces it. */
  kernel: string;
  /** Floating-point operations per run (0 for memory-bound cases, reported in ms). */
  flops: number;
  gradient: boolean;
  make: () => { run: () => tf.Tensor | tf.Tensor[]; inputs: tf.Tensor[] };
}

function random(shape: number[]): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', 7);
}

function matmulCase(name: string, shapeA: number[], shapeB: number[], gradient: boolean): Case {
  const m = shapeA[shapeA.length - 2];
  const k = shapeA[shapeA.length - 1];
  const n = shapeB[shapeB.length - 1];
  const batch = shapeA.slice(0, -2).reduce((a, b) => a * b, 1);
  const forward = 2 * batch * m * n * k;
  return {
    name: `${name}${gradient ? ' fwd+grads' : ''}`,
    kernel: 'BatchMatMul',
    flops: gradient ? 3 * forward : forward,
    gradient,
    make: () => {
      const a = random(shapeA);
      const b = random(shapeB);
      if (!gradient) return { run: () => tf.matMul(a, b), inputs: [a, b] };
      const grads = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y));
      return { run: () => grads([a, b]), inputs: [a, b] };
    },
  };
}

function opCase(name: string, kernel: string, shapes: number[][], op: (...inputs: tf.Tensor[]) => tf.Tensor): Case {
  return {
    name,
    kernel,
    flops: 0,
    gradient: false,
    make: () => {
      const inputs = shapes.map(random);
      return { run: () => op(...inputs), inputs };
    },
  };
}

const cases: Case[] = [
  {
    name: 'gather bias table [2535,3] by 392*392',
    kernel: 'GatherV2',
    flops: 0,
    gradient: false,
    make: () => {
      const table = random([2535, 3]);
      const indices = tf.tensor1d(
        Int32Array.from({ length: 392 * 392 }, (_, i) => (i * 7919) % 2535),
        'int32',
      );
      return { run: () => tf.gather(table, indices), inputs: [table, indices] };
    },
  },
  matmulCase('sgemm 1024^3', [1024, 1024], [1024, 1024], false),
  matmulCase('attention [384,392,32]x[384,32,392]', [384, 392, 32], [384, 32, 392], false),
  matmulCase('attention [384,392,32]x[384,32,392]', [384, 392, 32], [384, 32, 392], true),
  matmulCase('linear [50176,96]x[96,288]', [50176, 96], [96, 288], false),
  matmulCase('linear [50176,96]x[96,288]', [50176, 96], [96, 288], true),
  {
    // Composed from BatchMatMul/Add/Softmax on stock and wasm, one fused kernel on native.
    name: 'window attention [128,3,392,32], 64 windows',
    kernel: 'BatchMatMul',
    flops: 4 * 128 * 3 * 392 * 392 * 32,
    gradient: false,
    make: () => {
      const [q, k, v] = [0, 1, 2].map(() => random([128, 3, 392, 32]));
      const bias = random([3, 392, 392]);
      const mask = tf.tidy(() => random([64, 392, 392]).greater(0.5).toFloat().mul(-100));
      return { run: () => fusedWindowAttention(q, k, v, bias, mask), inputs: [q, k, v, bias, mask] };
    },
  },
  // Composed on stock and wasm, one fused kernel on native (the kernel column is only a label).
  opCase('layer norm [50176,96] fwd (fused on native)', 'BatchMatMul', [[50176, 96], [96], [96]], (x, gamma, beta) =>
    fusedLayerNorm(x, gamma, beta),
  ),
  {
    name: 'layer norm [50176,96] fwd+grads (fused on native)',
    kernel: 'BatchMatMul',
    flops: 0,
    gradient: true,
    make: () => {
      const inputs = [random([50176, 96]), random([96]), random([96])];
      const grads = tf.grads((x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => fusedLayerNorm(x, gamma, beta));
      return { run: () => grads(inputs), inputs };
    },
  },
  opCase('gelu [50176,384] fwd (fused on native)', 'BatchMatMul', [[50176, 384]], (x) => fusedGelu(x)),
  opCase(
    'adamw update, 4M parameters (fused on native)',
    'BatchMatMul',
    [[4194304], [4194304], [4194304], [4194304]],
    (param, grad, m, v) => {
      const next = fusedAdamWUpdate(param, grad, m, v.abs(), {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weightDecay: 0.05,
        correction1: 0.5,
        correction2Sqrt: 0.1,
      });
      tf.dispose([next.expAvg, next.expAvgSq]);
      return next.param;
    },
  ),
  opCase('transpose window partition [8,7,8,7,56,96]', 'Transpose', [[8, 7, 8, 7, 56, 96]], (x) =>
    x.transpose([0, 2, 1, 3, 4, 5]),
  ),
  opCase('transpose qkv [384,392,3,3,32]->[3,384,3,392,32]', 'Transpose', [[384, 392, 3, 3, 32]], (x) =>
    x.transpose([2, 0, 3, 1, 4]),
  ),
  opCase('slice q of qkv [3,384,3,392,32]', 'Slice', [[3, 384, 3, 392, 32]], (x) =>
    x.slice([1, 0, 0, 0, 0], [1, 384, 3, 392, 32]),
  ),
  opCase(
    'add mask [128,3,3,392,392]+[1,3,1,392,392]',
    'Add',
    [
      [128, 3, 3, 392, 392],
      [1, 3, 1, 392, 392],
    ],
    (a, b) => a.add(b),
  ),
  opCase(
    'layer-norm sub [50176,96]-[50176,1]',
    'Sub',
    [
      [50176, 96],
      [50176, 1],
    ],
    (a, b) => a.sub(b),
  ),
  opCase('erf [50176,384]', 'Erf', [[50176, 384]], (x) => x.erf()),
  opCase('softmax [1152,392,392]', 'Softmax', [[1152, 392, 392]], (x) => x.softmax()),
];

/** Best of `count` runs after a warm-up: on a shared machine the minimum is the figure that
 * repeats; the mean mostly measures the other processes. */
function time(run: () => tf.Tensor | tf.Tensor[], count: number): number {
  const once = () => {
    const started = performance.now();
    // wasm kernels run synchronously, so the work is done when run() returns; reading the result
    // back (dataSync) would add a full copy out of the wasm heap to every case.
    const out = run();
    const elapsed = performance.now() - started;
    tf.dispose(Array.isArray(out) ? out : [out]);
    return elapsed;
  };
  once();
  let best = Infinity;
  for (let i = 0; i < count; i++) best = Math.min(best, once());
  return best;
}

function measure(kase: Case, count: number): number {
  const { run, inputs } = kase.make();
  try {
    return time(run, count);
  } finally {
    tf.dispose(inputs);
  }
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const tiers: KernelTier[] = ['stock', 'wasm'];
  const provider = nativeProvider();
  if (provider) tiers.push('native');
  else console.log('The native addon is not built (node scripts/build-native.mjs): no native column.');
  const described = tiers.map((tier) => {
    const status = installFastKernels({ name: 'wasm' }, tier);
    return `${tier}${status.isa ? ` (${status.isa} x ${status.threads})` : ''}`;
  });
  console.log(
    `vswin kernel benchmark: Node ${process.version}; tiers ${described.join(', ')}; best of ${repeats} runs after one warm-up\n`,
  );
  const header = ['case', ...tiers, ...tiers.slice(1).map((tier) => `${tier}/stock`)];
  const rows: string[][] = [];
  for (const kase of cases.filter((candidate) => candidate.name.includes(only))) {
    const show = (ms: number) => (kase.flops ? `${(kase.flops / ms / 1e6).toFixed(1)} GFLOP/s` : `${ms.toFixed(1)} ms`);
    const times: number[] = [];
    const cells: string[] = [];
    for (const tier of tiers) {
      const status = installFastKernels({ name: 'wasm' }, tier);
      const replaced = status.kernels.includes(kase.kernel);
      if (tier !== 'stock' && !replaced) {
        times.push(times[0]);
        cells.push('stock');
        continue;
      }
      const skip = tier === 'stock' && kase.gradient && skipStockGradients;
      const ms = skip ? NaN : measure(kase, tier === 'stock' && kase.flops > 5e9 ? 1 : repeats);
      times.push(ms);
      cells.push(skip ? 'skipped' : show(ms));
    }
    uninstallFastKernels();
    const ratios = times.slice(1).map((ms) => (Number.isNaN(times[0]) ? '-' : `${(times[0] / ms).toFixed(1)}x`));
    const row = [kase.name, ...cells, ...ratios];
    rows.push(row);
    console.log(row.join(' | '));
  }
  const widths = header.map((_, column) => Math.max(header[column].length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  console.log(`\n${line(header)}\n|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|\n${rows.map(line).join('\n')}`);
  console.log('\nPyTorch on this machine (fast-kernels doc, GFLOP/s): sgemm 234, attention 26-98, linear 77-194.');
}

await main();
