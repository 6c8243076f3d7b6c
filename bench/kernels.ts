// Kernel benchmark: GFLOP/s of the fast-kernels doc's matmul shapes and the time of the model's
// memory-bound ops, stock wasm kernels against the native tier, in one process.
// Run: npm run bench:kernels [-- --repeats 3 --skip-stock-gradients --only <name part>]
import { initBackend } from '../core/engine/backend.ts';
import { installFastKernels, nativeProvider, uninstallFastKernels } from '../core/engine/kernels/index.ts';
import { tf } from '../core/engine/tf.ts';

const argv = process.argv.slice(2);
const repeats = Number(argv[argv.indexOf('--repeats') + 1]) || 3;
const skipStockGradients = argv.includes('--skip-stock-gradients');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : '';

interface Case {
  name: string;
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

function opCase(name: string, shapes: number[][], op: (...inputs: tf.Tensor[]) => tf.Tensor): Case {
  return {
    name,
    flops: 0,
    gradient: false,
    make: () => {
      const inputs = shapes.map(random);
      return { run: () => op(...inputs), inputs };
    },
  };
}

const cases: Case[] = [
  matmulCase('sgemm 1024^3', [1024, 1024], [1024, 1024], false),
  matmulCase('attention [384,392,32]x[384,32,392]', [384, 392, 32], [384, 32, 392], false),
  matmulCase('attention [384,392,32]x[384,32,392]', [384, 392, 32], [384, 32, 392], true),
  matmulCase('linear [50176,96]x[96,288]', [50176, 96], [96, 288], false),
  matmulCase('linear [50176,96]x[96,288]', [50176, 96], [96, 288], true),
  opCase('transpose window partition [1,8,7,8,7,8,7,96]->rank 6', [[8, 7, 8, 7, 56, 96]], (x) => x.transpose([0, 2, 1, 3, 4, 5])),
  opCase('transpose qkv [384,392,3,3,32]->[3,384,3,392,32]', [[384, 392, 3, 3, 32]], (x) => x.transpose([2, 0, 3, 1, 4])),
  opCase('slice q of qkv [3,384,3,392,32]', [[3, 384, 3, 392, 32]], (x) => x.slice([1, 0, 0, 0, 0], [1, 384, 3, 392, 32])),
  opCase('add mask [128,3,3,392,392]+[1,3,1,392,392]', [[128, 3, 3, 392, 392], [1, 3, 1, 392, 392]], (a, b) => a.add(b)),
  opCase('layer-norm sub [50176,96]-[50176,1]', [[50176, 96], [50176, 1]], (a, b) => a.sub(b)),
  opCase('erf [50176,384]', [[50176, 384]], (x) => x.erf()),
  opCase('softmax [1152,392,392]', [[1152, 392, 392]], (x) => x.softmax()),
];

function time(run: () => tf.Tensor | tf.Tensor[], count: number): number {
  const once = () => {
    const out = run();
    const list = Array.isArray(out) ? out : [out];
    // wasm kernels run synchronously, so the work is done here; reading the result back
    // (dataSync) would add a full copy out of the wasm heap to every case.
    tf.dispose(list);
  };
  once();
  const start = performance.now();
  for (let i = 0; i < count; i++) once();
  return (performance.now() - start) / count;
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
  const provider = nativeProvider();
  if (!provider) {
    console.error('The native addon is not built (node scripts/build-native.mjs); only the stock kernels could be measured.');
    process.exitCode = 1;
    return;
  }
  const { isa, threads } = provider.info();
  console.log(`vswin kernel benchmark: Node ${process.version}, native tier ${isa} x ${threads} threads, ${repeats} repeats (after one warm-up)\n`);
  const header = ['case', 'stock', 'native', 'native/stock'];
  const rows: string[][] = [];
  for (const kase of cases.filter((candidate) => candidate.name.includes(only))) {
    const show = (ms: number) => (kase.flops ? `${(kase.flops / ms / 1e6).toFixed(1)} GFLOP/s` : `${ms.toFixed(1)} ms`);
    uninstallFastKernels();
    const stock = kase.gradient && skipStockGradients ? NaN : measure(kase, kase.flops > 5e9 ? 1 : repeats);
    installFastKernels({ name: 'wasm' }, 'native');
    const native = measure(kase, repeats);
    uninstallFastKernels();
    const row = [kase.name, Number.isNaN(stock) ? 'skipped' : show(stock), show(native), Number.isNaN(stock) ? '-' : `${(stock / native).toFixed(1)}x`];
    rows.push(row);
    console.log(row.join(' | '));
  }
  const widths = header.map((_, column) => Math.max(header[column].length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  console.log(`\n${line(header)}\n|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|\n${rows.map(line).join('\n')}`);
  console.log('\nPyTorch on this machine (fast-kernels doc, GFLOP/s): sgemm 234, attention 26-98, linear 77-194.');
}

await main();
