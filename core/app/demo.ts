// The demo, one recipe for both doors: `vswin demo` and the workbench's first run ("demo-micro" on
// the Config page) train the same model on the same generated dataset with the same config, so they
// reach the same validation top-1 (100 % here, >= 90 % is the promise) in the same time.
//
// The dataset: videos of a white square crossing a random texture in one of four directions at
// 1 px/frame (data/synth.ts with a solid square; its default checkered square at 2 px/frame
// aliases). The model: a two-stage Video Swin (one PatchMerging, so pooled features stay nearly
// translation invariant; with four stages the 32-px input ends on one token and position swamps
// motion). Learning starts after a plateau of 20-30 epochs; with lr 1e-3 over 60 epochs a run here
// reached 100 % val top-1 (lr 2e-3 was less stable).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticDataset } from '../data/synth.ts';
import { writeFileAtomicSync } from '../files/atomic.ts';
import type { DatasetRef } from '../protocol/workbench.ts';

export const DEMO_NAME = 'demo (synthetic motion)';

/** The demo dataset's recipe (data/synth.ts options). */
export const DEMO_DATA = {
  classes: 4,
  perClass: 100,
  frames: 40,
  size: 32,
  speed: 1,
  square: 'solid' as const,
  seed: 0,
  valFraction: 0.2,
};

/** Smaller demo datasets for tests (the recipe's config is the same). */
export type DemoOptions = Partial<Pick<typeof DEMO_DATA, 'classes' | 'perClass' | 'frames' | 'size'>>;

export function demoFolder(home: string): string {
  return join(home, 'datasets', 'demo');
}

/** The demo dataset of a workbench home, or null before it is generated. */
export function demoDataset(home: string): DatasetRef | null {
  const folder = demoFolder(home);
  const labelMap = join(folder, 'classes.txt');
  if (!existsSync(join(folder, 'train.txt')) || !existsSync(join(folder, 'val.txt')) || !existsSync(labelMap)) return null;
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

/**
 * Generates the demo dataset into the home when it is missing or was made from another recipe (an
 * older workbench, or a test's smaller one); returns it either way. `onNote` hears what happens.
 */
export async function ensureDemoDataset(
  home: string,
  options: DemoOptions = {},
  onNote: (line: string) => void = () => {},
): Promise<DatasetRef> {
  const recipe = { ...DEMO_DATA, ...options };
  const folder = demoFolder(home);
  const stamp = join(folder, 'recipe.json');
  const text = `${JSON.stringify(recipe)}\n`;
  const existing = demoDataset(home);
  if (existing && existsSync(stamp) && readFileSync(stamp, 'utf8') === text) return existing;
  onNote(`generating the demo dataset (${recipe.classes} x ${recipe.perClass} videos) in ${folder}; once per home`);
  rmSync(folder, { recursive: true, force: true });
  await generateSyntheticDataset({ outDir: folder, ...recipe });
  writeFileAtomicSync(stamp, text);
  const made = demoDataset(home);
  if (!made) throw new Error(`demo dataset: generation in ${folder} left no train.txt/val.txt/classes.txt`);
  return made;
}

/** The demo's run config on its dataset. */
export function demoRunConfig(dataset: DatasetRef): Record<string, unknown> {
  return {
    description:
      'The demo: a two-stage micro Video Swin on generated videos of a white square moving in one of four directions (vswin demo runs the same).',
    model: {
      variant: 'micro',
      backbone: { embed_dim: 32, depths: [2, 2], num_heads: [2, 4] },
      num_classes: Math.max(2, dataset.classes.length),
      drop_path_rate: 0,
      head_dropout: 0,
    },
    data: {
      train_ann: dataset.trainAnn,
      val_ann: dataset.valAnn,
      root: dataset.root,
      classes: dataset.labelMap,
      // No spatial augmentation (area_range [1, 1] keeps the whole frame): in our runs the random
      // resized crop kept the model from learning the sign of the motion at all.
      pipeline: {
        preset: 'small',
        clip_len: 8,
        frame_interval: 1,
        short_side: DEMO_DATA.size,
        crop_size: DEMO_DATA.size,
        area_range: [1, 1],
        test_clips: 3,
        test_crops: 1,
      },
      workers: 2,
      cache: true,
    },
    optimizer: { lr: 1e-3, weight_decay: 0.05, paramwise: 'none' },
    schedule: { warmup_epochs: 1 },
    epochs: 60,
    batch_size: 8,
    seed: 0,
    evaluation: { interval: 5, metric: 'top1' },
    checkpoint: { keep_last: 2, save_best: true },
  };
}

/** A quick first config for another dataset of small clips: the micro model, 8-frame 32x32 clips, a few epochs. */
export function microRunConfig(dataset: DatasetRef): Record<string, unknown> {
  return {
    description: 'Micro Video Swin: 8-frame 32x32 clips, a few seconds per epoch on a CPU.',
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
