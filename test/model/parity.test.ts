// Parity with tensors produced by the official PyTorch SwinTransformer3D (visible fixture config), on
// the wasm, cpu and webgpu backends at the same tolerances: activations, attention, masks, logits,
// loss and every gradient. Reads are asynchronous so the same test runs on a GPU backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { crossEntropy } from '../../core/engine/ops.ts';
import { tf } from '../../core/engine/tf.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { createVideoSwin, type ForwardResult, type VideoSwin } from '../../core/model/video-swin.ts';
import { expectReadCloseTo, fixture, fixtureTensor, manifest, toleranceRatio } from './fixtures.ts';
import { webGpuSkipReason } from '../engine/webgpu/available.ts';
import { takeWebGpuErrors } from '../../core/engine/webgpu/backend.ts';

const config = parseModelConfig({ backbone: manifest.config.backbone, num_classes: manifest.config.num_classes });

const webgpuSkip = webGpuSkipReason('test/model/parity.test.ts');
const backends = (['wasm', 'cpu', 'webgpu'] as const).filter((name) => name !== 'webgpu' || webgpuSkip === null);

describe.each(backends)('parity with the official implementation on %s', (backend) => {
  let model: VideoSwin;
  let input: tf.Tensor;
  let result: ForwardResult;
  let labels: Int32Array;

  beforeAll(async () => {
    await initBackend(backend);
    model = createVideoSwin(config);
    const report = model.loadStateDict(fixture('weights.safetensors'), { strict: true });
    expect(report.loaded).toHaveLength(model.params.size);
    const x = fixtureTensor('io.safetensors', 'input');
    input = tf.tensor(x.data as Float32Array, x.shape);
    labels = Int32Array.from(fixtureTensor('io.safetensors', 'labels').data);
    result = model.forward(input, { capture: { patchEmbed: true, blocks: true, stages: true }, attention: 'all' });
  });

  afterAll(() => {
    tf.dispose([
      input,
      result.logits,
      result.backboneOut,
      result.patchEmbed!,
      ...result.blocks!.flat(),
      ...result.stages!,
      ...result.attention.map((a) => a.probs),
    ]);
    model.dispose();
  });

  it('patch embedding', () => expectReadCloseTo('patch_embed_out', result.patchEmbed!, 'io.safetensors', 'patch_embed_out'));

  it('every block output', async () => {
    for (const [i, blocks] of result.blocks!.entries()) {
      for (const [j, b] of blocks.entries()) {
        await expectReadCloseTo(`stage${i}_block${j}_out`, b, 'io.safetensors', `stage${i}_block${j}_out`);
      }
    }
  });

  it('every stage output, the backbone output and the logits', async () => {
    for (const [i, s] of result.stages!.entries()) await expectReadCloseTo(`stage${i}_out`, s, 'io.safetensors', `stage${i}_out`);
    await expectReadCloseTo('backbone_out', result.backboneOut, 'io.safetensors', 'backbone_out');
    await expectReadCloseTo('logits', result.logits, 'io.safetensors', 'logits');
  });

  it('attention probabilities (all windows of stages 2-3, chosen windows of stage 0)', async () => {
    const byBlock = new Map(result.attention.map((a) => [`${a.stage}.${a.block}`, a]));
    for (const key of ['2.0', '2.1', '3.0', '3.1']) {
      const [s, b] = key.split('.');
      await expectReadCloseTo(
        `attention ${key}`,
        byBlock.get(key)!.probs,
        'attn.safetensors',
        `attn_probs_stage${s}_block${b}_all`,
        1e-5,
        0,
      );
    }
    for (const block of [0, 1]) {
      const capture = byBlock.get(`0.${block}`)!;
      expect(capture.shifted).toBe(block === 1);
      const windows = capture.geometry.windowsPerClip;
      const pick = (index: number) => tf.tidy(() => tf.squeeze(tf.slice(capture.probs, [index, 0, 0, 0], [1, -1, -1, -1]), [0]));
      const cases: [string, number][] = [
        ['first_window', 0],
        ['last_window', windows - 1],
        ['batch1_last_window', 2 * windows - 1],
      ];
      for (const [suffix, index] of cases) {
        const t = pick(index);
        await expectReadCloseTo(
          `attention 0.${block} ${suffix}`,
          t,
          'attn.safetensors',
          `attn_probs_stage0_block${block}_${suffix}`,
          1e-5,
          0,
        );
        t.dispose();
      }
    }
  });

  it('loss, the gradient of every parameter and of the input', async () => {
    const { value, grads } = model.gradients(() => crossEntropy(model.forward(input).logits, labels));
    const loss = (await value.data())[0];
    expect(Math.abs(loss - manifest.loss) / manifest.loss).toBeLessThan(1e-5);
    const reference = fixture('grads.safetensors');
    expect(reference.size).toBe(model.params.size);
    for (const [key, ref] of reference) {
      const got = grads.get(key)!;
      expect(got, `gradient of ${key}`).toBeDefined();
      const refData = ref.data as Float32Array;
      const max = refData.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // Manifest tolerance for gradients: 1e-4 * max|ref| (per tensor) + 1e-3 * |ref|.
      expect(toleranceRatio(await got.data(), refData, 1e-4 * max, 1e-3), `gradient of ${key}`).toBeLessThanOrEqual(1);
    }
    tf.dispose([value, ...grads.values()]);
    const inputGrad = tf.grad((x: tf.Tensor) => crossEntropy(model.forward(x).logits, labels))(input);
    const ref = fixtureTensor('io.safetensors', 'input_grad').data as Float32Array;
    const max = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(toleranceRatio(await inputGrad.data(), ref, 1e-4 * max, 1e-3)).toBeLessThanOrEqual(1);
    inputGrad.dispose();
    if (backend === 'webgpu') expect(takeWebGpuErrors(), 'WebGPU device errors').toEqual([]);
  });
});
