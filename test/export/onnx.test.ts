// ONNX export: the file ONNX Runtime runs must give the workbench's logits (and so the official ones)
// on the visible fixture and on Swin-T-shaped random weights; the file holds our weights unchanged.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../core/engine/backend.ts';
import { Random } from '../../core/engine/random.ts';
import { tf } from '../../core/engine/tf.ts';
import { exportCheckpointOnnx } from '../../core/export/export-checkpoint.ts';
import { exportOnnx, ONNX_IR_VERSION, ONNX_OPSET } from '../../core/export/onnx.ts';
import { DataType, decodeModel } from '../../core/export/onnx-proto.ts';
import { loadOnnxRuntime, openSession, runSession, verifyOnnx } from '../../core/export/onnx-runtime.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { recognizerKeys } from '../../core/model/keys.ts';
import { VARIANTS } from '../../core/model/variants.ts';
import { createVideoSwin, type VideoSwin } from '../../core/model/video-swin.ts';
import { loadCheckpoint } from '../../core/model/weights/checkpoint.ts';
import { FIXTURES, fixtureTensor, manifest, toleranceRatio } from '../model/fixtures.ts';

const runtime = loadOnnxRuntime();
const run = promisify(execFile);
const BIN = new URL('../../bin/vswin.js', import.meta.url).pathname;
const CHECKPOINT = `${FIXTURES}checkpoint.pth`;
let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'vswin-onnx-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Weights drawn so every path shows in the logits (as the fixture's were): N(0, 1/fan_in) matrices, visible biases and norms. */
function visibleWeights(model: VideoSwin, seed: number): void {
  const random = new Random(seed);
  for (const [key, variable] of model.params) {
    const shape = variable.shape;
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    const draw = key.endsWith('relative_position_bias_table')
      ? () => random.normal()
      : shape.length >= 2
        ? () => random.normal() / Math.sqrt(fanIn)
        : key.includes('norm') && key.endsWith('.weight')
          ? () => 1 + 0.2 * random.normal()
          : () => 0.1 * random.normal();
    tf.tidy(() => variable.assign(tf.tensor(Float32Array.from({ length: variable.size }, draw), shape)));
  }
}

function nodeTypes(bytes: Uint8Array): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of decodeModel(bytes).graph.node) counts.set(node.op_type, (counts.get(node.op_type) ?? 0) + 1);
  return counts;
}

describe.skipIf(!runtime.available)('ONNX export, checked in ONNX Runtime', () => {
  it('the visible fixture checkpoint gives the official logits in ONNX Runtime and holds its weights unchanged', async () => {
    const out = join(dir, 'fixture.onnx');
    const [batch, , frames, height, width] = manifest.config.input_shape as number[];
    const before = tf.memory().numTensors;
    const report = await exportCheckpointOnnx({ checkpoint: CHECKPOINT, out, frames, height, width, batch });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.configSource).toBe('read off the tensor shapes');
    expect(report.verification?.ok, report.verification?.message).toBe(true);
    expect(report.inputShape).toEqual([batch, 3, frames, height, width]);

    // The official input through ONNX Runtime against the official logits.
    const input = fixtureTensor('io.safetensors', 'input');
    const session = await openSession(out, 2);
    const logits = await runSession(session, input.data as Float32Array, input.shape);
    await session.release();
    const reference = fixtureTensor('io.safetensors', 'logits').data as Float32Array;
    expect(toleranceRatio(logits, reference, 1e-4, 1e-4)).toBeLessThanOrEqual(1);

    // Header and weights: every parameter of the file is stored bit for bit (matrices transposed).
    const model = decodeModel(readFileSync(out));
    expect(model.ir_version).toBe(ONNX_IR_VERSION);
    expect(model.opset_import.map((o) => [o.domain ?? '', o.version])).toEqual([['', ONNX_OPSET]]);
    expect(model.graph.input[0].type.tensor_type.shape.dim.map((d) => d.dim_value)).toEqual([batch, 3, frames, height, width]);
    const initializers = new Map(model.graph.initializer.map((t) => [t.name, t]));
    const stateDict = loadCheckpoint(CHECKPOINT).stateDict;
    let compared = 0;
    for (const [key, tensor] of stateDict) {
      if (key.endsWith('relative_position_index')) continue;
      const plain = initializers.get(key);
      const transposed = initializers.get(`${key}^T`);
      const stored = plain ?? transposed;
      expect(stored, key).toBeDefined();
      expect(stored!.data_type).toBe(DataType.FLOAT);
      const raw = stored!.raw_data;
      const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const expected = tensor.data as Float32Array;
      if (plain) expect(values).toEqual(expected);
      else {
        const [rows, cols] = tensor.shape;
        expect(stored!.dims).toEqual([cols, rows]);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) expect(values[c * rows + r]).toBe(expected[r * cols + c]);
      }
      compared++;
    }
    const config = parseModelConfig({ backbone: manifest.config.backbone, num_classes: manifest.config.num_classes });
    expect(compared).toBe([...recognizerKeys(config).values()].filter((spec) => spec.kind === 'param').length);
  });

  it('Swin-T-shaped random weights match at 18x64x64 (temporal and spatial shifts, padding, clipped windows)', async () => {
    const before = tf.memory().numTensors;
    const model = createVideoSwin('swin_t', { numClasses: 7 });
    try {
      visibleWeights(model, 11);
      const exported = exportOnnx(model, { batch: 1, frames: 18, height: 64, width: 64 });
      const types = nodeTypes(exported.bytes);
      // 9x16x16 tokens: window 8x7x7 shifted by 4,3,3 and padded to 16x21x21 in stage 1; stages 3 and 4
      // clip the spatial window (4x4, 2x2) and shift in time only: a shift mask (one Where) per stage.
      expect(types.get('Where')).toBe(4);
      expect(types.get('Pad')).toBeGreaterThanOrEqual(2);
      expect(types.get('LayerNormalization')).toBe(2 * 12 + 3 + 2);
      const check = await verifyOnnx(exported.bytes, model, exported.inputShape, 5);
      expect(check.ok, check.message).toBe(true);

      // The check is not vacuous: a model that differs by one bias fails it.
      const bias = model.params.get('cls_head.fc_cls.bias')!;
      tf.tidy(() => bias.assign(tf.add(bias, tf.tensor1d([0, 0, 0, 1e-2, 0, 0, 0]))));
      const failed = await verifyOnnx(exported.bytes, model, exported.inputShape, 5);
      expect(failed.ok).toBe(false);
      expect(failed.message).toMatch(/DO NOT match/);
      expect(failed.maxAbsDiff).toBeCloseTo(1e-2, 4);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before); // the shift masks the model cached go with it
  });

  it('`vswin export onnx` writes and verifies the file; `vswin export` still asks for --out', async () => {
    const out = join(dir, 'cli.onnx');
    const { stdout } = await run(process.execPath, [BIN, 'export', 'onnx', CHECKPOINT, out, '--frames', '9', '--size', '58x50']);
    expect(stdout).toMatch(/ONNX opset 17/);
    expect(stdout).toMatch(/input "clip" \[1, 3, 9, 58, 50\]/);
    expect(stdout).toMatch(/verified: ONNX Runtime 1\.\d+\.\d+ \(CPU\): 5 logits match/);
    expect(existsSync(out)).toBe(true);
    const bundle = run(process.execPath, [BIN, 'export', 'missing.json']);
    await expect(bundle).rejects.toMatchObject({ stderr: expect.stringMatching(/--out <dir> is required/) });
  });
});

describe('ONNX export errors', () => {
  it('names a bad shape and a checkpoint that does not fit the given config', async () => {
    const model = createVideoSwin(parseModelConfig(VARIANTS.micro.config));
    try {
      expect(() => exportOnnx(model, { batch: 1, frames: 0, height: 32, width: 32 })).toThrow(
        'ONNX export: frames must be a positive integer, received 0',
      );
    } finally {
      model.dispose();
    }
    await expect(
      exportCheckpointOnnx({
        checkpoint: CHECKPOINT,
        out: join(dir, 'never.onnx'),
        frames: 8,
        height: 32,
        width: 32,
        modelConfig: parseModelConfig(VARIANTS.swin_t.config),
        verify: false,
      }),
    ).rejects.toThrow(/checkpoint\.pth \(model config given\): the state dict does not fit the model/);
    expect(existsSync(join(dir, 'never.onnx'))).toBe(false);
  });
});
