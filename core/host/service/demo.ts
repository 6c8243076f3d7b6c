// The demo the workbench opens with: a small synthetic motion dataset in the workbench home
// (generated once by the data engine) and a run config for the micro model that trains on it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticDataset } from '../../data/synth.ts';
import type { DatasetRef } from '../../protocol/workbench.ts';

export const DEMO_NAME = 'demo (synthetic motion)';

export interface DemoOptions {
  classes?: number;
  perClass?: number;
  frames?: number;
  size?: number;
}

export function demoFolder(home: string): string {
  return join(home, 'datasets', 'demo');
}

export function demoDataset(home: string): DatasetRef | null {
  const folder = demoFolder(home);
  const labelMap = join(folder, 'classes.txt');
  if (!existsSync(join(folder, 'train.txt')) || !existsSync(labelMap)) return null;
  const classes = readFileSync(labelMap, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return {
    name: DEMO_NAME,
    root: join(folder, 'videos'),
    trainAnn: join(folder, 'train.txt'),
    valAnn: join(folder, 'val.txt'),
    labelMap,
    classes,
  };
}

/** Generates the demo dataset when it is missing; returns it either way. */
export async function ensureDemoDataset(home: string, options: DemoOptions = {}): Promise<DatasetRef> {
  const existing = demoDataset(home);
  if (existing) return existing;
  await generateSyntheticDataset({
    outDir: demoFolder(home),
    classes: options.classes ?? 4,
    perClass: options.perClass ?? 8,
    seed: 0,
    frames: options.frames ?? 16,
    size: options.size ?? 32,
    valFraction: 0.25,
    // The `vswin demo` recipe's look: a solid square at 1 px/frame (a checkered one at 2 px/frame aliases).
    speed: 1,
    square: 'solid',
  });
  const made = demoDataset(home);
  if (!made) throw new Error(`demo dataset: generation in ${demoFolder(home)} left no train.txt/classes.txt`);
  return made;
}

/** A run config for the micro model on a dataset of 32x32 clips: seconds per epoch on a laptop CPU. */
export function demoRunConfig(dataset: DatasetRef): Record<string, unknown> {
  return {
    description: 'Micro Video Swin on the synthetic motion demo: 8-frame 32x32 clips, a few seconds per epoch on a CPU.',
    model: { variant: 'micro', num_classes: Math.max(2, dataset.classes.length), drop_path_rate: 0, head_dropout: 0 },
    data: {
      train_ann: dataset.trainAnn,
      val_ann: dataset.valAnn,
      root: dataset.root,
      classes: dataset.labelMap,
      pipeline: { preset: 'small', clip_len: 8, frame_interval: 1, short_side: 32, crop_size: 32 },
      workers: 2,
    },
    optimizer: { lr: 0.002, weight_decay: 0.02, paramwise: 'none' },
    schedule: { warmup_epochs: 0.5 },
    epochs: 3,
    batch_size: 4,
    seed: 0,
    checkpoint: { interval: 1, keep_last: 2, save_best: true },
  };
}
