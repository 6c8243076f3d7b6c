import { initBackend } from './core/engine/backend.ts';
import { tf } from './core/engine/tf.ts';
import { createVideoSwin } from './core/model/video-swin.ts';
import { parseRunConfig, modelConfigOf } from './core/train/run-config.ts';
import { demoConfig } from './core/host/cli/train-commands.ts';
import { crossEntropy } from './core/engine/ops.ts';
import { AdamW } from './core/train/adamw.ts';
import { paramGroups } from './core/train/param-groups.ts';
const backend = process.argv[2];
await initBackend(backend);
const raw = demoConfig('/tmp/x') as any;
const cfg = parseRunConfig(raw);
const model = createVideoSwin(modelConfigOf(cfg), { seed: 1 });
const names = [...model.params.keys()];
const opt = new AdamW(model.params, paramGroups(names, 1e-3, 0.05, {}), { betas: [0.9, 0.999], eps: 1e-8 });
const input = new Float32Array(8 * 3 * 8 * 32 * 32).map(() => Math.random());
const labels = Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]);
for (let i = 0; i < 6; i++) {
  const t0 = performance.now();
  const x = tf.tensor(input, [8, 3, 8, 32, 32]);
  const { value, grads } = model.gradients(() => crossEntropy(model.forward(x).logits, labels));
  x.dispose();
  opt.step(grads, (g) => g.lr);
  const loss = (await value.data())[0];
  tf.dispose([value, ...grads.values()]);
  console.log(backend, i, loss.toFixed(4), (performance.now() - t0).toFixed(0), 'ms', tf.memory().numTensors);
}
