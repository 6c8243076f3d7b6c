import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkConfigFiles,
  loadRunConfig,
  modelConfigOf,
  parseRunConfig,
  presetJson,
  presetNames,
  resolveRunConfig,
} from '../../core/train/run-config.ts';
import { parseViews, pipelineFor } from '../../core/train/data-source.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vswin-config-'));
  dirs.push(dir);
  return dir;
}

const minimal = {
  model: { variant: 'micro', num_classes: 4 },
  data: { train_ann: 'train.txt', root: 'videos', pipeline: { preset: 'small' } },
  optimizer: { lr: 1e-3, weight_decay: 0.05 },
  epochs: 2,
  batch_size: 4,
};

describe('run config', () => {
  it('ships the official recipes with the fact sheet values', () => {
    expect(presetNames()).toEqual(
      expect.arrayContaining([
        'k400-swin-t',
        'k400-swin-s',
        'k400-swin-b-1k',
        'k400-swin-b-22k',
        'k600-swin-b-22k',
        'ssv2-swin-b',
      ]),
    );
    const t = parseRunConfig(presetJson('k400-swin-t'));
    expect([t.optimizer.lr, t.optimizer.weight_decay, t.epochs, t.batch_size, t.update_interval, t.model.drop_path_rate]).toEqual(
      [1e-3, 0.02, 30, 2, 4, 0.1],
    );
    expect(t.schedule).toEqual({ policy: 'cosine', min_lr: 0, warmup_epochs: 2.5, warmup_ratio: 0.1 });
    expect(t.optimizer.paramwise).toBe('official');
    const b = parseRunConfig(presetJson('k400-swin-b-1k'));
    expect([b.optimizer.weight_decay, b.model.drop_path_rate, b.batch_size * b.update_interval]).toEqual([0.05, 0.3, 8]);
    const b22 = parseRunConfig(presetJson('k400-swin-b-22k'));
    expect([b22.optimizer.lr, b22.model.drop_path_rate]).toEqual([3e-4, 0.2]);
    expect(parseRunConfig(presetJson('k600-swin-b-22k')).model.num_classes).toBe(600);
    const ssv2 = parseRunConfig(presetJson('ssv2-swin-b'));
    expect([
      ssv2.model.variant,
      ssv2.model.num_classes,
      ssv2.epochs,
      ssv2.loss.label_smoothing,
      ssv2.model.drop_path_rate,
      ssv2.optimizer.lr,
    ]).toEqual(['swin_b_ssv2', 174, 60, 0.1, 0.4, 3e-4]);
    expect(modelConfigOf(ssv2).backbone.window_size).toEqual([16, 7, 7]);
    // Test views: K400 4 clips x 3 crops, SSv2 1 x 3.
    expect(pipelineFor(t, 'test').sampling.numClips).toBe(4);
    expect(pipelineFor(t, 'test').crop.kind).toBe('three');
    expect(pipelineFor(ssv2, 'test').crop.kind).toBe('three');
    // SSv2 trains with imgaug RandAugment(n=4, m=7) unless the config turns it off or changes it.
    expect(pipelineFor(ssv2, 'train').randAugment).toEqual({ n: 4, m: 7, cval: 128, flipRatio: 0.5 });
    expect(pipelineFor(ssv2, 'val').randAugment).toBeUndefined();
    const pipelineOf = (extra: Record<string, unknown>) => {
      const value = presetJson('ssv2-swin-b') as { data: { pipeline: Record<string, unknown> } };
      return parseRunConfig({ ...value, data: { ...value.data, pipeline: { ...value.data.pipeline, ...extra } } });
    };
    expect(pipelineFor(pipelineOf({ rand_augment: false }), 'train').randAugment).toBeUndefined();
    expect(pipelineFor(pipelineOf({ rand_augment: { n: 2, m: 9, flip_ratio: 0 } }), 'train').randAugment).toEqual({
      n: 2,
      m: 9,
      cval: 128,
      flipRatio: 0,
    });
    expect(() => pipelineOf({ rand_augment: { n: 2 } })).toThrow(/rand_augment/);
    // The small CPU presets parse and build a valid model config.
    for (const name of ['cpu-small', 'cpu-tiny']) {
      const small = parseRunConfig(presetJson(name), name);
      expect(modelConfigOf(small).num_classes).toBeGreaterThan(1);
    }
    expect(modelConfigOf(parseRunConfig(presetJson('cpu-small'))).backbone.depths).toEqual([2, 2]);
  });

  it('names the field, the value received and what is allowed', () => {
    const bad = structuredClone(minimal) as Record<string, any>;
    bad.model.variant = 'swin_xl';
    bad.optimizer.lr = -1;
    bad.data.pipeline.preset = 'kinetics';
    bad.batch_size = 2.5;
    bad.epochz = 3;
    let message = '';
    try {
      parseRunConfig(bad, 'my.json');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('Invalid my.json');
    expect(message).toMatch(/model\.variant: unknown variant; allowed: swin_t, swin_s, .*micro \(received "swin_xl"\)/);
    expect(message).toMatch(/optimizer\.lr: .* \(received -1\)/);
    expect(message).toMatch(/data\.pipeline\.preset: expected one of "k400", "ssv2", "small" \(received "kinetics"\)/);
    expect(message).toMatch(/batch_size: .* \(received 2\.5\)/);
    expect(message).toMatch(/\(root\): unknown field\(s\) "epochz"/);
  });

  it('extends a preset, resolves paths against the config file, and lists missing files', () => {
    const dir = tempDir();
    const file = join(dir, 'run.json');
    writeFileSync(
      file,
      JSON.stringify({
        extends: 'k400-swin-t',
        model: { num_classes: 10 },
        data: { train_ann: 'lists/train.txt', root: 'clips' },
        epochs: 3,
      }),
    );
    const config = loadRunConfig(file);
    expect(config.model.variant).toBe('swin_t');
    expect(config.model.num_classes).toBe(10);
    expect(config.epochs).toBe(3);
    expect(config.optimizer.lr).toBe(1e-3);
    expect(config.data.train_ann).toBe(join(dir, 'lists/train.txt'));
    // The preset's val_ann is relative too: it resolves against the user's folder.
    expect(config.data.val_ann).toBe(join(dir, 'data/kinetics400/val.txt'));
    expect(() => checkConfigFiles(config)).toThrow(/data\.train_ann: .*lists\/train\.txt does not exist/);
    expect(() => loadRunConfig(join(dir, 'nope.json'))).toThrow(/nope\.json: file not found/);
    writeFileSync(join(dir, 'broken.json'), '{"model": ');
    expect(() => loadRunConfig(join(dir, 'broken.json'))).toThrow(/broken\.json: not valid JSON/);
    expect(() => resolveRunConfig({ ...minimal, extends: 'nope' }, dir)).toThrow(
      /unknown preset "nope"; allowed: cpu-small, cpu-tiny, k400-swin-b-1k/,
    );
  });

  it('refuses a num_classes that does not match the label map', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'train.txt'), 'a.mp4 0\n');
    writeFileSync(join(dir, 'classes.txt'), 'left\nright\nup\ndown\n');
    const base = { ...minimal, data: { ...minimal.data, root: '.', classes: 'classes.txt' } };
    const seven = resolveRunConfig({ ...base, model: { variant: 'micro', num_classes: 7 } }, dir);
    expect(() => checkConfigFiles(seven)).toThrow(
      `The run config does not fit its label map:\n  model.num_classes: 7, but the label map data.classes (${join(dir, 'classes.txt')}) names 4 classes; set model.num_classes to 4 or use the matching label map`,
    );
    expect(() => checkConfigFiles(resolveRunConfig(base, dir))).not.toThrow();
  });

  it('requires a complete backbone without a variant, and one of pretrained/load_from', () => {
    expect(() => parseRunConfig({ ...minimal, model: { num_classes: 3, backbone: { embed_dim: 8 } } })).toThrow(
      /model\.backbone\.patch_size/,
    );
    expect(() =>
      parseRunConfig({ ...minimal, model: { variant: 'micro', num_classes: 3, pretrained: 'a.pth', load_from: 'b.pth' } }),
    ).toThrow(/not both/);
  });

  it('parses view protocols', () => {
    expect(parseViews('4x3')).toEqual({ clips: 4, crops: 3 });
    expect(() => parseViews('4x2')).toThrow(
      '--views: expected CLIPSxCROPS with CLIPS >= 1 and CROPS 1 or 3 (e.g. 4x3, 1x1), received "4x2"',
    );
  });
});
