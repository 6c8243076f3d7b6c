import { PARITY_DIR } from '../../shared-fixtures.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../../core/model/weights/checkpoint.ts';
import { diagnoseCheckpoint, diagnoseLoaded, matchingVariants } from '../../../core/model/weights/doctor.ts';
import { readSafetensors, writeSafetensors } from '../../../core/model/weights/safetensors.ts';
import { parseModelConfig, type ModelConfig } from '../../../core/model/config.ts';
import type { TensorMap } from '../../../core/model/weights/types.ts';
import { OrderedDictSpec, TensorSpec, buildPth, storageBytes, type PickleInput } from './pth-writer.ts';
import { bitDifferences } from './compare.ts';

const fixtures = PARITY_DIR;
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as {
  config: { backbone: unknown; num_classes: number };
};
const visible: ModelConfig = parseModelConfig({ backbone: manifest.config.backbone, num_classes: manifest.config.num_classes });

let folder: string;
beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'vswin-checkpoint-'));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** Writes a .pth whose root is `root` with every fixture tensor re-emitted from its float32 data. */
function pthFrom(name: string, wrap: (entries: [string, PickleInput][]) => PickleInput, tensors: TensorMap): string {
  let key = 0;
  const entries: [string, PickleInput][] = [...tensors].map(([tensorName, tensor]) => {
    const values = [...tensor.data];
    const dtype = tensor.fileDtype === 'int64' ? 'int64' : 'float32';
    const storage = { key: String(key++), dtype, bytes: storageBytes(values, dtype), elements: values.length } as const;
    return [tensorName, new TensorSpec(storage, tensor.shape)];
  });
  const path = join(folder, name);
  writeFileSync(path, buildPth(wrap(entries)));
  return path;
}

describe('loadCheckpoint layouts', () => {
  const weights = readSafetensors(join(fixtures, 'weights.safetensors')).tensors;
  const few = new Map([...weights].slice(0, 6));

  it('reads the mmcv fixture with its meta and the int64 buffers', () => {
    const loaded = loadCheckpoint(join(fixtures, 'checkpoint.pth'));
    expect(loaded).toMatchObject({ format: 'pth', layout: 'mmcv' });
    expect(loaded.stateDict.size).toBe(129);
    expect(loaded.metadata).toMatchObject({ mmcv_version: '1.3.1', epoch: 0 });
    for (const [name, tensor] of weights) expect(bitDifferences(loaded.stateDict.get(name)!, tensor), name).toBe(0);
  });

  it('reads a bare state dict, a DDP {state_dict} with module. keys, and the 2-D {model} layout', () => {
    const bare = loadCheckpoint(pthFrom('bare.pth', (entries) => new OrderedDictSpec(entries), few));
    expect(bare.layout).toBe('bare');
    expect([...bare.stateDict.keys()]).toEqual([...few.keys()]);

    const ddp = loadCheckpoint(
      pthFrom(
        'ddp.pth',
        (entries) => ({
          state_dict: new OrderedDictSpec(entries.map(([key, value]) => [`module.${key}`, value])),
          optimizer: {},
        }),
        few,
      ),
    );
    expect(ddp.layout).toBe('mmcv');
    expect([...ddp.stateDict.keys()]).toEqual([...few.keys()]);
    expect(ddp.notes.join('\n')).toMatch(/removed the "module\." prefix/);
    expect(ddp.notes.join('\n')).toMatch(/ignored top-level entries: optimizer/);

    const twoD = loadCheckpoint(pthFrom('model.pth', (entries) => ({ model: new OrderedDictSpec(entries), epoch: 300 }), few));
    expect(twoD.layout).toBe('swin2d');
    for (const [name, tensor] of few) expect(bitDifferences(twoD.stateDict.get(name)!, tensor), name).toBe(0);
  });

  it('explains a pickle that holds no state dict and a file that is no checkpoint', () => {
    const path = join(folder, 'list.pth');
    writeFileSync(path, buildPth({ epoch: 3, notes: ['a'] }));
    expect(() => loadCheckpoint(path)).toThrow(/list\.pth: no state dict found; top-level keys are \[epoch, notes\]/);
    const text = join(folder, 'config.json');
    writeFileSync(text, '{"backbone": {}}');
    expect(() => loadCheckpoint(text)).toThrow(/config\.json: not a checkpoint this tool reads .* first bytes are 7b 22 62 61/);
    const empty = join(folder, 'empty.pth');
    writeFileSync(empty, new Uint8Array(0));
    expect(() => loadCheckpoint(empty)).toThrow(/empty\.pth: not a checkpoint this tool reads .*\(empty file\)/);
  });

  it('saves our format with JSON metadata and reads it back unchanged', () => {
    const path = join(folder, 'ours.safetensors');
    const metadata = { config: visible, step: 1200, metrics: { top1: 0.75, loss: 0.5 }, note: 'fine-tuned' };
    saveCheckpoint(path, few, metadata);
    const loaded = loadCheckpoint(path);
    expect(loaded).toMatchObject({ format: 'safetensors', layout: 'vswin' });
    expect(loaded.metadata).toEqual({ format: 'vswin', ...metadata });
    for (const [name, tensor] of few) expect(bitDifferences(loaded.stateDict.get(name)!, tensor), name).toBe(0);
    // Foreign safetensors keep their metadata as raw strings.
    expect(loadCheckpoint(join(fixtures, 'weights.safetensors'))).toMatchObject({
      layout: 'bare',
      metadata: { config: 'visible' },
    });
    const broken = join(folder, 'broken-meta.safetensors');
    writeSafetensors(broken, few, { format: 'vswin', step: '{oops' });
    expect(() => loadCheckpoint(broken)).toThrow(/broken-meta\.safetensors: metadata "step" is not valid JSON/);
  });
});

describe('checkpoint doctor', () => {
  it('recognises the fixtures and guesses their configs from the shapes', () => {
    const recognizer = diagnoseCheckpoint(join(fixtures, 'checkpoint.pth'));
    expect(recognizer.kind).toBe('recognizer3d');
    expect(recognizer.guessed).toMatchObject({
      embed_dim: 12,
      depths: [2, 2, 2, 2],
      num_heads: [2, 2, 4, 4],
      window_size: [2, 7, 7],
      patch_size: [2, 4, 4],
      mlp_ratio: 4,
      num_classes: 5,
      qkv_bias: true,
      patch_norm: true,
    });
    expect(recognizer.comparison).toMatchObject({ against: 'guessed config', loadsStrictly: true, missing: [], unexpected: [] });
    expect(recognizer.fileDtypes).toEqual({ float32: 121, int64: 8 });

    const twoD = diagnoseCheckpoint(join(fixtures, 'inflate_bicubic_2d.pth'));
    expect(twoD.kind).toBe('swin2d');
    expect(twoD.guessed).toMatchObject({ embed_dim: 16, window_size: [4, 4], patch_size: [4, 4], num_classes: 10 });
    expect(twoD.findings[0].message).toMatch(
      /2-D ImageNet Swin weights .*use `vswin checkpoint convert IN OUT --inflate --model-config CFG\.json`/,
    );

    const backbone = diagnoseCheckpoint(join(fixtures, 'inflate_same_3d.safetensors'));
    expect(backbone.kind).toBe('backbone3d');
    expect(backbone.hasHead).toBe(false);
    expect(backbone.guessed).toMatchObject({ window_size: [4, 7, 7], num_classes: null });
    expect(backbone.findings.map((finding) => finding.message).join('\n')).toMatch(/without a classification head/);
  });

  it('says in plain words why a config does not fit: window, classes, depth', () => {
    const wrong = parseModelConfig({
      backbone: { ...visible.backbone, window_size: [8, 7, 7], depths: [2, 2, 4, 2] },
      num_classes: 400,
    });
    const diagnosis = diagnoseCheckpoint(join(fixtures, 'checkpoint.pth'), wrong);
    const messages = diagnosis.findings.map((finding) => `[${finding.severity}] ${finding.message}`).join('\n');
    expect(messages).toMatch(/\[warning\] head has 5 classes, config has 400: the head will be re-initialised when fine-tuning/);
    expect(messages).toMatch(
      /\[error\] relative position bias tables have 507 rows \(window 2x7x7\) but the config's window 8x7x7 needs 2535/,
    );
    expect(messages).toMatch(/\[error\] file has depths \[2,2,2,2\], config has \[2,2,4,2\]/);
    expect(messages).toMatch(
      /\[error\] 26 parameter\(s\) of the given config are missing from the file: backbone\.layers\.2\.blocks\.2\.norm1\.weight/,
    );
    expect(diagnosis.comparison!.loadsStrictly).toBe(false);
    expect(diagnosis.comparison!.missing.some((key) => key.endsWith('relative_position_index'))).toBe(false);
  });

  it('dry-runs inflation of 2-D weights against a given config', () => {
    const bicubic = parseModelConfig({
      backbone: { patch_size: [2, 4, 4], embed_dim: 16, depths: [2, 2], num_heads: [2, 4], window_size: [3, 6, 6] },
      num_classes: 7,
    });
    const good = diagnoseCheckpoint(join(fixtures, 'inflate_bicubic_2d.pth'), bicubic);
    expect(good.findings[1]).toMatchObject({ severity: 'info' });
    expect(good.findings[1].message).toMatch(
      /inflation into the given config would work:[^]*bicubic-resized 4 relative position bias table\(s\) from 7x7 to 11x11/,
    );
    const wrongHeads = parseModelConfig({ backbone: { ...bicubic.backbone, num_heads: [4, 4] }, num_classes: 7 });
    const bad = diagnoseCheckpoint(join(fixtures, 'inflate_bicubic_2d.pth'), wrongHeads);
    expect(bad.findings[1]).toMatchObject({ severity: 'error' });
    expect(bad.findings[1].message).toMatch(
      /cannot inflate layers\.0\.blocks\.0\.attn\.relative_position_bias_table: the 2-D table has 2 heads/,
    );
  });

  it('names the variants with the guessed architecture', () => {
    const guess = {
      embed_dim: 96,
      in_chans: 3,
      depths: [2, 2, 6, 2],
      num_heads: [3, 6, 12, 24],
      mlp_ratio: 4,
      qkv_bias: true,
      patch_norm: true,
      num_classes: 1000,
    };
    expect(matchingVariants({ ...guess, patch_size: [4, 4], window_size: [7, 7] }, true)).toEqual(['swin_t']);
    expect(matchingVariants({ ...guess, patch_size: [2, 4, 4], window_size: [8, 7, 7] }, false)).toEqual(['swin_t']);
    expect(matchingVariants({ ...guess, patch_size: [2, 4, 4], window_size: [16, 7, 7] }, false)).toEqual([]);
    expect(diagnoseCheckpoint(join(fixtures, 'checkpoint.pth')).variants).toEqual([]);
  });

  it('checks our own files against the config stored in them and flags unknown files', () => {
    const path = join(folder, 'ours-with-config.safetensors');
    const weights = readSafetensors(join(fixtures, 'weights.safetensors')).tensors;
    saveCheckpoint(path, weights, { config: visible });
    const ours = diagnoseCheckpoint(path);
    expect(ours).toMatchObject({
      kind: 'vswin',
      hasHead: true,
      comparison: { against: 'config stored in the file', loadsStrictly: true },
    });

    const unknown = diagnoseLoaded({
      path: 'x',
      format: 'safetensors',
      layout: 'bare',
      stateDict: new Map([['encoder.weight', weights.get('backbone.norm.weight')!]]),
      metadata: {},
      notes: [],
    });
    expect(unknown.kind).toBe('unknown');
    expect(unknown.findings[0]).toMatchObject({ severity: 'error' });
    expect(unknown.findings[0].message).toMatch(
      /not a Swin checkpoint: there is no patch_embed\.proj\.weight .* \(first keys: encoder\.weight\)/,
    );
  });
});
