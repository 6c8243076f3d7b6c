// `npm run bench:model`: speed and memory of the model on the chosen backend, with ratios to PyTorch
// 1.13 on this same 2-core machine (fact sheet section 10). Prints figures; asserts nothing.
//   npm run bench:model -- [--backend webgpu|wasm|cpu|tensorflow] [--only fixture,infer16,infer32,train,leak] [--profile]
// Reads back asynchronously (webgpu has no synchronous read in Node). On webgpu the adapter is named; on a
// software one (llvmpipe) the figures only prove that it runs.
// The kernel tier and its threads come from VSWIN_KERNELS and VSWIN_WASM_THREADS; the table names them.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../core/engine/backend.ts';
import { fastKernelStatus } from '../core/engine/kernels/index.ts';
import { describeAdapter } from '../core/engine/webgpu/adapter.ts';
import { crossEntropy } from '../core/engine/ops.ts';
import { Random } from '../core/engine/random.ts';
import { tf } from '../core/engine/tf.ts';
import { parseModelConfig } from '../core/model/config.ts';
import { createVideoSwin, type VideoSwin } from '../core/model/video-swin.ts';
import { AdamW } from '../core/train/adamw.ts';
import { OFFICIAL_CUSTOM_KEYS, paramGroups } from '../core/train/param-groups.ts';

const PYTORCH = { fixtureStep: 0.155, infer16: 1.87, infer32: 4.46, trainStep: 0.57 };

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    only: { type: 'string', default: 'fixture,infer16,infer32,train,leak' },
    profile: { type: 'boolean', default: false },
  },
});
const only = new Set(values.only!.split(','));
const choice = await initBackend(values.backend);
console.log(
  `backend: ${choice.name} (${choice.reason}); load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
if (choice.adapter) {
  console.log(
    `adapter: ${describeAdapter(choice.adapter)}; fused WGSL kernels: ${choice.kernels?.join(', ') || 'none (VSWIN_KERNELS=stock)'}`,
  );
}
const kernels = fastKernelStatus();
console.log(
  `kernels: ${kernels.tier} tier${kernels.isa ? `, ${kernels.isa}` : ''}, ${kernels.threads} thread(s) (${kernels.reason})`,
);
/** The tier each row ran on, e.g. "wasm x2" (VSWIN_KERNELS and VSWIN_WASM_THREADS choose it). */
const tierLabel = () => {
  const { tier, threads } = fastKernelStatus();
  if (choice.name === 'webgpu') return choice.kernels?.length ? 'webgpu + WGSL' : 'webgpu stock';
  return choice.name === 'wasm' ? `${tier} x${threads}` : choice.name;
};

function randomClip(shape: number[], seed: number): tf.Tensor {
  const random = new Random(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal()),
    shape,
  );
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

/** Inference with the logits read back (the read waits for the device). */
async function predict(model: VideoSwin, x: tf.Tensor): Promise<void> {
  const logits = model.predict(x);
  await logits.data();
  logits.dispose();
}

async function timeIt(runs: number, fn: () => void | Promise<void>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  return (performance.now() - started) / 1000 / runs;
}

const rows: string[][] = [];
const row = (task: string, ours: number, unit: string, reference: number, note = '') =>
  rows.push([
    task,
    tierLabel(),
    `${ours.toFixed(3)} ${unit}`,
    `${reference.toFixed(3)} ${unit}`,
    `${(ours / reference).toFixed(2)}x`,
    note,
  ]);

if (only.has('fixture') || only.has('leak')) {
  const manifest = JSON.parse(
    readFileSync(fileURLToPath(new URL('../../shared/fixtures/parity/manifest.json', import.meta.url)), 'utf8'),
  );
  const config = parseModelConfig({ backbone: manifest.config.backbone, num_classes: manifest.config.num_classes });
  const model = createVideoSwin(config);
  const x = randomClip([8, 3, 9, 58, 50], 2);
  const labels = [0, 1, 2, 3, 4, 0, 1, 2];
  const step = trainer(model);
  await step(x, labels, true); // warm-up
  if (only.has('fixture')) {
    const fb = await timeIt(5, () => step(x, labels, false));
    row('fixture cfg 8x3x9x58x50 fwd+bwd', fb, 's', PYTORCH.fixtureStep, `${(8 / fb).toFixed(1)} clips/s vs 51.5`);
    const full = await timeIt(5, () => step(x, labels, true));
    row('  + AdamW step', full, 's', 0.178, `${(8 / full).toFixed(1)} clips/s vs 45`);
    const fwd = await timeIt(5, () => predict(model, x));
    row('  forward only', fwd, 's', 0.09, `${(8 / fwd).toFixed(1)} clips/s vs 89`);
  }
  if (only.has('leak')) {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) await step(x, labels, true);
    console.log(`tensors left after 20 training steps: ${tf.memory().numTensors - before}`);
  }
  x.dispose();
  model.dispose();
}

if (only.has('infer16') || only.has('infer32')) {
  const model = createVideoSwin('swin_t');
  for (const frames of [16, 32]) {
    if (!only.has(`infer${frames}`)) continue;
    const x = randomClip([1, 3, frames, 224, 224], 3);
    if (frames === 16 || !only.has('infer16')) await predict(model, x); // warm-up
    if (values.profile && frames === 16) {
      const profile = await tf.profile(() => predict(model, x));
      const byKernel = new Map<string, number>();
      for (const k of profile.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
      console.log(`per-kernel profile, Swin-T 1x3x16x224x224 inference (${(total / 1000).toFixed(2)} s in kernels):`);
      for (const [name, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 15))
        console.log(`  ${name.padEnd(20)} ${(ms / 1000).toFixed(2)} s  ${((100 * ms) / total).toFixed(1)} %`);
    }
    const seconds = await timeIt(1, () => predict(model, x));
    row(`Swin-T inference 1x3x${frames}x224x224`, seconds, 's', frames === 16 ? PYTORCH.infer16 : PYTORCH.infer32, 'per clip');
    x.dispose();
  }
  model.dispose();
}

if (only.has('train')) {
  const model = createVideoSwin('swin_t');
  const x = randomClip([1, 3, 8, 112, 112], 4);
  const step = trainer(model);
  await step(x, [7], true); // warm-up
  const seconds = await timeIt(3, () => step(x, [7], true));
  row('Swin-T train step 1x3x8x112x112', seconds, 's', PYTORCH.trainStep, 'fwd + CE + bwd + AdamW');
  x.dispose();
  model.dispose();
}

const header = ['task', 'kernels', 'ours', 'PyTorch 1.13', 'ratio (time)', 'note'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
