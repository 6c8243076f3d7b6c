// The run bundle: what mmaction2 needs to train a workbench run on a cluster, as a folder of small
// text files. config.py `_base_`s the official Video Swin config and holds only the overrides; the
// sbatch script's #SBATCH resources equal its inner srun line (Slurm refuses or mis-places the job
// otherwise); the LR is scaled linearly from the recipes' global batch of 64. Every path in the
// files is relative to the bundle folder, which is the job's working directory, so the same
// bundle works wherever it is copied; `engine` is a link the job script makes to the engine folder.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Bundle, BundleFile, BundleManifest, ClusterKind, EngineFlavor, VideoDecoder } from '../protocol/cluster.ts';
import { modelConfigOf, type RunConfig } from '../train/run-config.ts';
import { parseModelConfig } from '../model/config.ts';
import { numFeatures } from '../model/config.ts';
import { VARIANTS } from '../model/variants.ts';
import { toPython, tuple, quote } from './python-literal.ts';
import {
  STRICT_LOAD_HOOK,
  bundleFileData,
  engineAnnotations,
  enginePipelines,
  loadFromWeights,
  parseDecoder,
  pretrainedWeights,
  type BundleWeights,
} from './bundle-data.ts';

/** The official configs' global batch (8 GPUs x 8 clips) their learning rates were tuned for. */
export const REFERENCE_BATCH = 64;

interface BaseConfig {
  variant: string;
  '0.x': string;
  '1.x': string;
}

// Official configs per workbench variant. 1.x ships Kinetics-400 Swin configs only; other
// variants start from the closest one and override what differs.
const BASES: BaseConfig[] = [
  {
    variant: 'swin_t',
    '0.x': 'swin_tiny_patch244_window877_kinetics400_1k.py',
    '1.x': 'swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',
  },
  {
    variant: 'swin_s',
    '0.x': 'swin_small_patch244_window877_kinetics400_1k.py',
    '1.x': 'swin-small-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',
  },
  {
    variant: 'swin_b',
    '0.x': 'swin_base_patch244_window877_kinetics400_1k.py',
    '1.x': 'swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',
  },
  {
    variant: 'swin_b_k400_22k',
    '0.x': 'swin_base_patch244_window877_kinetics400_22k.py',
    '1.x': 'swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',
  },
  {
    variant: 'swin_b_k600',
    '0.x': 'swin_base_patch244_window877_kinetics600_22k.py',
    '1.x': 'swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',
  },
  {
    variant: 'swin_b_ssv2',
    '0.x': 'swin_base_patch244_window1677_sthv2.py',
    '1.x': 'swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',
  },
];

export const BASE_CONFIG_DIR = 'configs/recognition/swin';

export interface BundleOptions {
  flavor: EngineFlavor;
  gpus: number;
  nodes: number;
  runId?: string | null;
  name?: string;
  /** Dataset folder on the cluster; default: the run config's data.root. */
  dataRoot?: string | null;
  valRoot?: string | null;
  /** Pretrained 2-D checkpoint / 3-D load_from path on the cluster; default: the run config's. */
  pretrained?: string | null;
  loadFrom?: string | null;
  /** Engine folder on the cluster (the job links it as ./engine). */
  engineDir?: string;
  python?: string;
  partition?: string | null;
  cpusPerTask?: number;
  timeLimit?: string | null;
  setup?: string[];
  environment?: Record<string, string>;
  torchrun?: string;
  /** Video decoder of the pipelines (default decord, the configs'). */
  decoder?: VideoDecoder;
  /** Mixed precision (default on, as the official configs). */
  amp?: boolean;
  /** Log every N iterations; default: the official config's (20 in 0.x, 100 in 1.x). */
  logInterval?: number | null;
  /** An official config to use instead of the variant's (file name under configs/recognition/swin). */
  baseConfig?: string | null;
  now?: Date;
}

const positive = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name}: expected a positive integer, received ${JSON.stringify(value)}`);
  return value;
};

function readAnnotation(field: string, path: string): string {
  if (!existsSync(path))
    throw new Error(`data.${field}: ${path} does not exist (the bundle carries a copy of each annotation file)`);
  return readFileSync(path, 'utf8');
}

const countLines = (text: string): number => text.split('\n').filter((line) => line.trim().length > 0).length;

/** Shell-quotes a word for bash. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Environment variable assignment whose value may use $VAR and ~ expansion on the cluster. */
function exportLine(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`environment: "${name}" is not a valid variable name`);
  return `export ${name}="${value.replace(/(["\\`])/g, '\\$1')}"`;
}

/** Builds the bundle in memory (what the launch form shows before submitting). */
export function buildBundle(config: RunConfig, options: BundleOptions): Bundle {
  const flavor = options.flavor;
  if (flavor !== '0.x' && flavor !== '1.x')
    throw new Error(`flavor: expected "0.x" or "1.x", received ${JSON.stringify(flavor)}`);
  const gpus = positive('gpus', options.gpus);
  const nodes = positive('nodes', options.nodes);
  const cpusPerTask = positive('cpus per task', options.cpusPerTask ?? 4);
  const worldSize = gpus * nodes;
  const notes: string[] = [];
  const model = parseModelConfig(modelConfigOf(config));
  const variant = config.model.variant;
  const base = BASES.find((entry) => entry.variant === variant) ?? BASES[0];
  if (!BASES.some((entry) => entry.variant === variant))
    notes.push(
      `variant ${variant ?? '(explicit backbone)'} has no official config; ${base[flavor]} is the base and the backbone is overridden`,
    );
  const baseConfig = options.baseConfig ?? base[flavor];
  const baseVariant = VARIANTS[base.variant].config;
  const geometryDiffers = variant !== base.variant || options.baseConfig != null;

  const trainText = readAnnotation('train_ann', config.data.train_ann);
  const valText = config.data.val_ann ? readAnnotation('val_ann', config.data.val_ann) : null;
  const trainVideos = countLines(trainText);
  if (trainVideos === 0) throw new Error(`data.train_ann: ${config.data.train_ann} has no annotation lines`);
  const microBatch = config.batch_size;
  const updateInterval = config.update_interval;
  const clipsPerGpu = microBatch * updateInterval;
  const globalBatch = clipsPerGpu * worldSize;
  const scaledLr = (config.optimizer.lr * globalBatch) / REFERENCE_BATCH;
  const itersPerEpoch = Math.ceil(Math.ceil(trainVideos / worldSize) / microBatch);
  // The base configs' parameter groups always apply (also for paramwise "none", see the note): the
  // first group (the one both engines log as `lr`) is a backbone group at 0.1x the head LR. mmengine
  // also logs the head's as `base_lr`, which the log mapping prefers.
  const loggedLrToBase = 10;
  if (config.optimizer.paramwise !== 'official')
    notes.push(
      'optimizer.paramwise "none" has no mmaction2 equivalent here: the official parameter groups of the base config apply',
    );
  if (config.max_iterations_per_epoch !== null)
    notes.push('max_iterations_per_epoch is a workbench-only shortcut; mmaction2 trains on the whole set');
  if (config.optimizer.clip_grad_norm !== null)
    notes.push(`gradient clipping at ${config.optimizer.clip_grad_norm} is set in the optimizer hook`);
  const decoder = parseDecoder(options.decoder ?? 'decord');
  const amp = options.amp ?? true;
  if (!amp) notes.push('mixed precision (AMP) is off');
  const pipelines = enginePipelines(config, flavor, decoder);
  const trainAnnotations = engineAnnotations(trainText, config.data.train_ann, flavor);
  const valAnnotations = valText !== null ? engineAnnotations(valText, config.data.val_ann!, flavor) : null;
  const delimiter = trainAnnotations.delimiter ?? valAnnotations?.delimiter ?? null;
  // One delimiter for both files: rewrite the other one too when only one has spaces.
  const annotationText = (text: string, file: string, parsed: { text: string; delimiter: string | null }) =>
    delimiter && !parsed.delimiter ? engineAnnotations(text, file, flavor, true).text : parsed.text;
  if (delimiter)
    notes.push("annotation paths hold spaces: the bundle writes them tab-separated and sets the datasets' delimiter");
  const dataRoot = options.dataRoot ?? config.data.root;
  const valRoot = options.valRoot ?? config.data.val_root ?? dataRoot;
  const backbone = model.backbone;
  // Weights: explicit cluster paths are written as given; the run config's local files travel in the bundle.
  const weights: BundleWeights[] = [];
  let pretrained: string | null = null;
  if (options.pretrained) pretrained = options.pretrained;
  else if (config.model.pretrained) {
    const shipped = pretrainedWeights(config.model.pretrained);
    weights.push(shipped);
    pretrained = shipped.configValue;
  }
  let loadFrom: string | null = null;
  let allowMissing: string[] = [];
  if (options.loadFrom) loadFrom = options.loadFrom;
  else if (config.model.load_from) {
    const shipped = loadFromWeights(config, config.model.load_from, flavor);
    weights.push(shipped);
    loadFrom = shipped.configValue;
    allowMissing = shipped.allowMissing;
  }
  for (const entry of weights) notes.push(...entry.notes);

  const modelOverride: Record<string, unknown> = {};
  const backboneOverride: Record<string, unknown> = { drop_path_rate: backbone.drop_path_rate };
  if (
    geometryDiffers ||
    JSON.stringify(baseVariant.backbone) !== JSON.stringify({ ...baseVariant.backbone, ...config.model.backbone })
  ) {
    backboneOverride.patch_size = tuple(...backbone.patch_size);
    backboneOverride.window_size = tuple(...backbone.window_size);
    backboneOverride.mlp_ratio = backbone.mlp_ratio;
    backboneOverride.qkv_bias = backbone.qkv_bias;
    backboneOverride.patch_norm = backbone.patch_norm;
    if (flavor === '0.x')
      Object.assign(backboneOverride, {
        embed_dim: backbone.embed_dim,
        depths: [...backbone.depths],
        num_heads: [...backbone.num_heads],
      });
    // 1.x names the geometry through `arch` (a preset name in the base): replace it wholesale.
    else
      backboneOverride.arch = {
        _delete_: true,
        embed_dims: backbone.embed_dim,
        depths: [...backbone.depths],
        num_heads: [...backbone.num_heads],
      };
  }
  // Always both, as the run config says: the engine inflates whenever pretrained2d is set (even for
  // pretrained=None), and the base configs' ImageNet URL would otherwise stay.
  Object.assign(backboneOverride, { pretrained, pretrained2d: pretrained !== null });
  modelOverride.backbone = backboneOverride;
  modelOverride.cls_head = {
    num_classes: model.num_classes,
    dropout_ratio: model.head_dropout,
    in_channels: numFeatures(backbone),
  };
  if (config.loss.label_smoothing > 0 && variant !== 'swin_b_ssv2')
    notes.push(`label smoothing ${config.loss.label_smoothing} is not carried over (only the SSv2 base config smooths labels)`);

  const header = [
    `# Generated by Video Swin Workbench${options.runId ? ` for run ${options.runId}` : ''}: only the overrides of the official config.`,
    '# Paths are relative to this folder (the job runs here); ./engine links to the engine checkout.',
    `_base_ = [${quote(`engine/${BASE_CONFIG_DIR}/${baseConfig}`)}]`,
    '',
  ];
  const assignments: [string, unknown][] = [['model', modelOverride]];
  const trainAnn = 'annotations/train.txt';
  const valAnn = valText !== null ? 'annotations/val.txt' : null;
  const logInterval = options.logInterval ?? null;
  const strictLoad = loadFrom
    ? [
        ['custom_imports', { imports: ['vswin_hooks'], allow_failed_imports: false }],
        ['custom_hooks', [{ type: 'VswinStrictLoad', checkpoint: loadFrom, allow_missing: allowMissing }]],
      ]
    : [];
  if (flavor === '0.x') {
    const pipeline = { train: pipelines.train, val: pipelines.val, test: pipelines.test };
    const split = (ann: string, root: string, mode: 'train' | 'val' | 'test') => ({
      ann_file: ann,
      data_prefix: root,
      pipeline: pipeline[mode],
    });
    assignments.push(['data_root', dataRoot], ['data_root_val', valRoot]);
    assignments.push([
      'data',
      {
        videos_per_gpu: clipsPerGpu,
        workers_per_gpu: Math.max(1, config.data.workers),
        train: split(trainAnn, dataRoot, 'train'),
        val: valAnn ? split(valAnn, valRoot, 'val') : undefined,
        test: valAnn ? split(valAnn, valRoot, 'test') : undefined,
      },
    ]);
    assignments.push([
      'optimizer',
      { lr: scaledLr, weight_decay: config.optimizer.weight_decay, betas: tuple(...config.optimizer.betas) },
    ]);
    assignments.push([
      'optimizer_config',
      {
        update_interval: updateInterval,
        grad_clip: config.optimizer.clip_grad_norm !== null ? { max_norm: config.optimizer.clip_grad_norm } : null,
        use_fp16: amp,
      },
    ]);
    assignments.push([
      'lr_config',
      { min_lr: config.schedule.min_lr, warmup_iters: config.schedule.warmup_epochs, warmup_ratio: config.schedule.warmup_ratio },
    ]);
    assignments.push(['total_epochs', config.epochs]);
    assignments.push([
      'evaluation',
      {
        interval: config.evaluation.interval,
        save_best: config.checkpoint.save_best
          ? `${config.evaluation.metric === 'mean_class_accuracy' ? 'mean_class_accuracy' : `${config.evaluation.metric}_acc`}`
          : null,
      },
    ]);
    assignments.push(['checkpoint_config', { interval: 1 }]);
    if (logInterval) assignments.push(['log_config', { interval: logInterval }]);
    if (loadFrom) assignments.push(['load_from', loadFrom]);
  } else {
    const dataset = (ann: string, root: string, pipeline: Record<string, unknown>[]) => ({
      ann_file: ann,
      data_prefix: { video: root },
      pipeline,
      delimiter: delimiter ?? undefined,
    });
    assignments.push([
      'train_dataloader',
      {
        batch_size: microBatch,
        num_workers: Math.max(1, config.data.workers),
        dataset: dataset(trainAnn, dataRoot, pipelines.train),
      },
    ]);
    if (valAnn) {
      assignments.push(['val_dataloader', { batch_size: microBatch, dataset: dataset(valAnn, valRoot, pipelines.val) }]);
      assignments.push(['test_dataloader', { dataset: dataset(valAnn, valRoot, pipelines.test) }]);
      assignments.push(['train_cfg', { max_epochs: config.epochs, val_interval: config.evaluation.interval }]);
    } else {
      assignments.push(['train_cfg', { max_epochs: config.epochs, val_interval: config.epochs + 1 }]);
      assignments.push(
        ['val_dataloader', null],
        ['val_cfg', null],
        ['val_evaluator', null],
        ['test_dataloader', null],
        ['test_cfg', null],
        ['test_evaluator', null],
      );
    }
    assignments.push([
      'optim_wrapper',
      {
        type: amp ? 'AmpOptimWrapper' : 'OptimWrapper',
        optimizer: { lr: scaledLr, weight_decay: config.optimizer.weight_decay, betas: tuple(...config.optimizer.betas) },
        accumulative_counts: updateInterval > 1 ? updateInterval : undefined,
        clip_grad: config.optimizer.clip_grad_norm !== null ? { max_norm: config.optimizer.clip_grad_norm } : undefined,
      },
    ]);
    assignments.push([
      'param_scheduler',
      [
        {
          type: 'LinearLR',
          start_factor: config.schedule.warmup_ratio,
          by_epoch: true,
          begin: 0,
          end: config.schedule.warmup_epochs,
          convert_to_iter_based: true,
        },
        {
          type: 'CosineAnnealingLR',
          T_max: config.epochs,
          eta_min: config.schedule.min_lr,
          by_epoch: true,
          begin: 0,
          end: config.epochs,
        },
      ],
    ]);
    const saveBest =
      valAnn && config.checkpoint.save_best
        ? config.evaluation.metric === 'top1'
          ? 'acc/top1'
          : config.evaluation.metric === 'top5'
            ? 'acc/top5'
            : 'acc/mean1'
        : null;
    assignments.push([
      'default_hooks',
      {
        checkpoint: { interval: 1, max_keep_ckpts: config.checkpoint.keep_last, save_best: saveBest ?? undefined },
        logger: logInterval ? { interval: logInterval } : undefined,
      },
    ]);
    assignments.push(['randomness', { seed: config.seed }]);
    // The LR above is already scaled; the engine must not scale it again.
    assignments.push(['auto_scale_lr', { enable: false, base_batch_size: REFERENCE_BATCH }]);
    if (loadFrom) assignments.push(['load_from', loadFrom]);
  }
  assignments.push(...(strictLoad as [string, unknown][]));
  assignments.push(['work_dir', './work']);
  const configText = [...header, ...assignments.map(([name, value]) => `${name} = ${toPython(value)}`), ''].join('\n');

  const files: BundleFile[] = [{ path: 'config.py', content: configText, executable: false }];
  files.push({ path: trainAnn, content: annotationText(trainText, config.data.train_ann, trainAnnotations), executable: false });
  if (valText !== null && valAnn && valAnnotations)
    files.push({ path: valAnn, content: annotationText(valText, config.data.val_ann!, valAnnotations), executable: false });
  for (const entry of weights) if (entry.file) files.push(entry.file);
  if (loadFrom) files.push({ path: 'vswin_hooks.py', content: STRICT_LOAD_HOOK, executable: false });
  if (config.data.classes)
    files.push({ path: 'label_map.txt', content: readAnnotation('classes', config.data.classes), executable: false });
  const launch = { flavor, gpus, nodes, cpusPerTask, seed: config.seed, validate: valAnn !== null, options };
  files.push({ path: 'job.sbatch', content: sbatchScript(launch), executable: true });
  files.push({ path: 'launch-torchrun.sh', content: torchrunScript(launch), executable: true });

  const manifest: BundleManifest = {
    format: 'vswin-bundle',
    version: 1,
    runId: options.runId ?? null,
    name: options.name ?? options.runId ?? 'run',
    flavor,
    baseConfig: `${BASE_CONFIG_DIR}/${baseConfig}`,
    gpus,
    nodes,
    worldSize,
    clipsPerGpu,
    microBatch,
    updateInterval,
    globalBatch,
    baseLr: config.optimizer.lr,
    scaledLr,
    referenceBatch: REFERENCE_BATCH,
    epochs: config.epochs,
    trainVideos,
    itersPerEpoch,
    loggedLrToBase,
    dataRoot,
    valRoot: valAnn ? valRoot : null,
    seed: config.seed,
    decoder,
    amp,
    pipeline: pipelines.summary,
    delimiter,
    files: [...files.map((file) => file.path), 'manifest.json'],
    notes,
    createdAt: (options.now ?? new Date()).toISOString(),
  };
  files.push({ path: 'manifest.json', content: `${JSON.stringify(manifest, null, 2)}\n`, executable: false });
  return { manifest, files };
}

interface LaunchSpec {
  flavor: EngineFlavor;
  gpus: number;
  nodes: number;
  cpusPerTask: number;
  seed: number;
  validate: boolean;
  options: BundleOptions;
}

function preamble(spec: LaunchSpec, kind: ClusterKind): string[] {
  const engine = spec.options.engineDir ?? (spec.flavor === '0.x' ? '$HOME/Video-Swin-Transformer' : '$HOME/mmaction2');
  const lines = [
    'set -u',
    // Tilde and $VAR in the engine path expand on the cluster, in the job's environment.
    `ENGINE_DIR="\${VSWIN_ENGINE_DIR:-${engine.replace(/^~(?=\/|$)/, '$HOME').replace(/(["\\`])/g, '\\$1')}}"`,
    `PYTHON="\${VSWIN_PYTHON:-${(spec.options.python ?? 'python').replace(/(["\\`])/g, '\\$1')}}"`,
    ...Object.entries(spec.options.environment ?? {}).map(([name, value]) => exportLine(name, value)),
    ...(spec.options.setup ?? []),
    'ln -sfn "$ENGINE_DIR" engine',
    '# The bundle folder holds vswin_hooks.py (custom_imports of config.py).',
    'export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"',
    'mkdir -p work .vswin',
  ];
  const resume =
    spec.flavor === '0.x'
      ? [
          'RESUME=()',
          '# Auto-resume: the official repo resumes from an explicit checkpoint.',
          'if [ -e work/latest.pth ]; then RESUME=(--resume-from work/latest.pth); fi',
        ]
      : [
          'RESUME=()',
          '# mmaction2 1.x finds work/last_checkpoint itself with --resume.',
          'if [ -e work/last_checkpoint ]; then RESUME=(--resume); fi',
        ];
  const jobVariable = kind === 'slurm' ? '$SLURM_JOB_ID' : '$$';
  const status = [
    "# The status file outlives Slurm's memory of the job (no accounting needed).",
    '# "terminated" is 1 when this script itself got SIGTERM (scancel, time limit): a 143 from a rank',
    '# that srun killed because another rank failed is a failure, not a cancellation.',
    'TERMINATED=0',
    'write_status() {',
    '  code=$?',
    `  printf '{"job_id": "%s", "exit_code": %d, "terminated": %d, "finished_at": "%s"}\\n' "${jobVariable}" "$code" "$TERMINATED" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > ".vswin/status-${jobVariable}.json.tmp"`,
    `  mv ".vswin/status-${jobVariable}.json.tmp" ".vswin/status-${jobVariable}.json"`,
    '}',
    'trap write_status EXIT',
    "trap 'TERMINATED=1; exit 143' TERM",
  ];
  return [...lines, ...status, ...resume];
}

function trainArguments(spec: LaunchSpec, launcher: 'slurm' | 'pytorch'): string {
  const parts = ['"$ENGINE_DIR/tools/train.py"', 'config.py', `--launcher=${launcher}`, '--work-dir', 'work'];
  if (spec.flavor === '0.x') {
    parts.push('--seed', String(spec.seed));
    if (spec.validate) parts.push('--validate');
  }
  // The +-form keeps bash < 4.4 (set -u) from calling an empty array unbound.
  parts.push('${RESUME[@]+"${RESUME[@]}"}');
  return parts.join(' ');
}

function sbatchScript(spec: LaunchSpec): string {
  const tasks = spec.gpus * spec.nodes;
  const name = `vswin-${spec.options.runId ?? spec.options.name ?? 'run'}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  const resources = [
    `--nodes=${spec.nodes}`,
    `--ntasks=${tasks}`,
    `--ntasks-per-node=${spec.gpus}`,
    `--gres=gpu:${spec.gpus}`,
    `--cpus-per-task=${spec.cpusPerTask}`,
  ];
  const header = ['#!/bin/bash', `#SBATCH --job-name=${name}`];
  if (spec.options.partition) header.push(`#SBATCH --partition=${spec.options.partition}`);
  header.push(...resources.map((resource) => `#SBATCH ${resource}`));
  if (spec.options.timeLimit) header.push(`#SBATCH --time=${spec.options.timeLimit}`);
  header.push(
    '#SBATCH --output=slurm-%j.out',
    '#SBATCH --open-mode=append',
    '# Generated by Video Swin Workbench; the srun line below uses the same resources as the #SBATCH lines.',
  );
  const partition = spec.options.partition ? [`--partition=${spec.options.partition}`] : [];
  return [
    ...header,
    ...preamble(spec, 'slurm'),
    '# A port per job: two jobs on one node would both take 29500.',
    'export MASTER_PORT=$((20000 + SLURM_JOB_ID % 10000))',
    `srun ${[...partition, ...resources].join(' ')} --kill-on-bad-exit=1 "$PYTHON" -u ${trainArguments(spec, 'slurm')}`,
    '',
  ].join('\n');
}

function torchrunScript(spec: LaunchSpec): string {
  // torchrun starts the workers with its own interpreter: run it under the configured $PYTHON.
  const configured = spec.options.torchrun ?? 'torchrun';
  const torchrun = configured === 'torchrun' ? '"$PYTHON" -m torch.distributed.run' : configured;
  return [
    '#!/bin/bash',
    '# Generated by Video Swin Workbench: one machine, one process per GPU (torchrun), in the background.',
    'cd "$(dirname "$0")"',
    ...preamble(spec, 'torchrun'),
    'export MASTER_PORT="${MASTER_PORT:-$((20000 + $$ % 10000))}"',
    `${torchrun} --nnodes=1 --nproc_per_node=${spec.gpus} --master_port="$MASTER_PORT" ${trainArguments(spec, 'pytorch')}`,
    '',
  ].join('\n');
}

/** Writes the bundle into `dir` (created as needed), each file atomically; returns the paths. */
export function writeBundle(bundle: Bundle, dir: string): string[] {
  const written: string[] = [];
  for (const file of bundle.files) {
    const target = join(dir, file.path);
    mkdirSync(dirname(target), { recursive: true });
    const temporary = `${target}.tmp-${process.pid}`;
    const data = bundleFileData(file);
    if (typeof data === 'string') writeFileSync(temporary, data);
    else writeFileSync(temporary, Buffer.concat(data));
    if (file.executable) chmodSync(temporary, 0o755);
    renameSync(temporary, target);
    written.push(target);
  }
  return written;
}
