// The bundle against what the real mmaction2 1.x does (issue 16), one block per numbered item:
// weights (3, 5, 6), the LR the log mapping shows (4), the decoder and its preflight (7), the data
// pipeline (8), paths with spaces (9), AMP and the torchrun launcher (10). Config files are run by
// Python; weights files are read back by Python's zipfile + pickle (test/model/weights/read-pth.py).
import { MMACTION2_DIR, PARITY_DIR } from '../shared-fixtures.ts';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decoderCheck } from '../../core/cluster/backend.ts';
import { buildBundle, writeBundle, type BundleOptions } from '../../core/cluster/bundle.ts';
import { parseLogChunk, recordsToRows } from '../../core/cluster/log-parser.ts';
import { parseClusterSettings } from '../../core/cluster/store.ts';
import { initBackend } from '../../core/engine/backend.ts';
import { recognizerKeys, toFlavorKeys } from '../../core/model/keys.ts';
import { parseModelConfig } from '../../core/model/config.ts';
import { PickleObject, readPth } from '../../core/model/weights/pth.ts';
import { loadCheckpoint, saveCheckpoint } from '../../core/model/weights/checkpoint.ts';
import { createVideoSwin } from '../../core/model/video-swin.ts';
import { hostBytes } from '../../core/model/weights/dtypes.ts';
import type { HostTensor } from '../../core/model/weights/types.ts';
import type { Bundle } from '../../core/protocol/cluster.ts';
import { modelConfigOf, resolveRunConfig } from '../../core/train/run-config.ts';

const FIXTURES = MMACTION2_DIR;
const PARITY = PARITY_DIR;
const READ_PTH = new URL('../model/weights/read-pth.py', import.meta.url).pathname;
const STAND_IN_ENGINE = new URL('./stand-in/engine', import.meta.url).pathname;
const LAST_EPOCH = readdirSync(FIXTURES)
  .filter((name) => /^epoch_\d+\.pth$/.test(name))
  .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]))
  .at(-1)!;
const STAND_IN_TRAIN = join(STAND_IN_ENGINE, 'tools', 'train.py');

const dir = mkdtempSync(join(tmpdir(), 'vswin-bundle-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'train.txt'), 'pan left/a.mp4 0\npan right/b b.mp4 1\nstill/c.mp4 2\n');
writeFileSync(join(dir, 'val.txt'), 'still/d.mp4 2\nzoom/e.mp4 1\n');
writeFileSync(join(dir, 'plain.txt'), 'a/x.mp4 0\nb/y.mp4 1\nc/z.mp4 2\n');

/** The model of the mmaction2 fixture (model.json) on the small 8-frame 64-pixel pipeline, with overrides. */
const config = (overrides: Record<string, unknown> = {}, data: Record<string, unknown> = {}) =>
  resolveRunConfig(
    {
      extends: 'cpu-tiny',
      model: { ...FIXTURE_MODEL, pretrained: null, load_from: null },
      data: {
        train_ann: 'plain.txt',
        val_ann: 'val.txt',
        root: 'videos',
        classes: null,
        pipeline: {
          preset: 'small',
          clip_len: 8,
          frame_interval: 4,
          short_side: 64,
          crop_size: 64,
          test_clips: 2,
          test_crops: 3,
        },
        ...data,
      },
      ...overrides,
    },
    dir,
  );

const FIXTURE_MODEL = (() => {
  const model = JSON.parse(readFileSync(join(FIXTURES, 'model.json'), 'utf8')) as {
    backbone: Record<string, unknown>;
    num_classes: number;
  };
  return { variant: null, backbone: model.backbone, num_classes: model.num_classes };
})();

const base: BundleOptions = { flavor: '1.x', gpus: 1, nodes: 1 };
const file = (bundle: Bundle, path: string) => bundle.files.find((entry) => entry.path === path);

// Python executes the overrides file (its _base_ is loaded separately by the engine).
/** Runs python3 without blocking the test worker (a loaded machine makes synchronous calls time out vitest's RPC). */
function python(args: string[], input = '', options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolvePython, reject) => {
    const child = execFile('python3', args, { encoding: 'utf8', maxBuffer: 1 << 26, ...options }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolvePython(stdout),
    );
    child.stdin!.end(input);
  });
}

/** The exit status and output of a process, without blocking the test worker. */
function runProcess(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolveRun) => {
    const child = execFile(
      command,
      args,
      { encoding: 'utf8', maxBuffer: 1 << 26, cwd: options.cwd, env: options.env },
      (error, stdout, stderr) =>
        resolveRun({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(options.input ?? '');
  });
}

async function pythonEval(bundle: Bundle): Promise<any> {
  const script = `import json, sys\nns = {}\nexec(sys.stdin.read(), ns)\nprint(json.dumps({k: v for k, v in ns.items() if not k.startswith('__')}, default=list))`;
  return JSON.parse(await python(['-c', script], file(bundle, 'config.py')!.content));
}

interface PythonView {
  top: string[];
  meta: Record<string, unknown> | null;
  tensors: [string, string, number[], string][];
}
const readWithPython = async (...files: string[]): Promise<PythonView[]> =>
  (await python([READ_PTH, ...files]))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as PythonView);

const tensorHash = (tensor: HostTensor): string =>
  createHash('sha256')
    .update(hostBytes(tensor, tensor.dtype === 'float32' ? 'F32' : tensor.fileDtype === 'int64' ? 'I64' : 'I32'))
    .digest('hex');

describe('3: pretrained and pretrained2d are both written, as the run config says', () => {
  it('no pretrained weights: pretrained None and pretrained2d False, for the base variant too', async () => {
    for (const variant of ['micro', 'swin_t']) {
      const parsed = await pythonEval(buildBundle(config({ model: { variant, num_classes: 3 } }), base));
      expect(parsed.model.backbone, variant).toMatchObject({ pretrained: null, pretrained2d: false });
    }
    const zero = await pythonEval(
      buildBundle(config({ model: { variant: 'swin_t', num_classes: 3 } }), { ...base, flavor: '0.x' }),
    );
    expect(zero.model.backbone).toMatchObject({ pretrained: null, pretrained2d: false });
  });

  it('a local 2-D checkpoint travels in the bundle byte for byte; a URL stays as given', async () => {
    const local = join(PARITY, 'inflate_same_2d.pth');
    const bundle = buildBundle(config({ model: { ...FIXTURE_MODEL, pretrained: local } }), base);
    expect((await pythonEval(bundle)).model.backbone).toMatchObject({
      pretrained: 'weights/pretrained2d.pth',
      pretrained2d: true,
    });
    const out = join(dir, 'pretrained');
    writeBundle(bundle, out);
    expect(readFileSync(join(out, 'weights/pretrained2d.pth')).equals(readFileSync(local))).toBe(true);
    const url = 'https://download.openmmlab.com/mmaction/v1.0/recognition/swin/swin_tiny_patch4_window7_224.pth';
    // A path on the cluster or a URL is written as given.
    const remote = buildBundle(config({ model: { variant: 'swin_t', num_classes: 3 } }), { ...base, pretrained: url });
    expect((await pythonEval(remote)).model.backbone).toMatchObject({ pretrained: url, pretrained2d: true });
    expect(file(remote, 'weights/pretrained2d.pth')).toBeUndefined();
  });
});

describe('5 and 6: load_from of a workbench checkpoint becomes a torch file with the flavor names, loaded strictly', () => {
  let ours: string;
  let otherClasses: string;
  let stateDict: Map<string, HostTensor>;
  beforeAll(async () => {
    await initBackend('cpu');
    const model = createVideoSwin(modelConfigOf(config()), { seed: 9 });
    stateDict = model.stateDict();
    model.dispose();
    ours = join(dir, 'ours.safetensors');
    saveCheckpoint(ours, stateDict, { config: modelConfigOf(config()) }, { keepInt64: true });
    const four = createVideoSwin(
      modelConfigOf(config({ model: { ...FIXTURE_MODEL, num_classes: FIXTURE_MODEL.num_classes + 1 } })),
      { seed: 9 },
    );
    otherClasses = join(dir, 'four-classes.safetensors');
    saveCheckpoint(otherClasses, four.stateDict(), {}, { keepInt64: true });
    four.dispose();
  });

  it('1.x: weights/load_from.pth holds mmaction2 1.x key names (as in its own epoch checkpoint) and our values', async () => {
    const bundle = buildBundle(config({ model: { ...FIXTURE_MODEL, load_from: ours } }), base);
    const parsed = await pythonEval(bundle);
    expect(parsed.load_from).toBe('weights/load_from.pth');
    expect(parsed.custom_imports).toEqual({ imports: ['vswin_hooks'], allow_failed_imports: false });
    expect(parsed.custom_hooks).toEqual([{ type: 'VswinStrictLoad', checkpoint: 'weights/load_from.pth', allow_missing: [] }]);
    const out = join(dir, 'load-from');
    writeBundle(bundle, out);
    // The hook file is valid Python.
    await python(['-m', 'py_compile', join(out, 'vswin_hooks.py')]);
    const [mine, real] = await readWithPython(join(out, 'weights/load_from.pth'), join(FIXTURES, LAST_EPOCH));
    expect(mine.top).toEqual(['meta', 'state_dict']);
    expect(mine.tensors.map(([key, dtype, shape]) => [key, dtype, shape])).toEqual(
      real.tensors.map(([key, dtype, shape]) => [key, dtype, shape]),
    );
    const renamed = toFlavorKeys(stateDict, '1.x');
    for (const [key, , , hash] of mine.tensors) expect(hash, key).toBe(tensorHash(renamed.get(key)!));
  });

  it('0.x keeps backbone.norm; a head for other classes is left out and allowed missing; a wrong model is refused', async () => {
    const zero = buildBundle(config({ model: { ...FIXTURE_MODEL, load_from: ours } }), {
      ...base,
      flavor: '0.x',
    });
    const out = join(dir, 'load-from-0x');
    writeBundle(zero, out);
    const [view] = await readWithPython(join(out, 'weights/load_from.pth'));
    expect(view.tensors.map(([key]) => key)).toContain('backbone.norm.weight');

    const head = buildBundle(config({ model: { ...FIXTURE_MODEL, load_from: otherClasses } }), base);
    expect((await pythonEval(head)).custom_hooks[0].allow_missing).toEqual(['cls_head.fc_cls.weight', 'cls_head.fc_cls.bias']);
    expect(head.manifest.notes.join(' ')).toMatch(/classification head is for other classes/);
    writeBundle(head, join(dir, 'head'));
    const [headless] = await readWithPython(join(dir, 'head', 'weights/load_from.pth'));
    expect(headless.tensors.some(([key]) => key.startsWith('cls_head.'))).toBe(false);

    expect(() => buildBundle(config({ model: { variant: 'tiny', num_classes: 3, load_from: ours } }), base)).toThrow(
      /model\.load_from .*ours\.safetensors does not fit the run's model strictly: .*is \[/,
    );
  });
});

describe('4: the LR of cluster runs is mmengine base_lr', () => {
  it('scalars.json and scalars-nan.json give registry rows whose LR equals base_lr', async () => {
    for (const name of ['scalars.json', 'scalars-nan.json']) {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, name)));
      const chunk = parseLogChunk('1.x', bytes, name);
      expect(chunk.problems, name).toEqual([]);
      const lines = new TextDecoder().decode(bytes).trim().split('\n');
      expect(chunk.consumedLines, name).toBe(lines.length);
      // The bundle's factor (paramwise none too: the base config's groups apply) must not matter.
      const rows = recordsToRows(chunk.records, { flavor: '1.x', itersPerEpoch: 8, loggedLrToBase: 10 });
      const trainLines = lines.map((line) => JSON.parse(line.replace(/NaN/g, 'null'))).filter((line) => 'base_lr' in line);
      expect(trainLines.length, name).toBeGreaterThan(0);
      for (const line of trainLines) {
        const lr = rows.filter((row) => row.name === 'lr' && row.step === line.step - 1);
        expect(lr, `${name} step ${line.step}`).toHaveLength(1);
        expect(lr[0].value).toBe(line.base_lr);
        const loss = rows.find((row) => row.name === 'loss' && row.step === line.step - 1)!;
        expect(loss.value).toBe(line.loss);
      }
      expect(rows.some((row) => row.name === 'base_lr')).toBe(false);
    }
  });

  it('paramwise "none" bundles log the first group at 0.1x as well', async () => {
    const bundle = buildBundle(config({ optimizer: { lr: 0.001, weight_decay: 0.05, paramwise: 'none' } }), base);
    expect(bundle.manifest.loggedLrToBase).toBe(10);
  });
});

describe('7: the decoder', () => {
  it('pipelines use the chosen decoder (decord by default)', async () => {
    const types = async (bundle: Bundle) =>
      (await pythonEval(bundle)).train_dataloader.dataset.pipeline.map((step: { type: string }) => step.type).slice(0, 3);
    expect(await types(buildBundle(config(), base))).toEqual(['DecordInit', 'SampleFrames', 'DecordDecode']);
    expect(await types(buildBundle(config(), { ...base, decoder: 'pyav' }))).toEqual(['PyAVInit', 'SampleFrames', 'PyAVDecode']);
    expect(await types(buildBundle(config(), { ...base, decoder: 'opencv' }))).toEqual([
      'OpenCVInit',
      'SampleFrames',
      'OpenCVDecode',
    ]);
    expect(buildBundle(config(), { ...base, decoder: 'pyav' }).manifest.decoder).toBe('pyav');
    expect(() => buildBundle(config(), { ...base, decoder: 'ffmpeg' as never })).toThrow(
      /decoder: expected "decord", "pyav" or "opencv", received "ffmpeg"/,
    );
  });

  it('preflight runs the engine Python on the decoder module and says how to fix it', async () => {
    const settings = parseClusterSettings({
      name: 'local',
      kind: 'slurm',
      host: 'localhost',
      engineDir: STAND_IN_ENGINE,
      python: 'python3',
    });
    expect(settings.decoder).toBe('decord');
    const check = async (decoder: 'decord' | 'pyav') =>
      (await runProcess('bash', ['-c', decoderCheck(settings, decoder).join('\n')])).stdout.trim();
    expect(await check('decord')).toMatch(/^CHECK decoder ok decord \(decord 0\.0\.0-standin\) for DecordInit$/);
    const probe = await runProcess('python3', ['-c', 'import av']);
    if (probe.status !== 0)
      expect(await check('pyav')).toMatch(
        /^CHECK decoder fail python3 cannot import av, which the pyav decoder \(PyAVInit\) needs: .*No module named 'av'.*pip install av/,
      );
  });
});

describe('8: the run data pipeline, or a refusal with the reason', () => {
  it('1.x: 8 frames every 4 at 64 px, test views 2 clips x 3 crops', async () => {
    const bundle = buildBundle(config(), base);
    const parsed = await pythonEval(bundle);
    const [train, val, test] = ['train', 'val', 'test'].map((split) => parsed[`${split}_dataloader`].dataset.pipeline);
    expect(train).toEqual([
      { type: 'DecordInit', io_backend: 'disk' },
      { type: 'SampleFrames', clip_len: 8, frame_interval: 4, num_clips: 1 },
      { type: 'DecordDecode' },
      { type: 'Resize', scale: [-1, 64] },
      { type: 'RandomResizedCrop', area_range: [0.5, 1], aspect_ratio_range: [0.75, 4 / 3] },
      { type: 'Resize', scale: [64, 64], keep_ratio: false },
      { type: 'Flip', flip_ratio: 0 },
      { type: 'FormatShape', input_format: 'NCTHW' },
      { type: 'PackActionInputs' },
    ]);
    expect(val[1]).toEqual({ type: 'SampleFrames', clip_len: 8, frame_interval: 4, num_clips: 1, test_mode: true });
    expect(val[4]).toEqual({ type: 'CenterCrop', crop_size: 64 });
    expect(test[1]).toEqual({ type: 'SampleFrames', clip_len: 8, frame_interval: 4, num_clips: 2, test_mode: true });
    expect(test[4]).toEqual({ type: 'ThreeCrop', crop_size: 64 });
    expect(bundle.manifest.pipeline).toEqual({
      clipLen: 8,
      frameInterval: 4,
      shortSide: 64,
      cropSize: 64,
      testClips: 2,
      testCrops: 3,
    });
    // The tuples the transforms expect are tuples in the file.
    expect(file(bundle, 'config.py')!.content).toMatch(/scale=\(-1, 64\)/);
  });

  it('0.x: the same clips with the 0.x tail (Normalize, Collect, ToTensor); k400 defaults are the official 32x2 at 224', async () => {
    const parsed = await pythonEval(buildBundle(config(), { ...base, flavor: '0.x' }));
    const train = parsed.data.train.pipeline;
    expect(train[1]).toEqual({ type: 'SampleFrames', clip_len: 8, frame_interval: 4, num_clips: 1 });
    expect(train.slice(-4).map((step: { type: string }) => step.type)).toEqual([
      'Normalize',
      'FormatShape',
      'Collect',
      'ToTensor',
    ]);
    expect(parsed.data.test.pipeline.at(-1)).toEqual({ type: 'ToTensor', keys: ['imgs'] });
    // The official k400 recipe: 32x2 frames at 224 (short side 256).
    const recipe = resolveRunConfig(
      { extends: 'k400-swin-t', data: { train_ann: 'plain.txt', val_ann: 'val.txt', root: 'videos' } },
      dir,
    );
    const k400 = await pythonEval(buildBundle(recipe, base));
    expect(k400.train_dataloader.dataset.pipeline[1]).toEqual({
      type: 'SampleFrames',
      clip_len: 32,
      frame_interval: 2,
      num_clips: 1,
    });
    expect(k400.train_dataloader.dataset.pipeline[3]).toEqual({ type: 'Resize', scale: [-1, 256] });
  });

  it('refuses what has no mmaction2 transform here, naming it', async () => {
    expect(() => buildBundle(config({}, { pipeline: { preset: 'ssv2' } }), base)).toThrow(
      /data\.pipeline \(ssv2-train\): uniform frame sampling \(the SSv2 recipe\) is not translated .*the bundle is refused/,
    );
    expect(() => buildBundle(config({}, { pipeline: { preset: 'k400', rand_augment: { n: 2, m: 5 } } }), base)).toThrow(
      /data\.pipeline \(k400-train\): RandAugment is not translated/,
    );
  });
});

describe('9: paths with spaces', () => {
  it('1.x: tab-separated lines and the datasets delimiter; both files alike; Python splits them back', async () => {
    const bundle = buildBundle(config({}, { train_ann: 'train.txt' }), base);
    const parsed = await pythonEval(bundle);
    expect(parsed.train_dataloader.dataset.delimiter).toBe('\t');
    expect(parsed.val_dataloader.dataset.delimiter).toBe('\t');
    expect(parsed.test_dataloader.dataset.delimiter).toBe('\t');
    expect(bundle.manifest.delimiter).toBe('\t');
    // mmaction2 1.x VideoDataset: filename, label = line.strip().split(self.delimiter)
    const split = async (text: string) =>
      JSON.parse(
        await python(
          ['-c', "import sys, json; print(json.dumps([l.strip().split('\\t') for l in sys.stdin if l.strip()]))"],
          text,
        ),
      );
    expect(await split(file(bundle, 'annotations/train.txt')!.content)).toEqual([
      ['pan left/a.mp4', '0'],
      ['pan right/b b.mp4', '1'],
      ['still/c.mp4', '2'],
    ]);
    expect(await split(file(bundle, 'annotations/val.txt')!.content)).toEqual([
      ['still/d.mp4', '2'],
      ['zoom/e.mp4', '1'],
    ]);
  });

  it('keeps the space form where the paths allow it, and refuses spaces for 0.x with the reason', async () => {
    const plain = buildBundle(config(), base);
    expect(file(plain, 'annotations/train.txt')!.content).toBe(readFileSync(join(dir, 'plain.txt'), 'utf8'));
    expect((await pythonEval(plain)).train_dataloader.dataset.delimiter).toBeUndefined();
    expect(() => buildBundle(config({}, { train_ann: 'train.txt' }), { ...base, flavor: '0.x' })).toThrow(
      /train\.txt:1: the path "pan left\/a\.mp4" holds whitespace, which the 0\.x engine's VideoDataset cannot split/,
    );
  });
});

describe('10: AMP switchable, torchrun under $PYTHON', () => {
  it('AMP on by default (AmpOptimWrapper / use_fp16), off on request', async () => {
    expect((await pythonEval(buildBundle(config(), base))).optim_wrapper.type).toBe('AmpOptimWrapper');
    const off = buildBundle(config(), { ...base, amp: false });
    expect((await pythonEval(off)).optim_wrapper.type).toBe('OptimWrapper');
    expect(off.manifest.amp).toBe(false);
    expect((await pythonEval(buildBundle(config(), { ...base, flavor: '0.x' }))).optimizer_config.use_fp16).toBe(true);
    expect((await pythonEval(buildBundle(config(), { ...base, flavor: '0.x', amp: false }))).optimizer_config.use_fp16).toBe(
      false,
    );
  });

  it('the torchrun script runs torch.distributed.run with $PYTHON; a custom launcher is kept', async () => {
    const script = file(buildBundle(config(), { ...base, python: '/opt/env/bin/python' }), 'launch-torchrun.sh')!.content;
    expect(script).toMatch(/PYTHON="\$\{VSWIN_PYTHON:-\/opt\/env\/bin\/python\}"/);
    expect(script).toMatch(/^"\$PYTHON" -m torch\.distributed\.run --nnodes=1 --nproc_per_node=1 /m);
    expect(script).toMatch(/export PYTHONPATH="\$PWD/);
    expect((await runProcess('bash', ['-n'], { input: script })).status).toBe(0);
    const custom = file(buildBundle(config(), { ...base, torchrun: '/opt/bin/torchrun' }), 'launch-torchrun.sh')!.content;
    expect(custom).toMatch(/^\/opt\/bin\/torchrun --nnodes=1/m);
  });
});

describe('the stand-in engine writes and refuses what mmaction2 1.x does', () => {
  /** Writes the bundle and runs the stand-in train.py in it (as the job script would), one rank. */
  async function runStandIn(bundle: Bundle, name: string) {
    const out = join(dir, name);
    writeBundle(bundle, out);
    const keys = join(dir, 'keys.json');
    const model = parseModelConfig(modelConfigOf(config()));
    writeFileSync(keys, JSON.stringify([...recognizerKeys(model)].map(([key, spec]) => [key, spec.shape])));
    const result = await runProcess('python3', [STAND_IN_TRAIN, 'config.py', '--work-dir', 'work'], {
      cwd: out,
      env: { ...process.env, VSWIN_STANDIN_SLEEP: '0', VSWIN_STANDIN_KEYS: keys },
    });
    return { out, ...result };
  }

  const ours = join(dir, 'stand-in-ours.safetensors');
  beforeAll(async () => {
    await initBackend('cpu');
    const model = createVideoSwin(modelConfigOf(config()), { seed: 4 });
    saveCheckpoint(ours, model.stateDict(), {}, { keepInt64: true });
    model.dispose();
  });

  it('base_lr in the log, a HistoryBuffer message hub and backbone.norm3 in the checkpoints; a strict load of our weights', async () => {
    const run = await runStandIn(
      buildBundle(config({ epochs: 2, model: { ...FIXTURE_MODEL, load_from: ours } }), {
        ...base,
        logInterval: 1,
      }),
      'stand-in-ok',
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/VswinStrictLoad loaded all \d+ tensors of weights\/load_from\.pth/);
    const [stamp] = readdirSync(join(run.out, 'work')).filter((name) => /^\d{8}_\d{6}$/.test(name));
    const log = readFileSync(join(run.out, 'work', stamp, 'vis_data', 'scalars.json'), 'utf8')
      .trim()
      .split('\n');
    const first = JSON.parse(log[0]);
    expect(first.base_lr).toBeCloseTo(first.lr * 10, 12);
    const root = readPth(join(run.out, 'work', 'epoch_2.pth')).root as Record<string, Record<string, unknown>>;
    const loss = (root.message_hub.log_scalars as Record<string, PickleObject>)['train/loss'];
    expect(loss.className).toBe('mmengine.logging.history_buffer.HistoryBuffer');
    expect(Object.keys(root.state_dict)).toContain('backbone.norm3.weight');
    expect(loadCheckpoint(join(run.out, 'work', 'epoch_2.pth')).stateDict.has('backbone.norm.weight')).toBe(true);
  }, 120_000);

  it('fails as the real engine does on 0.x names in a 1.x load_from and on pretrained2d without pretrained', async () => {
    // A bundle whose load_from file has the other flavor's names: the strict load refuses it.
    const bundle = buildBundle(config({ model: { ...FIXTURE_MODEL, load_from: ours } }), base);
    const weights = bundle.files.find((entry) => entry.localFile)!;
    weights.localFile = { ...weights.localFile!, flavor: '0.x' };
    const wrongNames = await runStandIn(bundle, 'stand-in-names');
    expect(wrongNames.status).toBe(1);
    expect(wrongNames.stderr).toMatch(
      /does not fit the model strictly: missing \['backbone\.norm3\.bias', 'backbone\.norm3\.weight'\], unexpected \['backbone\.norm\.bias'/,
    );
    // What bundles wrote before: pretrained2d left True under pretrained=None.
    const inflating = buildBundle(config(), base);
    const configFile = inflating.files.find((entry) => entry.path === 'config.py')!;
    configFile.content = configFile.content.replace('pretrained2d=False', 'pretrained2d=True');
    const inflated = await runStandIn(inflating, 'stand-in-inflate');
    expect(inflated.status).toBe(1);
    expect(inflated.stderr).toMatch(/TypeError .*pretrained2d=True with pretrained=None/);
  }, 120_000);
});
