// `vswin forward` end to end: the documented command on the visible fixture (from the .pth and the
// .safetensors), and on another configuration whose weights this test writes itself.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { Random } from '../../core/engine/random.ts';
import { tf } from '../../core/engine/tf.ts';
import type { ModelConfigInput } from '../../core/model/config.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';
import { readSafetensors, writeSafetensors } from '../../core/model/weights/safetensors.ts';
import { FIXTURES, expectCloseTo, manifest, toleranceRatio } from '../model/fixtures.ts';

const run = promisify(execFile);
const BIN = new URL('../../bin/vswin.js', import.meta.url).pathname;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vswin-forward-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function forward(config: string, checkpoint: string, input: string, output: string, extra: string[] = []) {
  return run(
    process.execPath,
    [BIN, 'forward', '--model-config', config, '--checkpoint', checkpoint, '--input', input, '--output', output, ...extra],
    { maxBuffer: 1 << 20 },
  );
}

describe('vswin forward', () => {
  it.each(['checkpoint.pth', 'weights.safetensors'])('reproduces the official logits from %s', async (file) => {
    const config = join(dir, 'fixture.json');
    writeFileSync(config, JSON.stringify({ backbone: manifest.config.backbone, num_classes: manifest.config.num_classes }));
    const out = join(dir, `out-${file}.safetensors`);
    const { stderr } = await forward(config, `${FIXTURES}${file}`, `${FIXTURES}io.safetensors`, out);
    expect(stderr).toMatch(/backend: wasm/);
    const result = readSafetensors(out).tensors;
    expectCloseTo('logits', result.get('logits')!, 'io.safetensors', 'logits');
    expectCloseTo('backbone_out', result.get('backbone_out')!, 'io.safetensors', 'backbone_out');
  });

  it('runs another configuration (no qkv bias, no patch norm, 3 stages, odd sizes) like the in-process model', async () => {
    await initBackend('cpu');
    const modelConfig: ModelConfigInput = {
      backbone: {
        patch_size: [1, 2, 3],
        in_chans: 2,
        embed_dim: 8,
        depths: [1, 3, 2],
        num_heads: [2, 2, 4],
        window_size: [3, 3, 2],
        mlp_ratio: 2.5,
        qkv_bias: false,
        qk_scale: 0.3,
        drop_rate: 0,
        attn_drop_rate: 0,
        drop_path_rate: 0.2,
        patch_norm: false,
      },
      num_classes: 3,
    };
    const model = createVideoSwin(modelConfig, { seed: 9 });
    const weights = join(dir, 'other.safetensors');
    writeSafetensors(weights, model.stateDict());
    const random = new Random(4);
    const shape = [2, 2, 5, 11, 13];
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random.normal());
    const input = join(dir, 'other-input.safetensors');
    writeSafetensors(input, new Map([['clip', { shape, data, dtype: 'float32', fileDtype: 'float32' }]]));
    const config = join(dir, 'other.json');
    writeFileSync(config, JSON.stringify(modelConfig));
    const out = join(dir, 'other-out.safetensors');
    await forward(config, weights, input, out, ['--input-key', 'clip']);
    const expected = tf.tidy(() => Array.from(model.predict(tf.tensor(data, shape)).dataSync()));
    const got = readSafetensors(out).tensors.get('logits')!;
    expect(got.shape).toEqual([2, 3]);
    expect(toleranceRatio(got.data as Float32Array, expected, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    model.dispose();
  });

  it('names the problem when the input key or the weights do not fit', async () => {
    const config = join(dir, 'fixture.json');
    writeFileSync(config, JSON.stringify({ backbone: manifest.config.backbone, num_classes: 7 }));
    const failure = forward(config, `${FIXTURES}weights.safetensors`, `${FIXTURES}io.safetensors`, join(dir, 'x.safetensors'));
    await expect(failure).rejects.toMatchObject({
      stderr: expect.stringMatching(/cls_head.fc_cls.weight: the model expects \[7,96\], the file has \[5,96\]/),
    });
    const wrongKey = forward(config, `${FIXTURES}weights.safetensors`, `${FIXTURES}io.safetensors`, join(dir, 'x.safetensors'), [
      '--input-key',
      'nope',
    ]);
    await expect(wrongKey).rejects.toMatchObject({ stderr: expect.stringMatching(/has no tensor "nope"; it holds: .*input/) });
  });
});
