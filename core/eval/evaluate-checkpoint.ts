// `vswin eval`: a checkpoint file, an annotation file and a data root, under one or more view
// protocols (single clip first, then the multi-view one), results stored in the registry.
import { existsSync } from 'node:fs';
import { readLabelMap } from '../data/annotations.ts';
import { loadAnnotations } from '../data/dataset.ts';
import { createLoader } from '../data/loader.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { createVideoSwin } from '../model/video-swin.ts';
import { loadCheckpoint } from '../model/weights/checkpoint.ts';
import type { EvaluationReport, VideoPrediction, ViewProtocol } from '../protocol/train.ts';
import { Registry } from '../registry/registry.ts';
import { pipelineFor } from '../train/data-source.ts';
import { modelConfigOf, runConfigSchema, type RunConfig } from '../train/run-config.ts';
import { evaluateModel, type EvalBatch } from './evaluate.ts';

export interface EvaluateCheckpointOptions {
  checkpoint: string;
  /** Run config giving the model and the pipeline when the checkpoint does not carry them. */
  config: RunConfig | null;
  annFile: string;
  root: string;
  /** Protocols in the order to run them. */
  protocols: ViewProtocol[];
  home: string;
  workers?: number;
  batchSize?: number;
  onProgress?: (protocol: ViewProtocol, videos: number, total: number) => void;
}

export interface ProtocolResult {
  evaluationId: number;
  report: EvaluationReport;
  predictions: VideoPrediction[];
}

/** Pipeline settings of the checkpoint (stored by the trainer) in the shape of a run config. */
function pipelineConfig(metadata: Record<string, unknown>, config: RunConfig | null): RunConfig {
  if (config) return config;
  const pipeline = metadata.pipeline;
  if (!pipeline || typeof pipeline !== 'object') {
    throw new Error(
      'the checkpoint does not record its data pipeline (it was not written by `vswin train`); pass --config with the run config',
    );
  }
  // A minimal config carrying only what pipelineFor reads.
  return runConfigSchema.parse({
    model: { variant: 'micro', num_classes: 2 },
    data: { train_ann: '-', root: '-', pipeline },
    optimizer: { lr: 1, weight_decay: 0 },
    epochs: 1,
    batch_size: 1,
  });
}

export async function evaluateCheckpoint(options: EvaluateCheckpointOptions): Promise<ProtocolResult[]> {
  for (const [label, path] of [
    ['--checkpoint', options.checkpoint],
    ['--ann', options.annFile],
    ['--root', options.root],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${label}: ${path} does not exist`);
  }
  const checkpoint = loadCheckpoint(options.checkpoint);
  const metadata = checkpoint.metadata;
  let modelConfig: ModelConfig;
  if (options.config) modelConfig = parseModelConfig(modelConfigOf(options.config), `model of ${options.checkpoint}`);
  else if (metadata.config && typeof metadata.config === 'object')
    modelConfig = parseModelConfig(metadata.config, `model config stored in ${options.checkpoint}`);
  else
    throw new Error(
      `${options.checkpoint} does not say which model it holds (no "config" metadata); pass --config with the run config`,
    );
  const dataConfig = pipelineConfig(metadata, options.config);

  let classNames: string[] = Array.isArray(metadata.class_names) ? (metadata.class_names as string[]) : [];
  if (options.config?.data.classes) classNames = (await readLabelMap(options.config.data.classes)).classes;

  const annotations = await loadAnnotations(options.annFile, options.root);
  const model = createVideoSwin(modelConfig);
  const results: ProtocolResult[] = [];
  const registry = Registry.open(options.home);
  try {
    model.loadStateDict(checkpoint.stateDict, { strict: true });
    const runId = typeof metadata.run_id === 'string' && registry.getRun(metadata.run_id) ? metadata.run_id : null;
    for (const protocol of options.protocols) {
      const spec = pipelineFor(dataConfig, 'test', protocol);
      const loader = await createLoader({
        annFile: options.annFile,
        root: options.root,
        pipeline: spec,
        batchSize: options.batchSize ?? 4,
        shuffle: false,
        seed: 0,
        workers: options.workers ?? 2,
      });
      if (loader.size === 0)
        throw new Error(
          `--ann: ${options.annFile} has no usable videos${loader.problems.length ? ` (${loader.problems[0]})` : ''}`,
        );
      async function* batches(): AsyncIterable<EvalBatch> {
        for await (const batch of loader.epoch(0)) yield batch;
      }
      const { report, predictions } = await evaluateModel(model, batches(), {
        views: protocol,
        classNames,
        videoName: (index) => annotations.entries[index]?.path ?? String(index),
        onProgress: (videos) => options.onProgress?.(protocol, videos, loader.size),
      });
      const evaluationId = registry.addEvaluation({
        runId,
        checkpointPath: options.checkpoint,
        annFile: options.annFile,
        root: options.root,
        report,
        predictions,
      });
      results.push({ evaluationId, report, predictions });
    }
  } finally {
    model.dispose();
    registry.close();
  }
  return results;
}
