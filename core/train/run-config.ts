// The run config: everything needed to repeat a training run, as one validated (zod) document.
// Field names follow the official mmaction configs where one exists (snake_case). A config may
// `extends` a preset from resources/presets and override any field; paths are relative to the
// config file. Errors name the field, the value received and what is allowed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseLabelMap } from '../data/annotations.ts';
import { backboneConfigSchema } from '../model/config.ts';
import type { ModelConfigInput } from '../model/config.ts';
import { VARIANTS } from '../model/variants.ts';
import { IssuesError, issuesOf, type ConfigIssue } from '../protocol/issues.ts';

const positiveInt = z.number().int().positive();
const path = z.string().min(1);

const modelSchema = z
  .object({
    /** A named variant (core/model/variants.ts); `backbone` then overrides single fields. */
    variant: z.string().nullable().default(null),
    backbone: z.record(z.string(), z.unknown()).default({}),
    num_classes: positiveInt,
    drop_path_rate: z.number().min(0).max(1).nullable().default(null),
    head_dropout: z.number().min(0).max(1).default(0.5),
    /** 2-D ImageNet Swin checkpoint to inflate (`pretrained2d=True`). */
    pretrained: path.nullable().default(null),
    /** 3-D recognizer checkpoint to start from; the head is re-initialised when classes differ. */
    load_from: path.nullable().default(null),
  })
  .strict()
  .superRefine((model, ctx) => {
    if (model.variant !== null && !(model.variant in VARIANTS)) {
      ctx.addIssue({
        code: 'custom',
        path: ['variant'],
        message: `unknown variant; allowed: ${Object.keys(VARIANTS).join(', ')}`,
      });
    }
    if (model.variant === null) {
      const full = backboneConfigSchema.safeParse(model.backbone);
      if (!full.success) {
        for (const issue of full.error.issues)
          ctx.addIssue({
            code: 'custom',
            path: ['backbone', ...(issue.path as (string | number)[])],
            message: `${issue.message} (give a "variant" or a complete backbone)`,
          });
      }
    }
    if (model.pretrained && model.load_from) {
      ctx.addIssue({
        code: 'custom',
        path: ['load_from'],
        message: 'use either "pretrained" (2-D inflation) or "load_from" (3-D checkpoint), not both',
      });
    }
  });

/**
 * The data pipeline of a run: a preset of the data engine (core/data/pipeline.ts) and its parameters.
 * Checkpoints store it whole (core/train/checkpoint-metadata.ts): every field the input depends on.
 */
export const pipelineConfigSchema = z
  .object({
    preset: z.enum(['k400', 'ssv2', 'small']),
    clip_len: positiveInt.optional(),
    frame_interval: positiveInt.optional(),
    short_side: positiveInt.optional(),
    crop_size: positiveInt.optional(),
    flip_ratio: z.number().min(0).max(1).optional(),
    area_range: z.tuple([z.number().gt(0).max(1), z.number().gt(0).max(1)]).optional(),
    /** imgaug RandAugment of the train pipeline (SSv2 default n=4 m=7, others none); false turns it off. */
    rand_augment: z
      .union([
        z.literal(false),
        z
          .object({
            n: z.number().int().min(0).max(18),
            m: z.number().int().min(0),
            cval: z.number().int().min(0).max(255).default(128),
            /** imgaug's own first step flips with probability 0.5, even in the SSv2 recipe. */
            flip_ratio: z.number().min(0).max(1).default(0.5),
          })
          .strict(),
      ])
      .optional(),
    /** Test-time views (clips x crops) used by `vswin eval` unless --views is given. */
    test_clips: positiveInt.optional(),
    test_crops: z.union([z.literal(1), z.literal(3)]).optional(),
  })
  .strict();

export type PipelineConfig = z.output<typeof pipelineConfigSchema>;

const dataSchema = z
  .object({
    train_ann: path,
    val_ann: path.nullable().default(null),
    /** Folder the annotation paths are relative to (mmaction `data_prefix`). */
    root: path,
    val_root: path.nullable().default(null),
    /** Label map, one class name per line (line i = label i). */
    classes: path.nullable().default(null),
    /** Pipeline preset of the data engine (core/data/pipeline.ts) and its parameters. */
    pipeline: pipelineConfigSchema,
    workers: z.number().int().min(0).default(1),
    /** Decode every video once and keep the frames in memory (small datasets; max 2 GiB). */
    cache: z.boolean().default(false),
  })
  .strict();

const optimizerSchema = z
  .object({
    type: z.literal('adamw').default('adamw'),
    /** Base (head) LR; the official groups give the backbone 0.1x. */
    lr: z.number().positive(),
    weight_decay: z.number().min(0),
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
    eps: z.number().positive().default(1e-8),
    /** 'official': the released configs' custom keys (fact sheet 6.2); 'none': one group. */
    paramwise: z.enum(['official', 'none']).default('official'),
    /** Max global L2 norm of the gradient; null = no clipping (the official runs). */
    clip_grad_norm: z.number().positive().nullable().default(null),
  })
  .strict();

const scheduleSchema = z
  .object({
    policy: z.literal('cosine').default('cosine'),
    min_lr: z.number().min(0).default(0),
    warmup_epochs: z.number().min(0).default(2.5),
    warmup_ratio: z.number().gt(0).max(1).default(0.1),
  })
  .strict();

const metricName = z.enum(['top1', 'top5', 'mean_class_accuracy']);

export const runConfigSchema = z
  .object({
    description: z.string().default(''),
    model: modelSchema,
    data: dataSchema,
    optimizer: optimizerSchema,
    schedule: scheduleSchema.default({ policy: 'cosine', min_lr: 0, warmup_epochs: 2.5, warmup_ratio: 0.1 }),
    loss: z
      .object({ label_smoothing: z.number().min(0).lt(1).default(0) })
      .strict()
      .default({ label_smoothing: 0 }),
    epochs: positiveInt,
    /** Micro-batch: clips per forward/backward (the official `videos_per_gpu / update_interval`). */
    batch_size: positiveInt,
    /** Micro-batches whose gradients accumulate into one optimizer step. */
    update_interval: positiveInt.default(1),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
    evaluation: z
      .object({
        /** Validate every N epochs (and always after the last). */
        interval: positiveInt.default(1),
        metric: metricName.default('top1'),
      })
      .strict()
      .default({ interval: 1, metric: 'top1' }),
    checkpoint: z
      .object({
        /** Keep a permanent snapshot every N epochs; null keeps none beyond `keep_last` and the best. */
        interval: positiveInt.nullable().default(null),
        /** A checkpoint is written after every epoch (for resume); the newest `keep_last` are kept. */
        keep_last: z.number().int().min(1).default(2),
        save_best: z.boolean().default(true),
      })
      .strict()
      .default({ interval: null, keep_last: 2, save_best: true }),
    /** Use at most this many micro-batches per epoch (quick experiments); null = the whole set. */
    max_iterations_per_epoch: positiveInt.nullable().default(null),
  })
  .strict();

export type RunConfig = z.output<typeof runConfigSchema>;
export type RunConfigInput = z.input<typeof runConfigSchema>;

export const PRESETS_DIR = fileURLToPath(new URL('../../resources/presets/', import.meta.url));

/** Names of the presets shipped in resources/presets (file names without .json). */
export function presetNames(): string[] {
  if (!existsSync(PRESETS_DIR)) return [];
  return readdirSync(PRESETS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** Validates an already merged config object; an IssuesError lists every bad field. */
export function parseRunConfig(value: unknown, source = 'run config'): RunConfig {
  const result = runConfigSchema.safeParse(value);
  if (result.success) return result.data;
  throw new IssuesError(source, issuesOf(result.error, value));
}

/** Deep merge for config overrides: objects merge, everything else (arrays included) replaces. */
export function mergeConfig(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = mergeConfig(base[key], value);
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function readJson(file: string): unknown {
  if (!existsSync(file)) throw new Error(`${file}: file not found`);
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

/** Raw JSON of a shipped preset. */
export function presetJson(name: string): Record<string, unknown> {
  const names = presetNames();
  if (!names.includes(name)) throw new Error(`unknown preset "${name}"; allowed: ${names.join(', ')}`);
  return readJson(resolve(PRESETS_DIR, `${name}.json`)) as Record<string, unknown>;
}

/**
 * Resolves `extends` (a preset name or a relative JSON path, chains allowed), merges, validates,
 * and makes every path absolute relative to the file that declared it.
 */
export function loadRunConfig(file: string): RunConfig {
  const absolute = resolve(file);
  const merged = resolveExtends(readJson(absolute), dirname(absolute), absolute, new Set([absolute]));
  return parseRunConfig(merged, absolute);
}

/** Same as loadRunConfig for an in-memory object whose relative paths resolve against `baseDir`. */
export function resolveRunConfig(value: unknown, baseDir: string, source = 'run config'): RunConfig {
  return parseRunConfig(resolveExtends(value, baseDir, source, new Set()), source);
}

function resolveExtends(value: unknown, baseDir: string, source: string, seen: Set<string>): unknown {
  if (!isPlainObject(value)) throw new Error(`${source}: a run config must be a JSON object, received ${JSON.stringify(value)}`);
  const { extends: parent, ...own } = value;
  const local = absolutePaths(own, baseDir);
  if (parent === undefined) return local;
  if (typeof parent !== 'string')
    throw new Error(`${source}: "extends" must be a preset name or a path, received ${JSON.stringify(parent)}`);
  let base: unknown;
  if (parent.endsWith('.json')) {
    const parentFile = resolve(baseDir, parent);
    if (seen.has(parentFile)) throw new Error(`${source}: "extends" forms a cycle through ${parentFile}`);
    seen.add(parentFile);
    base = resolveExtends(readJson(parentFile), dirname(parentFile), parentFile, seen);
  } else {
    base = absolutePaths(presetJson(parent), baseDir);
  }
  return mergeConfig(base, local);
}

const PATH_FIELDS: [string, string][] = [
  ['model', 'pretrained'],
  ['model', 'load_from'],
  ['data', 'train_ann'],
  ['data', 'val_ann'],
  ['data', 'root'],
  ['data', 'val_root'],
  ['data', 'classes'],
];

function absolutePaths(value: Record<string, unknown>, baseDir: string): Record<string, unknown> {
  const out = structuredClone(value);
  for (const [section, field] of PATH_FIELDS) {
    const holder = out[section];
    if (!isPlainObject(holder)) continue;
    const current = holder[field];
    if (typeof current === 'string' && current.length > 0 && !isAbsolute(current)) holder[field] = resolve(baseDir, current);
  }
  return out;
}

/** Checks that every file the config names exists, listing all that do not. */
export function checkConfigFiles(config: RunConfig): void {
  const missing: ConfigIssue[] = [];
  const check = (field: string, file: string | null) => {
    if (file && !existsSync(file)) missing.push({ path: field, message: `${file} does not exist`, received: null });
  };
  check('model.pretrained', config.model.pretrained);
  check('model.load_from', config.model.load_from);
  check('data.train_ann', config.data.train_ann);
  check('data.val_ann', config.data.val_ann);
  check('data.root', config.data.root);
  check('data.val_root', config.data.val_root);
  check('data.classes', config.data.classes);
  if (missing.length) throw new IssuesError('run config', missing, { heading: 'The run config names files that are missing:' });
  // The head's size must be the label map's: 7 classes against a 4-class map trains without complaint otherwise.
  if (config.data.classes) {
    const { classes } = parseLabelMap(readFileSync(config.data.classes, 'utf8'), config.data.classes);
    if (classes.length !== config.model.num_classes)
      throw new IssuesError(
        'run config',
        [
          {
            path: 'model.num_classes',
            message:
              `${config.model.num_classes}, but the label map data.classes (${config.data.classes}) names ${classes.length} classes; ` +
              `set model.num_classes to ${classes.length} or use the matching label map`,
            received: null,
          },
        ],
        { heading: 'The run config does not fit its label map:' },
      );
  }
}

/** The model config a run builds: the variant (or explicit backbone) with the run's overrides. */
export function modelConfigOf(config: RunConfig): ModelConfigInput {
  const base = config.model.variant ? VARIANTS[config.model.variant].config : null;
  const backbone = { ...(base?.backbone ?? {}), ...config.model.backbone } as ModelConfigInput['backbone'];
  if (config.model.drop_path_rate !== null) backbone.drop_path_rate = config.model.drop_path_rate;
  return { backbone, num_classes: config.model.num_classes, head_dropout: config.model.head_dropout };
}
