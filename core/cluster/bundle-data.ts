// What a bundle carries besides the config overrides: the run's data pipeline in mmaction2's
// transforms (or a refusal that says why it cannot be), annotation lines the engine can split, the
// video decoder, the strict-load hook, and the run's weights converted to a torch.save file.
import { existsSync, readFileSync } from 'node:fs';
import type { BundleFile, EngineFlavor, VideoDecoder } from '../protocol/cluster.ts';
import type { PipelineMode, PipelineSpec } from '../data/pipeline.ts';
import { imagenetMean, imagenetStd } from '../data/transforms.ts';
import { parseAnnotationText } from '../data/annotations.ts';
import { pipelineFor } from '../train/data-source.ts';
import { modelConfigOf, type RunConfig } from '../train/run-config.ts';
import { parseModelConfig } from '../model/config.ts';
import { recognizerKeys, toFlavorKeys } from '../model/keys.ts';
import { loadCheckpoint, sniffCheckpointFormat } from '../model/weights/checkpoint.ts';
import { encodePth, OrderedDictSpec, plainPickleValue, tensorSpecOf, type PickleInput } from '../model/weights/pth-writer.ts';
import type { TensorMap } from '../model/weights/types.ts';
import { tuple } from './python-literal.ts';

/** The engines' decoders: transforms of the configs and the Python module each needs. */
export const DECODERS: Record<VideoDecoder, { init: string; decode: string; module: string; pip: string }> = {
  decord: { init: 'DecordInit', decode: 'DecordDecode', module: 'decord', pip: 'decord' },
  pyav: { init: 'PyAVInit', decode: 'PyAVDecode', module: 'av', pip: 'av' },
  opencv: { init: 'OpenCVInit', decode: 'OpenCVDecode', module: 'cv2', pip: 'opencv-python' },
};

export function parseDecoder(value: unknown, source = 'decoder'): VideoDecoder {
  if (value === 'decord' || value === 'pyav' || value === 'opencv') return value;
  throw new Error(`${source}: expected "decord", "pyav" or "opencv", received ${JSON.stringify(value)}`);
}

export interface EnginePipelines {
  train: Record<string, unknown>[];
  val: Record<string, unknown>[];
  test: Record<string, unknown>[];
  /** What the bundle's clips are, for the manifest and the pulled checkpoint's metadata. */
  summary: { clipLen: number; frameInterval: number; shortSide: number; cropSize: number; testClips: number; testCrops: number };
}

const sameTriple = (a: readonly number[], b: readonly number[]) => a.every((value, i) => Math.abs(value - b[i]) < 1e-9);

/** One pipeline in the engine's transforms; throws with the reason when it has no equivalent here. */
function enginePipeline(spec: PipelineSpec, mode: PipelineMode, flavor: EngineFlavor, decoder: VideoDecoder) {
  const refuse = (what: string): never => {
    throw new Error(
      `data.pipeline (${spec.name}): ${what} is not translated to mmaction2 transforms, so the engine would train on other ` +
        `clips than this run; the bundle is refused (use the k400 or small preset without it)`,
    );
  };
  if (spec.sampling.uniform) refuse('uniform frame sampling (the SSv2 recipe)');
  if (spec.randAugment) refuse('RandAugment');
  if (spec.randomErasing) refuse('random erasing');
  if (spec.sampling.outOfBound !== 'loop') refuse(`out-of-bound option "${spec.sampling.outOfBound}"`);
  if (!sameTriple(spec.mean, imagenetMean) || !sameTriple(spec.std, imagenetStd)) refuse('a normalisation other than ImageNet');
  const d = DECODERS[decoder];
  const steps: Record<string, unknown>[] = [flavor === '1.x' ? { type: d.init, io_backend: 'disk' } : { type: d.init }];
  const { clipLen, frameInterval, numClips, testMode } = spec.sampling;
  steps.push({
    type: 'SampleFrames',
    clip_len: clipLen,
    frame_interval: frameInterval,
    num_clips: numClips,
    test_mode: testMode ? true : undefined,
  });
  steps.push({ type: d.decode }, { type: 'Resize', scale: tuple(-1, spec.shortSide) });
  const crop = spec.crop;
  if (crop.kind === 'random-resized') {
    steps.push(
      { type: 'RandomResizedCrop', area_range: tuple(...crop.areaRange), aspect_ratio_range: tuple(...crop.aspectRange) },
      { type: 'Resize', scale: tuple(crop.size, crop.size), keep_ratio: false },
    );
  } else steps.push({ type: crop.kind === 'three' ? 'ThreeCrop' : 'CenterCrop', crop_size: crop.size });
  if (mode === 'train') steps.push({ type: 'Flip', flip_ratio: spec.flipRatio });
  else if (spec.flipRatio !== 0) refuse(`a flip at ${mode} time`);
  if (flavor === '1.x') {
    steps.push({ type: 'FormatShape', input_format: 'NCTHW' }, { type: 'PackActionInputs' });
  } else {
    steps.push(
      { type: 'Normalize', mean: [...imagenetMean], std: [...imagenetStd], to_bgr: false },
      { type: 'FormatShape', input_format: 'NCTHW' },
      { type: 'Collect', keys: ['imgs', 'label'], meta_keys: [] },
      { type: 'ToTensor', keys: mode === 'train' ? ['imgs', 'label'] : ['imgs'] },
    );
  }
  return steps;
}

/** The run's train/val/test pipelines (clip length, interval, sizes, test views) for the engine. */
export function enginePipelines(config: RunConfig, flavor: EngineFlavor, decoder: VideoDecoder): EnginePipelines {
  const train = pipelineFor(config, 'train');
  const test = pipelineFor(config, 'test');
  return {
    train: enginePipeline(train, 'train', flavor, decoder),
    val: enginePipeline(pipelineFor(config, 'val'), 'val', flavor, decoder),
    test: enginePipeline(test, 'test', flavor, decoder),
    summary: {
      clipLen: train.sampling.clipLen,
      frameInterval: train.sampling.frameInterval,
      shortSide: train.shortSide,
      cropSize: train.crop.size,
      testClips: test.sampling.numClips,
      testCrops: test.crop.kind === 'three' ? 3 : 1,
    },
  };
}

/**
 * Annotation text the engine splits right. mmaction2 splits a line on `delimiter` (one space by
 * default), so paths with whitespace need another one: 1.x's VideoDataset takes `delimiter` (a tab
 * here), 0.x's has none and splits on any whitespace, so such paths are refused there.
 */
export function engineAnnotations(
  text: string,
  file: string,
  flavor: EngineFlavor,
  /** Write tab-separated lines even without spaces (the other file of the bundle has some). */
  force = false,
): { text: string; delimiter: string | null; paths: string[] } {
  const { entries, problems } = parseAnnotationText(text, { format: 'video', file });
  const errors = problems.filter((problem) => problem.severity === 'error');
  if (errors.length) throw new Error(`${file}:${errors[0].line}: ${errors[0].message}`);
  const paths = entries.map((entry) => entry.path);
  const spaced = entries.find((entry) => /\s/.test(entry.path));
  if (!spaced && !force) return { text, delimiter: null, paths };
  if (spaced && flavor === '0.x')
    throw new Error(
      `${file}:${spaced.line}: the path "${spaced.path}" holds whitespace, which the 0.x engine's VideoDataset cannot split ` +
        `(it has no delimiter option); rename the files or use the 1.x flavor`,
    );
  const tabbed = entries.find((entry) => entry.path.includes('\t'));
  if (tabbed)
    throw new Error(
      `${file}:${tabbed.line}: the path ${JSON.stringify(tabbed.path)} holds a tab, the delimiter used for paths with spaces`,
    );
  return { text: entries.map((entry) => `${entry.path}\t${entry.labels.join('\t')}\n`).join(''), delimiter: '\t', paths };
}

/** The video paths of a bundle's annotation file (its own delimiter). */
export function annotationPaths(content: string, delimiter: string | null): string[] {
  return content
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim().length > 0)
    .map((line) => (delimiter ? line.split(delimiter)[0] : line.trim().split(/\s+/)[0]));
}

/**
 * The hook the bundle registers (custom_imports + custom_hooks) to load `load_from` strictly:
 * mmengine's and mmcv's `load_from` load with strict=False and only warn about keys that do not
 * match, leaving those weights at their initial values. Runs after the engine's own load (mmengine:
 * before_train; mmcv: before_run) and not when the run resumed (the engine restored its state).
 */
export const STRICT_LOAD_HOOK = `"""Written by Video Swin Workbench: load the bundle's load_from file strictly."""
import torch

try:
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmengine.registry import HOOKS
    MMENGINE = True
except ImportError:  # the 0.x engine (mmcv 1.x)
    from mmcv.parallel import is_module_wrapper as is_model_wrapper
    from mmcv.runner import HOOKS, Hook
    MMENGINE = False


@HOOKS.register_module()
class VswinStrictLoad(Hook):
    def __init__(self, checkpoint, allow_missing=()):
        self.checkpoint = checkpoint
        self.allow_missing = set(allow_missing)

    def load(self, runner):
        if runner.iter > 0:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = torch.load(self.checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
        own = model.state_dict()
        missing = sorted(key for key in own if key not in state and key not in self.allow_missing)
        unexpected = sorted(key for key in state if key not in own)
        misshaped = sorted(key for key in state if key in own and tuple(state[key].shape) != tuple(own[key].shape))
        if missing or unexpected or misshaped:
            raise RuntimeError('%s does not fit the model strictly: missing %s, unexpected %s, mis-shaped %s'
                               % (self.checkpoint, missing[:5], unexpected[:5], misshaped[:5]))
        model.load_state_dict(state, strict=False)
        runner.logger.info('VswinStrictLoad: loaded all %d tensors of %s' % (len(state), self.checkpoint))

    def before_run(self, runner):
        if not MMENGINE:
            self.load(runner)

    def before_train(self, runner):
        self.load(runner)
`;

export const WEIGHTS_DIR = 'weights';

/** Is this a torch.save file (zip or legacy stream)? */
const isTorchFile = (path: string): boolean => {
  try {
    return sniffCheckpointFormat(path) === 'pth';
  } catch {
    return false;
  }
};

export interface BundleWeights {
  /** The value written in the config: a bundle path, or the user's cluster path / URL as given. */
  configValue: string;
  file: BundleFile | null;
  /** State-dict keys the model has but the file deliberately lacks (cls_head when the classes differ). */
  allowMissing: string[];
  notes: string[];
}

/**
 * `load_from` for the engine: a local checkpoint (ours, or any the loader reads) becomes a
 * torch.save {meta, state_dict} file under the flavor's key names, checked against the run's model
 * now (every key present with its shape; a head for other classes is left out, as the workbench
 * does). A path that is not a local file is taken as a path on the cluster.
 */
export function loadFromWeights(config: RunConfig, path: string, flavor: EngineFlavor): BundleWeights {
  if (!existsSync(path))
    return {
      configValue: path,
      file: null,
      allowMissing: [],
      notes: [`load_from ${path} is not a local file: used as a path on the cluster`],
    };
  const model = parseModelConfig(modelConfigOf(config));
  const loaded = loadCheckpoint(path);
  const expected = recognizerKeys(model);
  const problems: string[] = [];
  const allowMissing: string[] = [];
  const kept: TensorMap = new Map();
  for (const [key, spec] of expected) {
    const tensor = loaded.stateDict.get(key);
    const head = key.startsWith('cls_head.');
    if (!tensor) {
      if (spec.kind === 'buffer' || head) allowMissing.push(key);
      else problems.push(`${key} is missing`);
      continue;
    }
    if (tensor.shape.join() !== spec.shape.join()) {
      if (head) allowMissing.push(key);
      else problems.push(`${key} is [${tensor.shape}], the run's model has [${spec.shape}]`);
      continue;
    }
    kept.set(key, tensor);
  }
  const unexpected = [...loaded.stateDict.keys()].filter((key) => !expected.has(key));
  if (unexpected.length) problems.push(`unexpected ${unexpected.slice(0, 3).join(', ')}${unexpected.length > 3 ? ' ...' : ''}`);
  if (problems.length)
    throw new Error(`model.load_from ${path} does not fit the run's model strictly: ${problems.slice(0, 4).join('; ')}`);
  const notes = [
    `load_from ${path} is shipped as ${WEIGHTS_DIR}/load_from.pth (torch.save, ${flavor} key names) and loaded strictly`,
  ];
  const heads = allowMissing.filter((key) => key.startsWith('cls_head.'));
  if (heads.length)
    notes.push(`its classification head is for other classes: left out, the engine initialises ${heads.join(', ')}`);
  return {
    configValue: `${WEIGHTS_DIR}/load_from.pth`,
    file: {
      path: `${WEIGHTS_DIR}/load_from.pth`,
      content: '',
      executable: false,
      localFile: { path, kind: 'engine-checkpoint', flavor, keys: [...kept.keys()] },
    },
    // Heads and index buffers keep their names in both flavors.
    allowMissing,
    notes,
  };
}

/** `pretrained` (2-D ImageNet Swin) for the engine: a local torch file is shipped as is, another readable file as {model: ...}. */
export function pretrainedWeights(path: string): BundleWeights {
  if (/^[a-z]+:\/\//i.test(path) || !existsSync(path))
    return { configValue: path, file: null, allowMissing: [], notes: [`pretrained ${path} is not a local file: used as given`] };
  const kind = isTorchFile(path) ? 'copy' : 'pretrained-2d';
  return {
    configValue: `${WEIGHTS_DIR}/pretrained2d.pth`,
    file: {
      path: `${WEIGHTS_DIR}/pretrained2d.pth`,
      content: '',
      executable: false,
      localFile: { path, kind, flavor: null, keys: [] },
    },
    allowMissing: [],
    notes: [
      `pretrained ${path} is shipped as ${WEIGHTS_DIR}/pretrained2d.pth${kind === 'copy' ? '' : ' (converted to torch.save {model: ...})'}`,
    ],
  };
}

/** The bytes of a bundle file: its text, or its local weights as the engine reads them. */
export function bundleFileData(file: BundleFile): string | Uint8Array[] {
  const local = file.localFile;
  if (!local) return file.content;
  if (local.kind === 'copy') return [new Uint8Array(readFileSync(local.path))];
  const loaded = loadCheckpoint(local.path);
  if (local.kind === 'pretrained-2d') {
    const entries: [string, PickleInput][] = [...loaded.stateDict].map(([key, tensor], i) => [
      key,
      tensorSpecOf(tensor, String(i), key),
    ]);
    return encodePth({ model: new OrderedDictSpec(entries) });
  }
  const selected: TensorMap = new Map(local.keys.map((key) => [key, loaded.stateDict.get(key)!]));
  const renamed = toFlavorKeys(selected, local.flavor ?? '1.x');
  const entries: [string, PickleInput][] = [...renamed].map(([key, tensor], i) => [key, tensorSpecOf(tensor, String(i), key)]);
  const meta = plainPickleValue({ source: local.path, key_flavor: local.flavor, written_by: 'video-swin-workbench' });
  return encodePth({ meta, state_dict: new OrderedDictSpec(entries) });
}
