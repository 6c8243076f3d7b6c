// Opening a checkpoint for use: the model it holds, its class names and the pipeline its input is
// built with, from the file's metadata (core/train/checkpoint-metadata.ts, old shapes migrated) or
// from a run config given beside it. Every evaluation, comparison, attention view and prediction of
// both doors starts here, so they all see the same classes and the same input.
import { readFileSync } from 'node:fs';
import { parseLabelMap } from '../data/annotations.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { createVideoSwin, type VideoSwin } from '../model/video-swin.ts';
import { loadCheckpoint } from '../model/weights/checkpoint.ts';
import type { TensorMap } from '../model/weights/types.ts';
import { defaultClassNames, readCheckpointMetadata, type MetadataShape } from '../train/checkpoint-metadata.ts';
import { modelConfigOf, type PipelineConfig, type RunConfig } from '../train/run-config.ts';

export interface CheckpointInfo {
  path: string;
  model: ModelConfig;
  classNames: string[];
  pipeline: PipelineConfig;
  /** The run that wrote it, when its metadata says. */
  runId: string | null;
  projectVersion: string | null;
  /** The metadata's shape before migration (or 'none' for files without workbench metadata). */
  metadataShape: MetadataShape;
  stateDict: TensorMap;
}

/**
 * The class names of a run: its label map (checked against the model's class count), else "0", "1", ...
 * Training writes these into every checkpoint, so both doors name classes the same way.
 */
export function classNamesOf(config: RunConfig): string[] {
  if (!config.data.classes) return defaultClassNames(config.model.num_classes);
  const { classes, problems } = parseLabelMap(readFileSync(config.data.classes, 'utf8'), config.data.classes);
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length)
    throw new Error(`data.classes: ${config.data.classes}: ${errors.map((p) => `line ${p.line}: ${p.message}`).join('; ')}`);
  if (classes.length !== config.model.num_classes) {
    throw new Error(
      `data.classes: ${config.data.classes} names ${classes.length} classes but model.num_classes is ${config.model.num_classes}; make them agree`,
    );
  }
  return classes;
}

/**
 * Reads a checkpoint and what it needs to be used. `config` (a run config, `vswin eval --config`)
 * gives the model, the pipeline and the label map of files that do not record them, and wins over
 * what the file records.
 */
export function openCheckpoint(path: string, options: { config?: RunConfig | null } = {}): CheckpointInfo {
  const config = options.config ?? null;
  const loaded = loadCheckpoint(path);
  const described =
    loaded.layout === 'vswin'
      ? readCheckpointMetadata(loaded.metadata, path)
      : {
          shape: 'none' as const,
          model: null,
          classNames: null,
          pipeline: null,
          runId: null,
          projectVersion: null,
          epoch: null,
        };
  const model = config ? parseModelConfig(modelConfigOf(config), `model of ${path}`) : described.model;
  if (!model)
    throw new Error(`${path} does not say which model it holds (no "config" metadata); pass --config with the run config`);
  const pipeline = config?.data.pipeline ?? described.pipeline;
  if (!pipeline)
    throw new Error(
      `${path}: the checkpoint does not record its data pipeline (it was not written by \`vswin train\` or the workbench); pass --config with the run config`,
    );
  let classNames: string[];
  if (config?.data.classes) classNames = classNamesOf(config);
  else if (described.classNames && described.classNames.length === model.num_classes) classNames = described.classNames;
  else classNames = defaultClassNames(model.num_classes);
  return {
    path,
    model,
    classNames,
    pipeline,
    runId: described.runId,
    projectVersion: described.projectVersion,
    metadataShape: described.shape,
    stateDict: loaded.stateDict,
  };
}

/** The model of a checkpoint with its weights loaded (strict: every tensor must fit). The caller disposes it. */
export function modelOf(info: Pick<CheckpointInfo, 'model' | 'stateDict'>): VideoSwin {
  const model = createVideoSwin(info.model, { seed: 0 });
  try {
    model.loadStateDict(info.stateDict, { strict: true });
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}
