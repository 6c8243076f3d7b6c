// `npm run bench:model`: speed and memory of the model, with every anchor measured in the same run on
// this machine: ONNX Runtime (onnxruntime-node, CPU) on the ONNX export of the same weights and
// input, and PyTorch when a python3 with torch is found (bench/pytorch_model.py). Each task runs in
// its own child process so its peak RSS is its own. Prints figures; asserts nothing.
//   npm run bench:model -- [--backend webgpu|wasm|cpu|tensorflow] [--only fixture,infer16,infer32,train,leak]
//                          [--runs N] [--profile] [--no-onnx] [--no-pytorch] [--pytorch-timeout SECONDS]
// The kernel tier and its threads come from VSWIN_KERNELS and VSWIN_WASM_THREADS; the table names them.
// VSWIN_PYTHON names the python3 to try first for the PyTorch column.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../core/engine/backend.ts';
import { describeAdapter } from '../core/engine/webgpu/adapter.ts';
import { fastKernelStatus } from '../core/engine/kernels/index.ts';
import { loadNativeKernels } from '../core/engine/kernels/native-addon.ts';
import { crossEntropy } from '../core/engine/ops.ts';
import { Random } from '../core/engine/random.ts';
import { tf } from '../core/engine/tf.ts';
import { exportOnnx } from '../core/export/onnx.ts';
import { compareLogits, loadOnnxRuntime, normalClip, openSession, runSession } from '../core/export/onnx-runtime.ts';
import { complexity } from '../core/model/complexity.ts';
import { parseModelConfig, type ModelConfig } from '../core/model/config.ts';
import { VARIANTS } from '../core/model/variants.ts';
import { createVideoSwin, type VideoSwin } from '../core/model/video-swin.ts';
import { AdamW } from '../core/train/adamw.ts';
import { OFFICIAL_CUSTOM_KEYS, paramGroups } from '../core/train/param-groups.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    only: { type: 'string', default: 'fixture,infer16,infer32,train,leak' },
    runs: { type: 'string', default: '2' },
    profile: { type: 'boolean', default: false },
    'no-onnx': { type: 'boolean', default: false },
    'no-pytorch': { type: 'boolean', default: false },
    'pytorch-timeout': { type: 'string', default: '300' },
    // Internal: one task in a child process.
    child: { type: 'string' },
    engine: { type: 'string', default: 'ours' },
    onnx: { type: 'string' },
  },
});
const runs = Math.max(1, Number(values.runs));
const SELF = fileURLToPath(import.meta.url);
const FIXTURE_MANIFEST = (() => {
  const beside = fileURLToPath(new URL('../../shared/fixtures/parity/manifest.json', import.meta.url));
  for (const path of [process.env.VSWIN_PARITY_FIXTURES && join(process.env.VSWIN_PARITY_FIXTURES, 'manifest.json'), beside])
    if (path) {
      try {
        return JSON.parse(readFileSync(path, 'utf8'));
      } catch {
        /* next */
      }
    }
  throw new Error(`bench:model: the parity fixtures' manifest.json was not found at ${beside} (set VSWIN_PARITY_FIXTURES)`);
})();
const fixtureConfig = (): ModelConfig =>
  parseModelConfig({ backbone: FIXTURE_MANIFEST.config.backbone, num_classes: FIXTURE_MANIFEST.config.num_classes });
const swinT = (): ModelConfig => parseModelConfig(VARIANTS.swin_t.config);

/** What a child reports: seconds of each timed run per sub-task, its peak RSS, and logits to cross-check. */
interface ChildResult {
  seconds: Record<string, number[]>;
  /** CPU seconds (user + system, every thread of the process) of the same runs: less sensitive to other load. */
  cpu: Record<string, number[]>;
  maxRssMiB: number;
  logits?: number[];
  threads?: number;
}
const RESULT_TAG = '@@result ';
const maxRssMiB = () => process.resourceUsage().maxRSS / 1024;

/** Times `count` runs into `into.seconds[label]` (wall) and `into.cpu[label]` (process CPU time). */
async function timeRuns(
  into: Pick<ChildResult, 'seconds' | 'cpu'>,
  label: string,
  count: number,
  fn: () => void | Promise<void>,
): Promise<void> {
  into.seconds[label] = [];
  into.cpu[label] = [];
  for (let i = 0; i < count; i++) {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await fn();
    into.seconds[label].push((performance.now() - started) / 1000);
    const used = process.cpuUsage(cpuBefore);
    into.cpu[label].push((used.user + used.system) / 1e6);
  }
}

function trainer(model: VideoSwin) {
  const optimizer = new AdamW(model.params, paramGroups(model.params.keys(), 1e-3, 0.02, OFFICIAL_CUSTOM_KEYS), {
    betas: [0.9, 0.999],
    eps: 1e-8,
  });
  const random = new Random(1);
  return async (x: tf.Tensor, labels: number[], update: boolean) => {
    const { value, grads } = model.gradients(() =>
      crossEntropy(model.forward(x, { training: true, random: random.uniform }).logits, labels),
    );
    if (update) optimizer.step(grads, (g) => g.lr);
    await value.data();
    tf.dispose([value, ...grads.values()]);
  };
}

/** Inference with the logits read back asynchronously (webgpu has no synchronous read in Node). */
async function predict(model: VideoSwin, x: tf.Tensor): Promise<number[]> {
  const logits = model.predict(x);
  try {
    return Array.from(await logits.data());
  } finally {
    logits.dispose();
  }
}

const clipShape = (frames: number) => [1, 3, frames, 224, 224];

/** One task of our engine, in this (child) process. */
async function runOurs(task: string): Promise<ChildResult> {
  const timed = { seconds: {} as Record<string, number[]>, cpu: {} as Record<string, number[]> };
  let logits: number[] | undefined;
  if (task === 'fixture') {
    const model = createVideoSwin(fixtureConfig());
    const x = tf.tensor(normalClip([8, 3, 9, 58, 50], 2), [8, 3, 9, 58, 50]);
    const labels = [0, 1, 2, 3, 4, 0, 1, 2];
    const step = trainer(model);
    await step(x, labels, true); // warm-up
    await timeRuns(timed, 'fwdbwd', 3 * runs, () => step(x, labels, false));
    await timeRuns(timed, 'adamw', 3 * runs, () => step(x, labels, true));
    await timeRuns(timed, 'forward', 3 * runs, async () => void (await predict(model, x)));
    x.dispose();
    model.dispose();
  } else if (task === 'infer16' || task === 'infer32') {
    const frames = task === 'infer16' ? 16 : 32;
    const model = createVideoSwin(swinT());
    const input = normalClip(clipShape(frames), 3);
    const x = tf.tensor(input, clipShape(frames));
    logits = await predict(model, x); // warm-up
    if (values.profile) {
      const profile = await tf.profile(() => predict(model, x));
      const byKernel = new Map<string, number>();
      for (const k of profile.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
      console.error(`per-kernel profile, Swin-T 1x3x${frames}x224x224 inference (${(total / 1000).toFixed(2)} s in kernels):`);
      for (const [name, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 15))
        console.error(`  ${name.padEnd(20)} ${(ms / 1000).toFixed(2)} s  ${((100 * ms) / total).toFixed(1)} %`);
    }
    await timeRuns(timed, 'infer', runs, async () => void (await predict(model, x)));
    x.dispose();
    model.dispose();
  } else if (task === 'train') {
    const model = createVideoSwin(swinT());
    const x = tf.tensor(normalClip([1, 3, 8, 112, 112], 4), [1, 3, 8, 112, 112]);
    const step = trainer(model);
    await step(x, [7], true); // warm-up
    await timeRuns(timed, 'train', Math.max(3, runs), () => step(x, [7], true));
    x.dispose();
    model.dispose();
  } else throw new Error(`unknown task "${task}"`);
  return { ...timed, maxRssMiB: maxRssMiB(), logits, threads: fastKernelStatus().threads };
}

/** One inference task in ONNX Runtime on an exported file, in this (child) process. */
async function runOnnx(task: string, file: string, threads: number): Promise<ChildResult> {
  const frames = task === 'infer16' ? 16 : 32;
  const input = normalClip(clipShape(frames), 3);
  const session = await openSession(file, threads);
  const logits = Array.from(await runSession(session, input, clipShape(frames))); // warm-up
  const timed = { seconds: {}, cpu: {} };
  await timeRuns(timed, 'infer', runs, async () => void (await runSession(session, input, clipShape(frames))));
  await session.release();
  return { ...timed, maxRssMiB: maxRssMiB(), logits, threads };
}

if (values.child) {
  let result: ChildResult;
  if (values.engine === 'onnx') result = await runOnnx(values.child, values.onnx!, Number(process.env.VSWIN_BENCH_THREADS ?? 2));
  else {
    await initBackend(values.backend);
    result = await runOurs(values.child);
  }
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------- parent: header, anchors, table

function child(task: string, engine: 'ours' | 'onnx', extra: string[] = [], threads = 2): Promise<ChildResult> {
  const args = [
    '--import',
    'tsx',
    SELF,
    '--child',
    task,
    '--engine',
    engine,
    '--backend',
    values.backend!,
    '--runs',
    String(runs),
  ];
  if (values.profile) args.push('--profile');
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...args, ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, VSWIN_BENCH_THREADS: String(threads) },
    });
    let out = '';
    proc.stdout.on('data', (chunk) => (out += chunk));
    proc.on('error', reject);
    proc.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_TAG));
      if (code !== 0 || !line) reject(new Error(`${engine} ${task} child exited with ${code}: ${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(RESULT_TAG.length)) as ChildResult);
    });
  });
}

/** A python3 that imports torch, or why there is none. */
function findTorchPython(): { python: string; version: string } | { reason: string } {
  const tried: string[] = [];
  for (const python of [process.env.VSWIN_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    try {
      const version = execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      return { python, version };
    } catch {
      tried.push(python);
    }
  }
  return {
    reason: `no python3 with torch among ${tried.join(', ')} (Debian: apt-get install python3-torch; or set VSWIN_PYTHON)`,
  };
}

function runPytorch(python: string, task: string, threads: number): Promise<ChildResult> {
  const script = fileURLToPath(new URL('./pytorch_model.py', import.meta.url));
  return new Promise((resolve, reject) => {
    const proc = spawn(python, [script, '--task', task, '--threads', String(threads), '--runs', String(runs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    // On an oversubscribed machine PyTorch's OpenMP barriers wait for descheduled threads (here a
    // 0.1 s fixture step took 15 s): past the limit the column is left out, with that reason.
    const limit = Number(values['pytorch-timeout']);
    const timer = setTimeout(() => proc.kill(), limit * 1000);
    proc.stdout.on('data', (chunk) => (out += chunk));
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_TAG));
      if (code === null) reject(new Error(`PyTorch ${task} stopped after --pytorch-timeout ${limit} s (load ${load()})`));
      else if (code !== 0 || !line) reject(new Error(`PyTorch ${task} exited with ${code}: ${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(RESULT_TAG.length)) as ChildResult);
    });
  });
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const only = new Set(values.only!.split(','));
const choice = await initBackend(values.backend);
const kernels = fastKernelStatus();
const threads = kernels.threads ?? 1;
const tierLabel =
  choice.name === 'webgpu'
    ? choice.kernels?.length
      ? 'webgpu + WGSL'
      : 'webgpu stock'
    : choice.name === 'wasm'
      ? `${kernels.tier} x${threads}`
      : choice.name;
console.log(`bench:model ${new Date().toISOString()}  load average ${load()} (1, 5, 15 min) on ${cpus().length} cores`);
console.log(`cpu: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} logical cores; node ${process.version}`);
console.log(`backend: ${choice.name} (${choice.reason})`);
if (choice.adapter) {
  console.log(
    `adapter: ${describeAdapter(choice.adapter)}; fused WGSL kernels: ${choice.kernels?.join(', ') || 'none (VSWIN_KERNELS=stock)'}` +
      ' (on a software adapter such as llvmpipe the figures only prove that it runs)',
  );
}
console.log(
  `kernels: ${kernels.tier} tier${kernels.isa ? `, ${kernels.isa}` : ''}, ${kernels.threads} thread(s) (${kernels.reason})`,
);

// The machine's fp32 peak, measured: the native FMA loop on every kernel thread.
let peak: number | null = null;
{
  const native = loadNativeKernels();
  const fmaPeak = native.ok
    ? (native.provider as unknown as { fmaPeak?: (n: number) => { flops: number; seconds: number } }).fmaPeak
    : undefined;
  if (fmaPeak) {
    fmaPeak(2e6); // wake the pool
    const rates = [0, 1, 2].map(() => {
      const r = fmaPeak(2e7);
      return r.flops / r.seconds / 1e9;
    });
    peak = Math.max(...rates);
    console.log(
      `fp32 peak, measured: ${peak.toFixed(0)} GFLOP/s (FMA loop, ${native.ok ? (native.provider.info() as { isa: string }).isa : ''}, ` +
        `${threads} thread(s); runs ${rates.map((r) => r.toFixed(0)).join(', ')})`,
    );
  } else console.log(`fp32 peak: not measured (${native.ok ? 'this addon build has no fmaPeak' : native.reason})`);
}

/** The PyTorch module must compute the official function: its fixture logits are checked first. */
async function checkedTorch(): Promise<{ python: string; version: string } | { reason: string }> {
  if (values['no-pytorch']) return { reason: '--no-pytorch' };
  const found = findTorchPython();
  if (!('python' in found)) return found;
  try {
    const { check } = (await runPytorch(found.python, 'check', 1)) as ChildResult & {
      check: { ok: boolean; worst_ratio: number };
    };
    if (!check.ok)
      return {
        reason: `bench/pytorch_model.py does not reproduce the official fixture logits (worst ratio ${check.worst_ratio})`,
      };
    return { python: found.python, version: `${found.version}, fixture logits within 1e-4 + 1e-4|ref| of the official ones` };
  } catch (error) {
    return { reason: `bench/pytorch_model.py failed: ${(error as Error).message.slice(0, 300)}` };
  }
}

const onnxRuntime = values['no-onnx'] ? { available: false as const, reason: '--no-onnx' } : loadOnnxRuntime();
const torch = await checkedTorch();
console.log(
  `ONNX Runtime: ${onnxRuntime.available ? `onnxruntime-node ${onnxRuntime.version}, CPU, ${threads} intra-op thread(s), all graph optimisations, no spinning` : onnxRuntime.reason}`,
);
console.log(
  `PyTorch: ${'python' in torch ? `${torch.version} (${torch.python}), ${threads} thread(s), bench/pytorch_model.py` : torch.reason}`,
);

const best = (xs: number[]) => Math.min(...xs);
const fmt = (s: number) => `${s.toFixed(3)} s`;
const gflops = (macs: number, s: number) => (2 * macs) / s / 1e9;
interface Row {
  task: string;
  ours: number;
  macs: number;
  onnx?: number;
  torch?: number;
  cpuOurs?: number;
  cpuOnnx?: number;
  rssOurs?: number;
  rssOnnx?: number;
  rssTorch?: number;
  note?: string;
}
const rows: Row[] = [];
// Progress while the table waits for the last task (stderr, so stdout is the table alone).
const push = (row: Row) => {
  rows.push(row);
  const anchors = [row.onnx && `ONNX Runtime ${fmt(row.onnx)}`, row.torch && `PyTorch ${fmt(row.torch)}`].filter(Boolean);
  console.error(
    `  done: ${row.task.trim()}: ours ${fmt(row.ours)}${anchors.length ? `, ${anchors.join(', ')}` : ''} (load ${load()})`,
  );
};
const notes: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'vswin-bench-'));

try {
  if (only.has('fixture')) {
    const r = await child('fixture', 'ours');
    const macs = complexity(fixtureConfig(), { frames: 9, height: 58, width: 50 }, 8).flopsPerView * 8;
    let pt: ChildResult | null = null;
    if ('python' in torch) pt = await runPytorch(torch.python, 'fixture', threads).catch((e) => (notes.push(String(e)), null));
    push({
      task: 'fixture cfg 8x3x9x58x50 fwd+bwd',
      ours: best(r.seconds.fwdbwd),
      macs: 3 * macs,
      torch: pt ? best(pt.seconds.fwdbwd) : undefined,
      rssOurs: r.maxRssMiB,
      rssTorch: pt?.maxRssMiB,
    });
    push({
      task: '  + AdamW step',
      ours: best(r.seconds.adamw),
      macs: 3 * macs,
      torch: pt ? best(pt.seconds.adamw) : undefined,
    });
    push({ task: '  forward only', ours: best(r.seconds.forward), macs, torch: pt ? best(pt.seconds.forward) : undefined });
  }
  for (const frames of [16, 32]) {
    const task = `infer${frames}`;
    if (!only.has(task)) continue;
    const macs = complexity(swinT(), { frames, height: 224, width: 224 }).flopsPerView;
    let onnx: ChildResult | null = null;
    let file: string | null = null;
    if (onnxRuntime.available) {
      // The export of the very weights the child builds (Swin-T, seed 0).
      const model = createVideoSwin(swinT());
      file = join(tmp, `swin_t_${frames}.onnx`);
      writeFileSync(file, exportOnnx(model, { batch: 1, frames, height: 224, width: 224 }).bytes);
      model.dispose();
    }
    const ours = await child(task, 'ours');
    if (file) onnx = await child(task, 'onnx', ['--onnx', file], threads);
    let pt: ChildResult | null = null;
    if ('python' in torch) pt = await runPytorch(torch.python, task, threads).catch((e) => (notes.push(String(e)), null));
    let note = 'per clip';
    if (onnx && ours.logits && onnx.logits) {
      const check = compareLogits(Float32Array.from(ours.logits), Float32Array.from(onnx.logits), 'ONNX Runtime');
      note = `logits ${check.ok ? 'agree' : 'DISAGREE'} (max |diff| ${check.maxAbsDiff.toExponential(1)})`;
    }
    push({
      task: `Swin-T inference 1x3x${frames}x224x224`,
      ours: best(ours.seconds.infer),
      macs,
      onnx: onnx ? best(onnx.seconds.infer) : undefined,
      cpuOurs: best(ours.cpu.infer),
      cpuOnnx: onnx ? best(onnx.cpu.infer) : undefined,
      torch: pt ? best(pt.seconds.infer) : undefined,
      rssOurs: ours.maxRssMiB,
      rssOnnx: onnx?.maxRssMiB,
      rssTorch: pt?.maxRssMiB,
      note,
    });
  }
  if (only.has('train')) {
    const r = await child('train', 'ours');
    let pt: ChildResult | null = null;
    if ('python' in torch) pt = await runPytorch(torch.python, 'train', threads).catch((e) => (notes.push(String(e)), null));
    const macs = complexity(swinT(), { frames: 8, height: 112, width: 112 }).flopsPerView;
    push({
      task: 'Swin-T train step 1x3x8x112x112',
      ours: best(r.seconds.train),
      macs: 3 * macs,
      torch: pt ? best(pt.seconds.train) : undefined,
      rssOurs: r.maxRssMiB,
      rssTorch: pt?.maxRssMiB,
      note: 'fwd + CE + bwd + AdamW',
    });
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (only.has('leak')) {
  const model = createVideoSwin(fixtureConfig());
  const x = tf.tensor(normalClip([8, 3, 9, 58, 50], 2), [8, 3, 9, 58, 50]);
  const labels = [0, 1, 2, 3, 4, 0, 1, 2];
  const step = trainer(model);
  step(x, labels, true);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) step(x, labels, true);
  console.log(`tensors left after 20 training steps: ${tf.memory().numTensors - before}`);
  x.dispose();
  model.dispose();
}

const ratio = (a: number, b?: number) => (b === undefined ? '—' : `${(a / b).toFixed(2)}x`);
const mib = (v?: number) => (v === undefined ? '—' : `${v.toFixed(0)} MiB`);
const header = [
  'task',
  'kernels',
  'ours (best)',
  'GFLOP/s',
  '% peak',
  'ONNX Runtime',
  'ours/ORT',
  'CPU s ours/ORT',
  'PyTorch',
  'ours/PyTorch',
  'RSS ours',
  'RSS ORT',
  'RSS PyTorch',
  'note',
];
const table = rows.map((r) => {
  const rate = gflops(r.macs, r.ours);
  return [
    r.task,
    tierLabel,
    fmt(r.ours),
    rate.toFixed(1),
    peak ? `${((100 * rate) / peak).toFixed(0)} %` : '—',
    r.onnx === undefined ? '—' : `${fmt(r.onnx)}${peak ? ` (${((100 * gflops(r.macs, r.onnx)) / peak).toFixed(0)} % peak)` : ''}`,
    ratio(r.ours, r.onnx),
    r.cpuOurs === undefined || r.cpuOnnx === undefined
      ? '—'
      : `${r.cpuOurs.toFixed(2)}/${r.cpuOnnx.toFixed(2)} = ${ratio(r.cpuOurs, r.cpuOnnx)}`,
    r.torch === undefined ? '—' : fmt(r.torch),
    ratio(r.ours, r.torch),
    mib(r.rssOurs),
    mib(r.rssOnnx),
    mib(r.rssTorch),
    r.note ?? '',
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
for (const r of [header, ...table]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
const i16 = rows.find((r) => r.task.includes('1x3x16x'));
const i32 = rows.find((r) => r.task.includes('1x3x32x'));
if (i16 && i32) {
  const ortScaling = i16.onnx && i32.onnx ? `, ONNX Runtime ${(i32.onnx / i16.onnx).toFixed(2)}x` : '';
  console.log(`32 frames / 16 frames (2x the work): ours ${(i32.ours / i16.ours).toFixed(2)}x${ortScaling}`);
}
console.log(
  "times: best of the timed runs after a warm-up, each task in its own process (RSS = that process's peak); GFLOP/s counts " +
    '2 x multiply-adds (model info), a train step as 3x its forward; % peak against the measured FMA loop; CPU s = user + ' +
    'system seconds of the whole process in the best run (other load inflates it less than wall time).',
);
for (const note of notes) console.log(`note: ${note}`);
console.log(`load average at the end: ${load()} — other work on the machine slows every column; compare ratios, not seconds`);
