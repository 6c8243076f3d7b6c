// Interop with the real mmaction2 1.x (issue 16): the files it wrote (fixtures/mmaction2-1x, or the
// folder in VSWIN_MMACTION2_FIXTURES) inspect, load under the model's names and reproduce its
// logits; and a checkpoint the workbench trained goes back as a real torch.save file with mmaction2
// 1.x's key names, checked by Python's zipfile + pickle (and by torch.load where torch is installed).
import { MMACTION2_DIR } from '../../shared-fixtures.ts';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../core/engine/backend.ts';
import { readModelConfigFile } from '../../../core/model/config.ts';
import { toFlavorKeys } from '../../../core/model/keys.ts';
import { createVideoSwin } from '../../../core/model/video-swin.ts';
import { loadCheckpoint } from '../../../core/model/weights/checkpoint.ts';
import { diagnoseLoaded, trainingSummary } from '../../../core/model/weights/doctor.ts';
import { hostBytes } from '../../../core/model/weights/dtypes.ts';
import { writePthCheckpoint } from '../../../core/model/weights/pth-writer.ts';
import { PickleAttribute, PickleObject, NumpyArray, readPth } from '../../../core/model/weights/pth.ts';
import { readSafetensors } from '../../../core/model/weights/safetensors.ts';
import type { HostTensor } from '../../../core/model/weights/types.ts';
import { modelConfigOf } from '../../../core/train/run-config.ts';
import { train, type BatchSource } from '../../../core/train/trainer.ts';
import { tinyConfig } from '../../train/helpers.ts';
import { GlobalSpec, ReduceSpec, TupleSpec, buildPth } from './pth-writer.ts';

const FIXTURES = MMACTION2_DIR;
const BIN = new URL('../../../bin/vswin.js', import.meta.url).pathname;
const READ_PTH = new URL('./read-pth.py', import.meta.url).pathname;
const run = promisify(execFile);
const checkpoints = readdirSync(FIXTURES).filter((name) => name.endsWith('.pth'));
// io.safetensors holds mmaction2's outputs of the run's last epoch checkpoint.
const lastEpoch = checkpoints
  .filter((name) => /^epoch_\d+\.pth$/.test(name))
  .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]))
  .at(-1)!;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vswin-interop-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A Python that imports torch (Debian's python3-torch lives under /usr/bin/python3), or null. */
async function torchPython(): Promise<string | null> {
  for (const python of ['python3', '/usr/bin/python3']) {
    const imports = await run(python, ['-c', 'import torch'], { timeout: 120_000 }).then(
      () => true,
      () => false,
    );
    if (imports) return python;
  }
  return null;
}

interface PythonView {
  layout: { protocol?: number; version?: string; stored?: boolean; misaligned?: string[]; torch?: string; strict?: boolean };
  top: string[];
  meta: Record<string, unknown> | null;
  tensors: [string, string, number[], string][];
  ordered: string;
}

// Asynchronous: a synchronous child blocks the test worker, and a loaded machine then times out vitest's RPC.
const readWithPython = async (...files: string[]): Promise<PythonView[]> =>
  (await run('python3', [READ_PTH, ...files], { maxBuffer: 1 << 26 })).stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PythonView);

/** SHA-256 of a tensor's bytes as torch holds them (int64 buffers as 8-byte integers). */
const tensorHash = (tensor: HostTensor): string =>
  createHash('sha256')
    .update(hostBytes(tensor, tensor.dtype === 'float32' ? 'F32' : tensor.fileDtype === 'int64' ? 'I64' : 'I32'))
    .digest('hex');

describe.each(checkpoints)('mmaction2 1.x file %s', (name) => {
  const path = join(FIXTURES, name);
  const config = readModelConfigFile(join(FIXTURES, 'model.json'));

  it('reads the HistoryBuffer message hub as inert data and keeps the whitelist', () => {
    const root = readPth(path).root as Record<string, Record<string, unknown>>;
    const scalars = root.message_hub.log_scalars as Record<string, PickleObject>;
    const buffer = scalars['train/loss'];
    expect(buffer).toBeInstanceOf(PickleObject);
    expect(buffer.className).toBe('mmengine.logging.history_buffer.HistoryBuffer');
    const state = buffer.state as Record<string, unknown>;
    expect(state._log_history).toBeInstanceOf(NumpyArray);
    expect((state._log_history as NumpyArray).tensor!.data.length).toBeGreaterThan(0);
    const methods = state.statistics_methods as Record<string, PickleAttribute>;
    expect(methods.mean).toEqual(new PickleAttribute('mmengine.logging.history_buffer.HistoryBuffer', 'mean'));
  });

  it('loads under the model names (backbone.norm3 -> backbone.norm) and inspects with epoch, iteration, versions', () => {
    const loaded = loadCheckpoint(path);
    expect(loaded.stateDict.has('backbone.norm.weight')).toBe(true);
    expect([...loaded.stateDict.keys()].some((key) => key.includes('norm3'))).toBe(false);
    expect(loaded.notes.join(' ')).toMatch(/renamed backbone\.norm3\.\* .*to backbone\.norm\.\*/);
    const diagnosis = diagnoseLoaded(loaded, config);
    expect(diagnosis.comparison!.loadsStrictly).toBe(true);
    expect(diagnosis.findings.filter((finding) => finding.severity === 'error')).toEqual([]);
    const summary = trainingSummary(loaded)!;
    expect(summary.epoch).toBe(loaded.metadata.epoch);
    expect(summary.iteration).toBe(loaded.metadata.iter);
    expect(summary.versions.mmengine_version).toBe(loaded.metadata.mmengine_version);
    expect(summary.entries).toContain('message_hub');
    // The epoch in the file name is the epoch in meta.
    expect(`_${summary.epoch}.pth`).toBe(name.slice(name.lastIndexOf('_')));
  });

  it('`vswin checkpoint inspect` says what the file holds', async () => {
    const { stdout } = await run(process.execPath, [
      BIN,
      'checkpoint',
      'inspect',
      path,
      '--model-config',
      join(FIXTURES, 'model.json'),
    ]);
    const meta = loadCheckpoint(path).metadata;
    expect(stdout).toContain(`training:  epoch ${meta.epoch}, iteration ${meta.iter}; mmengine ${meta.mmengine_version}`);
    expect(stdout).toMatch(/also holds .*message_hub/);
    expect(stdout).toMatch(/loads strictly/);
  });
});

describe('mmaction2 1.x logits', () => {
  it(`\`vswin forward\` on ${lastEpoch} gives mmaction2's own logits and backbone output (1e-4 + 1e-4|ref|)`, async () => {
    const out = join(dir, 'forward.safetensors');
    await run(process.execPath, [
      BIN,
      'forward',
      '--model-config',
      join(FIXTURES, 'model.json'),
      '--checkpoint',
      join(FIXTURES, lastEpoch),
      '--input',
      join(FIXTURES, 'io.safetensors'),
      '--output',
      out,
    ]);
    const reference = readSafetensors(join(FIXTURES, 'io.safetensors')).tensors;
    const got = readSafetensors(out).tensors;
    for (const name of ['logits', 'backbone_out']) {
      const ref = reference.get(name)!;
      const mine = got.get(name)!;
      expect(mine.shape, name).toEqual(ref.shape);
      let bad = 0;
      for (let i = 0; i < ref.data.length; i++)
        if (!(Math.abs(mine.data[i] - ref.data[i]) <= 1e-4 + 1e-4 * Math.abs(ref.data[i]))) bad++;
      expect(bad, `${name}: elements outside 1e-4 + 1e-4|ref|`).toBe(0);
    }
  });
});

describe('pickle globals besides the message hub', () => {
  it('refuses getattr on anything but a class kept as data, and other mmengine classes', () => {
    const attr = (owner: unknown) => new ReduceSpec('__builtin__', 'getattr', [owner as never, 'system']);
    expect(() => readPth(buildPth({ x: attr('os') }), 'string.pth')).toThrow(
      /string\.pth.*__builtin__\.getattr: only attributes of classes kept as data are read, received "os"/,
    );
    expect(() => readPth(buildPth({ x: attr(new GlobalSpec('collections', 'OrderedDict')) }), 'dict.pth')).toThrow(
      /only attributes of classes kept as data are read, received global collections\.OrderedDict/,
    );
    expect(() => readPth(buildPth({ x: new GlobalSpec('mmengine.logging.message_hub', 'MessageHub') }), 'hub.pth')).toThrow(
      /refusing the pickle global "mmengine\.logging\.message_hub\.MessageHub"/,
    );
    const history = new GlobalSpec('mmengine.logging.history_buffer', 'HistoryBuffer');
    expect(() =>
      readPth(buildPth({ x: new ReduceSpec('builtins', 'getattr', [history, '__class__.__init__']) }), 'dotted.pth'),
    ).toThrow(/attribute name "__class__.__init__" is not a plain name/);
    const root = readPth(
      buildPth({
        x: new ReduceSpec('builtins', 'getattr', [history, 'max']),
        y: new ReduceSpec('mmengine.logging.history_buffer', 'HistoryBuffer', [new TupleSpec([])]),
      }),
    ).root as Record<string, unknown>;
    expect(root.x).toEqual(new PickleAttribute('mmengine.logging.history_buffer.HistoryBuffer', 'max'));
    expect(root.y).toBeInstanceOf(PickleObject);
  });
});

describe('workbench weights back to mmaction2', () => {
  let trained: string;
  beforeAll(async () => {
    await initBackend('wasm');
    // The fixture's model, trained by the workbench for one step on the fixture's input clips.
    const fixtureModel = JSON.parse(readFileSync(join(FIXTURES, 'model.json'), 'utf8')) as {
      backbone: Record<string, unknown>;
      num_classes: number;
    };
    const config = tinyConfig({
      epochs: 1,
      batch_size: 2,
      model: { variant: null, backbone: fixtureModel.backbone, num_classes: fixtureModel.num_classes },
    });
    const model = createVideoSwin(modelConfigOf(config), { seed: 5 });
    const runDir = join(dir, 'run');
    const clips = readSafetensors(join(FIXTURES, 'io.safetensors')).tensors.get('input')!;
    const source: BatchSource = {
      batchesPerEpoch: 1,
      async *batches() {
        const labels = Int32Array.from({ length: clips.shape[0] }, (_, i) => i % fixtureModel.num_classes);
        yield { input: clips.data as Float32Array, shape: [...clips.shape], labels };
      },
    };
    const result = await train({
      runId: 'interop',
      config,
      model,
      train: source,
      val: null,
      runDir,
      registry: null,
      backend: 'wasm',
      onEvent: () => {},
    });
    model.dispose();
    expect(result.status).toBe('completed');
    trained = join(runDir, 'checkpoints', 'epoch_0001.safetensors');
    expect(existsSync(trained)).toBe(true);
  }, 120_000);

  it('`checkpoint convert X out.pth` writes a torch zip with mmaction2 1.x names that Python reads back exactly', async () => {
    const out = join(dir, 'trained.pth');
    await run(process.execPath, [BIN, 'checkpoint', 'convert', trained, out]);
    const source = loadCheckpoint(trained).stateDict;
    const [mine, real] = await readWithPython(out, join(FIXTURES, lastEpoch));
    expect(mine.layout).toMatchObject({ protocol: 2, version: '3', stored: true, misaligned: [] });
    expect(mine.top).toEqual(['meta', 'state_dict']);
    expect(mine.ordered).toBe('OrderedDict');
    expect(mine.meta).toMatchObject({ key_flavor: '1.x', source_layout: 'vswin' });
    // Same names, dtypes and shapes as the state dict mmaction2 1.x itself saved.
    expect(mine.tensors.map(([key, dtype, shape]) => [key, dtype, shape])).toEqual(
      real.tensors.map(([key, dtype, shape]) => [key, dtype, shape]),
    );
    // And the trained values, bit for bit.
    const renamed = toFlavorKeys(source, '1.x');
    for (const [key, , , hash] of mine.tensors) expect(hash, key).toBe(tensorHash(renamed.get(key)!));
    // Our own reader gives the workbench names back.
    const back = loadCheckpoint(out).stateDict;
    expect([...back.keys()]).toEqual([...source.keys()]);
  }, 180_000);

  it('0.x flavor keeps backbone.norm; torch.load + strict load_state_dict where torch is installed', async (context) => {
    const zero = join(dir, 'trained-0x.pth');
    await run(process.execPath, [BIN, 'checkpoint', 'convert', trained, zero, '--flavor', '0.x']);
    const [view] = await readWithPython(zero);
    expect(view.tensors.map(([key]) => key)).toContain('backbone.norm.weight');
    expect(view.tensors.map(([key]) => key).some((key) => key.includes('norm3'))).toBe(false);

    const python = await torchPython();
    if (!python) {
      context.skip('torch is not installed here: the zipfile + pickle checks above stand in for torch.load');
      return;
    }
    const out = join(dir, 'trained-torch.pth');
    await run(process.execPath, [BIN, 'checkpoint', 'convert', trained, out]);
    const loaded = JSON.parse(
      (await run(python, [READ_PTH, '--torch', out, join(FIXTURES, lastEpoch)], { maxBuffer: 1 << 26 })).stdout,
    ) as PythonView;
    expect(loaded.layout.strict).toBe(true);
    const [plain] = await readWithPython(out);
    expect(loaded.tensors).toEqual(plain.tensors);
  }, 300_000);

  it('refuses meta it cannot store and names the field', () => {
    const tensor: HostTensor = { shape: [1], data: new Float32Array(1), dtype: 'float32', fileDtype: 'float32' };
    expect(() => writePthCheckpoint(join(dir, 'bad.pth'), new Map([['w', tensor]]), { hooks: { step: () => 0 } })).toThrow(
      /meta\.hooks\.step: a function cannot be stored in the checkpoint's meta/,
    );
    expect(existsSync(join(dir, 'bad.pth'))).toBe(false);
  });
});
