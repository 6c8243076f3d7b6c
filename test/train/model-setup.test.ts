import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { buildModel } from '../../core/train/model-setup.ts';
import { parseRunConfig } from '../../core/train/run-config.ts';
import { FIXTURES, fixture, manifest } from '../model/fixtures.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const base = {
  data: { train_ann: '/x/train.txt', root: '/x', pipeline: { preset: 'small' } },
  optimizer: { lr: 1e-3, weight_decay: 0.02 },
  epochs: 1,
  batch_size: 1,
};

describe('starting weights', () => {
  it('fine-tunes from a 3-D checkpoint, re-initialising a head with another class count (load_from)', () => {
    const backbone = manifest.config.backbone;
    const config = parseRunConfig({ ...base, model: { backbone, num_classes: 7, load_from: `${FIXTURES}checkpoint.pth` } });
    const { model, notes } = buildModel(config);
    const reference = fixture('weights.safetensors');
    const key = 'backbone.layers.1.blocks.0.attn.qkv.weight';
    expect(Array.from(model.params.get(key)!.dataSync())).toEqual(Array.from(reference.get(key)!.data));
    expect(model.params.get('cls_head.fc_cls.weight')!.shape).toEqual([7, 96]);
    expect(notes.join('\n')).toMatch(
      /re-initialised cls_head\.fc_cls\.weight: the checkpoint has \[5,96\], this model needs \[7,96\]/,
    );
    model.dispose();
  });

  it('inflates 2-D ImageNet weights (pretrained) and rejects a checkpoint that does not fit', () => {
    const c = manifest.inflation.same.case;
    const backbone = {
      patch_size: c.patch_3d,
      embed_dim: c.embed_dim,
      depths: c.depths,
      num_heads: c.num_heads,
      window_size: c.window_3d,
    };
    const config = parseRunConfig({
      ...base,
      model: { backbone, num_classes: 3, pretrained: `${FIXTURES}${manifest.inflation.same.files.checkpoint_2d}` },
    });
    const { model, notes } = buildModel(config);
    const expected = fixture(manifest.inflation.same.files.expected_3d);
    for (const [key, tensor] of expected) {
      const got = model.params.get(`backbone.${key}`);
      if (!got) continue;
      const data = got.dataSync();
      const worst = Array.from(tensor.data).reduce((m, v, i) => Math.max(m, Math.abs(v - data[i])), 0);
      expect(worst, key).toBeLessThan(1e-5);
    }
    expect(notes[0]).toMatch(/^inflated \d+ backbone tensors/);
    model.dispose();
    const wrong = parseRunConfig({
      ...base,
      model: {
        backbone: { ...backbone, embed_dim: 32 },
        num_classes: 3,
        pretrained: `${FIXTURES}${manifest.inflation.same.files.checkpoint_2d}`,
      },
    });
    expect(() => buildModel(wrong)).toThrow(/model\.pretrained: .* does not fit the configured backbone/);
  });
});
