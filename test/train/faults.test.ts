// Faults during training on real generated videos and a real registry: unreadable videos are skipped
// and counted per epoch in both the in-memory cache and the streaming loader, and the counts land in
// the registry; a full disk (a small tmpfs when the machine allows mounting one) names the path and
// leaves the run `failed` with its last good checkpoint.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { generateSyntheticDataset } from '../../core/data/synth.ts';
import { Registry } from '../../core/registry/registry.ts';
import { parseRunConfig, type RunConfig } from '../../core/train/run-config.ts';
import { createRun, runTraining } from '../../core/app/training.ts';
import type { TrainEvent } from '../../core/protocol/train.ts';

let dir: string;
let data: string;

/** A run created and trained the way both doors do it (core/app/training.ts). */
async function runTrainingSession(options: {
  config: RunConfig;
  configPath: string | null;
  home: string;
  backend: string;
  onNote?: (line: string) => void;
  onEvent?: (event: TrainEvent) => void;
}) {
  const registry = Registry.open(options.home);
  try {
    const prepared = createRun(registry, options);
    const result = await runTraining({
      registry,
      prepared,
      backend: options.backend,
      onNote: options.onNote,
      onEvent: options.onEvent,
    });
    return { run: registry.requireRun(prepared.run.id), result };
  } finally {
    registry.close();
  }
}

function runConfig(root: string, cache: boolean, epochs = 2): RunConfig {
  return parseRunConfig({
    model: { variant: 'micro', num_classes: 2, drop_path_rate: 0, head_dropout: 0 },
    data: {
      train_ann: join(root, 'train-with-bad.txt'),
      val_ann: join(root, 'val.txt'),
      root: join(root, 'videos'),
      pipeline: { preset: 'small', clip_len: 4, frame_interval: 1, short_side: 16, crop_size: 16 },
      workers: 1,
      cache,
    },
    optimizer: { lr: 1e-3, weight_decay: 0.05, paramwise: 'none' },
    schedule: { warmup_epochs: 0 },
    epochs,
    batch_size: 2,
    seed: 1,
  });
}

beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'vswin-faults-'));
  data = join(dir, 'data');
  await generateSyntheticDataset({ outDir: data, classes: 2, perClass: 3, seed: 5, frames: 8, size: 16 });
  // Two bad videos among the good ones: random bytes named .mp4, and an empty file.
  writeFileSync(
    join(data, 'videos', 'garbage.mp4'),
    Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff),
  );
  writeFileSync(join(data, 'videos', 'empty.mp4'), new Uint8Array(0));
  const train = readFileSync(join(data, 'train.txt'), 'utf8').trim();
  writeFileSync(join(data, 'train-with-bad.txt'), `${train}\ngarbage.mp4 0\nempty.mp4 1\n`);
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bad videos are skipped and counted', () => {
  for (const cache of [true, false]) {
    it(`${cache ? 'in-memory cache' : 'streaming loader'}: trains, skips both bad videos each epoch, records them`, async () => {
      const home = join(dir, `home-${cache ? 'cached' : 'streaming'}`);
      const notes: string[] = [];
      const skippedPerEpoch: number[] = [];
      const session = await runTrainingSession({
        config: runConfig(data, cache),
        configPath: null,
        home,
        backend: 'wasm',
        onNote: (line) => notes.push(line),
        onEvent: (event) => {
          if (event.kind === 'epoch') skippedPerEpoch.push(event.skipped);
        },
      });
      expect(session.result.status).toBe('completed');
      expect(session.result.skipped).toBe(4); // 2 bad videos x 2 epochs
      // The Training page counts them from the epoch events.
      expect(skippedPerEpoch).toEqual([2, 2]);
      const registry = Registry.open(home);
      try {
        const skipped = registry.skippedSamples(session.run.id);
        expect(skipped.map((s) => [s.epoch, s.split, s.path])).toEqual([
          [1, 'train', 'empty.mp4'],
          [1, 'train', 'garbage.mp4'],
          [2, 'train', 'empty.mp4'],
          [2, 'train', 'garbage.mp4'],
        ]);
        for (const sample of skipped) expect(sample.reason.length).toBeGreaterThan(5);
        expect(registry.skippedCounts(session.run.id)).toEqual({
          total: 4,
          byEpoch: [
            { epoch: 1, split: 'train', count: 2 },
            { epoch: 2, split: 'train', count: 2 },
          ],
        });
      } finally {
        registry.close();
      }
      expect(notes.some((line) => line.startsWith('skipped 4 samples over the run'))).toBe(true);
    }, 180_000);
  }

  it('a run whose videos are all unreadable ends failed with the reason, not created', async () => {
    const root = join(dir, 'all-bad');
    mkdirSync(join(root, 'videos'), { recursive: true });
    writeFileSync(join(root, 'videos', 'a.mp4'), new Uint8Array(0));
    writeFileSync(join(root, 'train-with-bad.txt'), 'a.mp4 0\n');
    writeFileSync(join(root, 'val.txt'), 'a.mp4 0\n');
    const home = join(dir, 'home-all-bad');
    await expect(runTrainingSession({ config: runConfig(root, true), configPath: null, home, backend: 'wasm' })).rejects.toThrow(
      /train-with-bad\.txt: no usable samples; all 1 videos were skipped \(first: a\.mp4: /,
    );
    const registry = Registry.open(home);
    try {
      const [run] = registry.listRuns();
      expect(run.status).toBe('failed');
      expect(run.message).toMatch(/no usable samples/);
    } finally {
      registry.close();
    }
  });
});

/** Mounts a small tmpfs when the machine allows it (root in a container that permits mounts). */
function mountTmpfs(target: string, size: string): boolean {
  mkdirSync(target, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', target], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('a full disk', () => {
  const mount = join(tmpdir(), `vswin-full-${process.pid}`);
  const mounted = mountTmpfs(mount, '24m');
  afterAll(() => {
    if (mounted) execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  });

  it.skipIf(!mounted)(
    'names the path, leaves the run failed with its last good checkpoint, and leaves no temporary behind',
    async () => {
      const home = join(mount, 'home');
      const filler = join(mount, 'filler');
      const events: TrainEvent[] = [];
      let filled = false;
      const session = runTrainingSession({
        config: { ...runConfig(data, true, 4), checkpoint: { ...runConfig(data, true).checkpoint, keep_last: 4 } },
        configPath: null,
        home,
        backend: 'wasm',
        onEvent: (event) => {
          events.push(event);
          // After the first checkpoint, the disk fills up (another program, a download...).
          if (event.kind === 'checkpoint' && !filled) {
            filled = true;
            const chunk = new Uint8Array(256 * 1024);
            let index = 0;
            try {
              for (;;) writeFileSync(join(filler, `${index++}`), chunk, { flag: 'wx' });
            } catch {
              // ENOSPC: the disk is full
            }
          }
        },
      });
      mkdirSync(filler, { recursive: true });
      const outcome = await session.then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error: error as Error }),
      );
      expect(filled).toBe(true);
      const message = outcome.ok ? (outcome.value.result.message ?? '') : outcome.error.message;
      if (outcome.ok) expect(outcome.value.result.status).toBe('failed');
      console.log(`disk full after epoch 1: ${message}`);
      // The message names the file that could not be written: a checkpoint or the registry.
      expect(message).toMatch(new RegExp(`${mount}/home/(runs/[^ ]+\\.safetensors|registry\\.sqlite)`));
      expect(message).toMatch(/ENOSPC|disk is full/);
      rmSync(filler, { recursive: true, force: true });
      const registry = Registry.open(home);
      try {
        const [run] = registry.listRuns();
        expect(run.status).toBe('failed');
        const checkpoints = registry.checkpoints(run.id);
        expect(checkpoints.length).toBeGreaterThanOrEqual(1);
        const last = checkpoints.at(-1)!;
        expect(existsSync(last.path) && existsSync(last.statePath!)).toBe(true);
        const folder = join(run.runDir, 'checkpoints');
        expect(readdirSync(folder).filter((name) => name.endsWith('.tmp'))).toEqual([]);
      } finally {
        registry.close();
      }
      expect(
        events.filter((event) => event.kind === 'run-finished').map((event) => event.kind === 'run-finished' && event.status),
      ).toEqual(['failed']);
    },
    180_000,
  );
});
