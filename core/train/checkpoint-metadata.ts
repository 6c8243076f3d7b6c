// What a weights file written by this workbench says about itself: one versioned schema, written by
// `checkpointMetadata` (the trainer, the cluster pull) and read by `readCheckpointMetadata` (every
// evaluation, comparison, attention view and prediction, through core/app/checkpoints.ts).
//
// Version 2 holds everything needed to use the weights without the run config: the model config,
// the class names, the whole data pipeline section of the run config (every field the input
// depends on), the run id and the project version. Files of the two earlier shapes still load:
//   cli-v1:     written by `vswin train` before version 2: {config, class_names, pipeline (snake_case,
//               the run config's section), project_version, backend, run_id, epoch, step, metrics}
//   service-v1: written by the workbench's Training page and the cluster pull before version 2:
//               {config, classes, pipeline: {preset, clipLen, frameInterval, cropSize, shortSide},
//               runId, run_id, epoch, step, metrics}
// Other files (`vswin checkpoint convert`, foreign tools) may carry only a model config, or nothing.
import { z } from 'zod';
import { IssuesError, issuesOf } from '../protocol/issues.ts';
import { modelConfigSchema, parseModelConfig, type ModelConfig } from '../model/config.ts';
import { pipelineConfigSchema, type PipelineConfig } from './run-config.ts';

export const CHECKPOINT_METADATA_VERSION = 2;

export const checkpointMetadataSchema = z
  .object({
    metadata_version: z.literal(CHECKPOINT_METADATA_VERSION),
    /** The model config (the shape of `config` in the parity manifest). */
    config: modelConfigSchema,
    /** Class names, label i = class_names[i]; as many as the model has classes. */
    class_names: z.array(z.string()),
    /** The run config's `data.pipeline` section, whole. */
    pipeline: pipelineConfigSchema,
    run_id: z.string().nullable(),
    project_version: z.string(),
    backend: z.string().nullable(),
    /** Epochs completed when the weights were saved. */
    epoch: z.number().int().min(0).nullable(),
    /** Optimizer steps taken. */
    step: z.number().int().min(0).nullable(),
    /** Validation metrics of that epoch (empty when it was not validated). */
    metrics: z.record(z.string(), z.number()),
    /** Where the weights came from when they were not trained here (e.g. "cluster:/path/epoch_3.pth"). */
    source: z.string().nullable(),
  })
  .superRefine((metadata, context) => {
    if (metadata.class_names.length !== metadata.config.num_classes)
      context.addIssue({
        code: 'custom',
        path: ['class_names'],
        message: `${metadata.class_names.length} class names for a model of ${metadata.config.num_classes} classes`,
      });
  });

export type CheckpointMetadata = z.output<typeof checkpointMetadataSchema>;

/** The names of classes nobody named: "0", "1", ... (what training writes when the run has no label map). */
export function defaultClassNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(i));
}

/** The one writer: validated version-2 metadata for a weights file. */
export function checkpointMetadata(fields: {
  model: ModelConfig;
  classNames: string[];
  pipeline: PipelineConfig;
  runId: string | null;
  projectVersion: string;
  backend?: string | null;
  epoch?: number | null;
  step?: number | null;
  metrics?: Record<string, number>;
  source?: string | null;
}): CheckpointMetadata {
  const value = {
    metadata_version: CHECKPOINT_METADATA_VERSION,
    config: fields.model,
    class_names: fields.classNames,
    pipeline: fields.pipeline,
    run_id: fields.runId,
    project_version: fields.projectVersion,
    backend: fields.backend ?? null,
    epoch: fields.epoch ?? null,
    step: fields.step ?? null,
    metrics: fields.metrics ?? {},
    source: fields.source ?? null,
  };
  const parsed = checkpointMetadataSchema.safeParse(value);
  if (!parsed.success) throw new IssuesError('checkpoint metadata', issuesOf(parsed.error, value));
  return parsed.data;
}

/** Which shape a file's metadata had before it was read as version 2. */
export type MetadataShape = 'v2' | 'cli-v1' | 'service-v1' | 'model-only' | 'none';

/** What a weights file says about itself; null where it does not say. */
export interface CheckpointDescription {
  shape: MetadataShape;
  model: ModelConfig | null;
  classNames: string[] | null;
  pipeline: PipelineConfig | null;
  runId: string | null;
  projectVersion: string | null;
  epoch: number | null;
}

const camelPipelineKeys: Record<string, string> = {
  clipLen: 'clip_len',
  frameInterval: 'frame_interval',
  cropSize: 'crop_size',
  shortSide: 'short_side',
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The one reader: the decoded metadata of a `format: vswin` weights file (core/model/weights/checkpoint.ts),
 * migrated to version 2 where it is older. Errors name the file and the field.
 */
export function readCheckpointMetadata(raw: Record<string, unknown>, source: string): CheckpointDescription {
  const version = raw.metadata_version;
  if (version !== undefined) {
    if (version !== CHECKPOINT_METADATA_VERSION) {
      throw new Error(
        typeof version === 'number' && version > CHECKPOINT_METADATA_VERSION
          ? `${source}: metadata version ${version} was written by a newer workbench (this one reads up to ${CHECKPOINT_METADATA_VERSION}); update the workbench`
          : `${source}: metadata_version is ${JSON.stringify(version)}, expected ${CHECKPOINT_METADATA_VERSION}`,
      );
    }
    const { format: _format, ...fields } = raw;
    const parsed = checkpointMetadataSchema.safeParse({ source: null, ...fields });
    if (!parsed.success) throw new IssuesError(`metadata of ${source}`, issuesOf(parsed.error, fields));
    const m = parsed.data;
    return {
      shape: 'v2',
      model: m.config,
      classNames: m.class_names,
      pipeline: m.pipeline,
      runId: m.run_id,
      projectVersion: m.project_version,
      epoch: m.epoch,
    };
  }
  // Before version 2: two writers, two spellings.
  const serviceShape =
    'classes' in raw ||
    'runId' in raw ||
    (isRecord(raw.pipeline) && Object.keys(raw.pipeline).some((k) => k in camelPipelineKeys));
  const model = raw.config === undefined ? null : parseModelConfig(raw.config, `model config stored in ${source}`);
  const names = serviceShape ? raw.classes : raw.class_names;
  let classNames: string[] | null = null;
  if (Array.isArray(names)) {
    classNames = names.map(String);
    if (model && classNames.length !== model.num_classes)
      throw new Error(
        `${source}: metadata names ${classNames.length} classes but its model has ${model.num_classes}; the file is inconsistent`,
      );
  }
  let pipeline: PipelineConfig | null = null;
  if (isRecord(raw.pipeline)) {
    const snake: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(raw.pipeline)) {
      // The service shape wrote absent options as undefined, which JSON drops; null never came from a writer.
      if (value === undefined || value === null) continue;
      snake[camelPipelineKeys[key] ?? key] = value;
    }
    const parsed = pipelineConfigSchema.safeParse(snake);
    if (!parsed.success) throw new IssuesError(`pipeline stored in ${source}`, issuesOf(parsed.error, snake));
    pipeline = parsed.data;
  }
  const runId = typeof raw.run_id === 'string' ? raw.run_id : typeof raw.runId === 'string' ? raw.runId : null;
  const shape: MetadataShape = pipeline || classNames ? (serviceShape ? 'service-v1' : 'cli-v1') : model ? 'model-only' : 'none';
  return {
    shape,
    model,
    classNames,
    pipeline,
    runId,
    projectVersion: typeof raw.project_version === 'string' ? raw.project_version : null,
    epoch: typeof raw.epoch === 'number' ? raw.epoch : null,
  };
}
