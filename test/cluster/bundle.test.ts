import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBundle, writeBundle } from '../../core/cluster/bundle.ts';
import { resolveRunConfig } from '../../core/train/run-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'vswin-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'train.txt'),
  Array.from({ length: 37 }, (_, i) => `class${i % 4}/video${i}.mp4 ${i % 4}`).join('\n') + '\n',
);
writeFileSync(join(dir, 'val.txt'), 'class0/a.mp4 0\nclass1/b.mp4 1\n');
writeFileSync(join(dir, 'classes.txt'), 'a\nb\nc\nd\n');

const config = (overrides: Record<string, unknown> = {}) =>
  resolveRunConfig(
    {
      extends: 'k400-swin-t',
      data: { train_ann: 'train.txt', val_ann: 'val.txt', root: 'videos', classes: 'classes.txt' },
      ...overrides,
    },
    dir,
  );

/** Values of `--flag=value` words on a line (both `#SBATCH --x=y` lines and the srun line). */
function flags(words: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of words) {
    const match = /^--([a-z-]+)=(.+)$/.exec(word);
    if (match) out[match[1]] = match[2];
  }
  return out;
}

// Python executes a config the way mmcv does for the overrides file (its _base_ is loaded separately).
function pythonEval(configText: string): Record<string, unknown> {
  const script = `import json, sys\nns = {}\nexec(sys.stdin.read(), ns)\nprint(json.dumps({k: v for k, v in ns.items() if not k.startswith('__')}, default=list))`;
  return JSON.parse(execFileSync('python3', ['-c', script], { input: configText, encoding: 'utf8' }));
}

describe('run bundle', () => {
  it('0.x: overrides only, LR scaled for the GPU count, sbatch resources equal to the srun line', () => {
    const bundle = buildBundle(config(), { flavor: '0.x', gpus: 4, nodes: 2, runId: 'r1', partition: 'gpu', cpusPerTask: 6 });
    const files = Object.fromEntries(bundle.files.map((file) => [file.path, file.content]));
    expect(Object.keys(files).sort()).toEqual([
      'annotations/train.txt',
      'annotations/val.txt',
      'config.py',
      'job.sbatch',
      'label_map.txt',
      'launch-torchrun.sh',
      'manifest.json',
    ]);
    const m = bundle.manifest;
    // 2 clips x 4 accumulation x 8 GPUs = 64 = the reference batch: the official LR is kept.
    expect(m.globalBatch).toBe(64);
    expect(m.scaledLr).toBeCloseTo(0.001, 12);
    // 37 videos over 8 ranks = 5 per rank, micro-batch 2 -> 3 iterations per epoch.
    expect(m.itersPerEpoch).toBe(3);
    const parsed = pythonEval(files['config.py']) as any;
    expect(parsed._base_).toEqual(['engine/configs/recognition/swin/swin_tiny_patch244_window877_kinetics400_1k.py']);
    expect(parsed.data.videos_per_gpu).toBe(8);
    expect(parsed.data.train).toMatchObject({ ann_file: 'annotations/train.txt', data_prefix: join(dir, 'videos') });
    expect(parsed.optimizer_config.update_interval).toBe(4);
    expect(parsed.total_epochs).toBe(30);
    expect(parsed.work_dir).toBe('./work');
    // Same variant as the base: the geometry stays the base's; pretrained as the run config says (none).
    expect(parsed.model.backbone).toEqual({ drop_path_rate: 0.1, pretrained: null, pretrained2d: false });
    expect(files['config.py']).toMatch(/betas=\(0\.9, 0\.999\)/);

    const lines = files['job.sbatch'].split('\n');
    const sbatch = flags(lines.filter((line) => line.startsWith('#SBATCH ')).map((line) => line.slice(8)));
    const srunLine = lines.find((line) => line.startsWith('srun '))!;
    const srun = flags(srunLine.split(' '));
    for (const key of ['nodes', 'ntasks', 'ntasks-per-node', 'gres', 'cpus-per-task', 'partition'])
      expect(srun[key]).toBe(sbatch[key]);
    expect(sbatch).toMatchObject({ nodes: '2', ntasks: '8', 'ntasks-per-node': '4', gres: 'gpu:4', 'cpus-per-task': '6' });
    expect(srunLine).toMatch(/--launcher=slurm/);
    expect(srunLine).toMatch(/--validate/);
    expect(files['job.sbatch']).toMatch(/MASTER_PORT=\$\(\(20000 \+ SLURM_JOB_ID % 10000\)\)/);
    execFileSync('bash', ['-n'], { input: files['job.sbatch'] });
    execFileSync('bash', ['-n'], { input: files['launch-torchrun.sh'] });
  });

  it('1.x: mmengine names, no double LR scaling, a small model overrides the base geometry', () => {
    const bundle = buildBundle(config({ model: { variant: 'micro', num_classes: 4 }, batch_size: 3, update_interval: 1 }), {
      flavor: '1.x',
      gpus: 2,
      nodes: 1,
      logInterval: 1,
    });
    const parsed = pythonEval(bundle.files.find((file) => file.path === 'config.py')!.content) as any;
    expect(parsed._base_[0]).toMatch(/swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb\.py$/);
    expect(parsed.model.backbone.arch).toEqual({ _delete_: true, embed_dims: 16, depths: [2, 2, 2, 2], num_heads: [1, 2, 4, 8] });
    expect(parsed.model.backbone.window_size).toEqual([2, 4, 4]);
    expect(parsed.model.backbone.pretrained).toBeNull();
    expect(parsed.model.cls_head).toMatchObject({ num_classes: 4, in_channels: 128 });
    // 3 clips x 2 GPUs = 6 of the reference 64.
    expect(parsed.optim_wrapper.optimizer.lr).toBeCloseTo((0.001 * 6) / 64, 12);
    expect(parsed.optim_wrapper.accumulative_counts).toBeUndefined();
    expect(parsed.auto_scale_lr.enable).toBe(false);
    expect(parsed.train_dataloader.dataset.data_prefix).toEqual({ video: join(dir, 'videos') });
    expect(parsed.default_hooks.logger).toEqual({ interval: 1 });
    expect(parsed.randomness).toEqual({ seed: 0 });
    expect(bundle.manifest.notes.join(' ')).toMatch(/micro has no official config/);
    const sbatch = bundle.files.find((file) => file.path === 'job.sbatch')!.content;
    expect(sbatch).not.toMatch(/--validate/);
    expect(sbatch).toMatch(/work\/last_checkpoint/);
  });

  it('writes the files atomically with executable scripts, and names bad inputs', () => {
    const bundle = buildBundle(config(), { flavor: '0.x', gpus: 1, nodes: 1, dataRoot: '/cluster/data/k400' });
    const out = join(dir, 'out');
    writeBundle(bundle, out);
    expect(readFileSync(join(out, 'config.py'), 'utf8')).toContain("'/cluster/data/k400'");
    expect(statSync(join(out, 'job.sbatch')).mode & 0o111).not.toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).scaledLr).toBeCloseTo(0.001 / 8, 12);
    expect(() => buildBundle(config(), { flavor: '2.x' as never, gpus: 1, nodes: 1 })).toThrow(
      /flavor: expected "0.x" or "1.x", received "2.x"/,
    );
    expect(() => buildBundle(config(), { flavor: '0.x', gpus: 0, nodes: 1 })).toThrow(
      /gpus: expected a positive integer, received 0/,
    );
    expect(() =>
      buildBundle(config({ data: { train_ann: 'missing.txt', root: 'videos' } }), { flavor: '0.x', gpus: 1, nodes: 1 }),
    ).toThrow(/data.train_ann: .*missing.txt does not exist/);
  });
});
