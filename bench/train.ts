// npm run bench:train: end-to-end training throughput (data included) and the time `vswin demo`
// takes to reach its final accuracy, on this machine. Prints a table and a JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../core/engine/backend.ts';
import { generateSyntheticDataset } from '../core/data/synth.ts';
import { dataSources } from '../core/app/training.ts';
import { buildModel } from '../core/train/model-setup.ts';
import { resolveRunConfig } from '../core/train/run-config.ts';
import { train } from '../core/train/trainer.ts';
import { DEMO_DATA as DEMO, demoRunConfig } from '../core/app/demo.ts';
import { directionNames } from '../core/data/synth.ts';

/** The demo recipe's run config on the dataset generated into `dataDir`. */
const demoConfig = (dataDir: string) =>
  demoRunConfig({
    name: 'demo',
    root: join(dataDir, 'videos'),
    trainAnn: join(dataDir, 'train.txt'),
    valAnn: join(dataDir, 'val.txt'),
    labelMap: join(dataDir, 'classes.txt'),
    classes: directionNames(DEMO.classes),
  });

const BIN = fileURLToPath(new URL('../bin/vswin.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'vswin-bench-train-'));
const skipDemo = process.argv.includes('--no-demo');

async function throughput(
  cache: boolean,
  backend: string,
): Promise<{ clipsPerSecond: number; iterations: number; seconds: number }> {
  const dataDir = join(work, 'data');
  const raw = demoConfig(dataDir) as { data: Record<string, unknown>; epochs: number };
  raw.data.cache = cache;
  raw.data.val_ann = null;
  raw.epochs = 1;
  const config = resolveRunConfig({ ...raw, max_iterations_per_epoch: 30 }, work);
  const sources = await dataSources(config);
  const { model } = buildModel(config);
  let clips = 0;
  let started = 0;
  let iterations = 0;
  try {
    await train({
      runId: `bench-${cache ? 'cache' : 'stream'}`,
      config,
      model,
      train: sources.train,
      val: null,
      runDir: join(work, 'run'),
      registry: null,
      backend,
      onEvent: (event) => {
        if (event.kind !== 'iteration') return;
        // The first iterations include kernel warm-up; time from the third on.
        if (event.iteration === 2) started = performance.now();
        if (event.iteration >= 2) {
          clips += config.batch_size;
          iterations += 1;
        }
      },
    });
  } finally {
    model.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  return { clipsPerSecond: clips / seconds, iterations, seconds };
}

function runDemo(): Promise<{ seconds: number; top1: number | null; output: string }> {
  const home = join(work, 'demo-home');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'demo', '--home', home], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('exit', () => {
      const match = /val top-1 ([\d.]+)%/.exec(output);
      resolve({ seconds: (performance.now() - started) / 1000, top1: match ? Number(match[1]) / 100 : null, output });
    });
  });
}

try {
  const backend = await initBackend(process.env.VSWIN_BACKEND);
  process.stderr.write(
    `backend ${backend.name}; generating the demo dataset (${DEMO.classes} x ${DEMO.perClass} videos, ${DEMO.size}px) ...\n`,
  );
  await generateSyntheticDataset({ outDir: join(work, 'data'), ...DEMO });
  const streaming = await throughput(false, backend.name);
  const cached = await throughput(true, backend.name);
  const demo = skipDemo ? null : await runDemo();
  const cfg = demoConfig('') as { batch_size: number; data: { pipeline: { clip_len: number; crop_size: number } } };
  const clip = `${cfg.data.pipeline.clip_len}x${cfg.data.pipeline.crop_size}x${cfg.data.pipeline.crop_size}`;
  console.log('');
  console.log(
    `training throughput, the demo recipe (two-stage Video Swin, embed 32), clips ${clip}, batch ${cfg.batch_size}, ${backend.name}:`,
  );
  console.log(
    `  streaming loader (ffmpeg per sample): ${streaming.clipsPerSecond.toFixed(1)} clips/s over ${streaming.iterations} iterations`,
  );
  console.log(
    `  in-memory cache (data.cache):         ${cached.clipsPerSecond.toFixed(1)} clips/s over ${cached.iterations} iterations`,
  );
  if (demo)
    console.log(
      `vswin demo: ${demo.seconds.toFixed(0)} s to final val top-1 ${demo.top1 === null ? 'unknown' : `${(demo.top1 * 100).toFixed(1)}%`} (target >= 90% in < 600 s)`,
    );
  console.log(
    JSON.stringify({
      backend: backend.name,
      clip,
      streamingClipsPerSecond: streaming.clipsPerSecond,
      cachedClipsPerSecond: cached.clipsPerSecond,
      demoSeconds: demo?.seconds ?? null,
      demoTop1: demo?.top1 ?? null,
    }),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
