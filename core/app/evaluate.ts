// Evaluating checkpoints on an annotation file: `vswin eval` (single clip, then multi-view, stored
// in the registry) and the comparison of two or more checkpoints (the Runs page). Both score every
// checkpoint with `scoreCheckpoint`, so the same checkpoint, list and views give the same numbers
// and the same per-video predictions through either door.
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadAnnotations, type LoadedAnnotations } from '../data/dataset.ts';
import { createLoader } from '../data/loader.ts';
import { evaluateModel, type EvalBatch, type EvaluationOutput } from '../eval/evaluate.ts';
import type { TensorMap } from '../model/weights/types.ts';
import type { EvaluationReport, VideoPrediction, ViewProtocol } from '../protocol/train.ts';
import type { CheckpointEvaluation, Comparison } from '../protocol/workbench.ts';
import { Registry } from '../registry/registry.ts';
import { defaultViews, evaluationSpec } from '../train/data-source.ts';
import type { RunConfig } from '../train/run-config.ts';
import { modelOf, openCheckpoint, type CheckpointInfo } from './checkpoints.ts';

export interface ScoreOptions {
  annotations: LoadedAnnotations;
  annFile: string;
  root: string;
  views: ViewProtocol;
  batchSize?: number;
  workers?: number;
  onProgress?: (videos: number, total: number) => void;
}

/** One checkpoint's report and per-video predictions on an annotation list under a view protocol. */
export async function scoreCheckpoint(info: CheckpointInfo, options: ScoreOptions): Promise<EvaluationOutput> {
  const { annotations } = options;
  const loader = await createLoader({
    samples: annotations.entries,
    format: annotations.format,
    withOffset: annotations.withOffset,
    root: options.root,
    pipeline: evaluationSpec(info.pipeline, options.views),
    batchSize: options.batchSize ?? 4,
    shuffle: false,
    seed: 0,
    workers: options.workers ?? 2,
  });
  if (loader.size === 0)
    throw new Error(`${options.annFile} has no usable videos${loader.problems.length ? ` (${loader.problems[0]})` : ''}`);
  const model = modelOf(info);
  try {
    async function* batches(): AsyncIterable<EvalBatch> {
      for await (const batch of loader.epoch(0)) yield batch;
    }
    return await evaluateModel(model, batches(), {
      views: options.views,
      classNames: info.classNames,
      videoName: (index) => annotations.entries[index]?.path ?? String(index),
      onProgress: (videos) => options.onProgress?.(videos, loader.size),
    });
  } finally {
    model.dispose();
  }
}

/** The protocols `vswin eval` runs: single clip first, then the multi-view one when it differs. */
export function protocolsFor(views: ViewProtocol): ViewProtocol[] {
  return views.clips === 1 && views.crops === 1 ? [views] : [{ clips: 1, crops: 1 }, views];
}

export interface EvaluateCheckpointOptions {
  checkpoint: string;
  /** Run config giving the model and the pipeline when the checkpoint does not carry them. */
  config: RunConfig | null;
  annFile: string;
  root: string;
  /** The multi-view protocol; null uses the checkpoint's test views (its pipeline's test_clips x test_crops). */
  views: ViewProtocol | null;
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

/** `vswin eval`: every protocol's metrics and predictions, each stored in the registry as an evaluation. */
export async function evaluateCheckpoint(options: EvaluateCheckpointOptions): Promise<ProtocolResult[]> {
  for (const [label, path] of [
    ['--checkpoint', options.checkpoint],
    ['--ann', options.annFile],
    ['--root', options.root],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${label}: ${path} does not exist`);
  }
  const info = openCheckpoint(options.checkpoint, { config: options.config });
  const annotations = await loadAnnotations(options.annFile, options.root);
  const protocols = protocolsFor(options.views ?? defaultViews(info.pipeline));
  const results: ProtocolResult[] = [];
  const registry = Registry.open(options.home);
  try {
    const runId = info.runId && registry.getRun(info.runId) ? info.runId : null;
    for (const protocol of protocols) {
      const { report, predictions } = await scoreCheckpoint(info, {
        annotations,
        annFile: options.annFile,
        root: options.root,
        views: protocol,
        batchSize: options.batchSize,
        workers: options.workers,
        onProgress: (videos, total) => options.onProgress?.(protocol, videos, total),
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
    registry.close();
  }
  return results;
}

function relativeL2(a: Float32Array, b: Float32Array): { difference: number; reference: number } {
  let difference = 0;
  let reference = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b[i] - a[i];
    difference += d * d;
    reference += a[i] * a[i];
  }
  return { difference, reference };
}

/** ||W2 - W1|| / ||W1|| over every parameter of each block, [stage][block]. */
export function weightChange(first: TensorMap, second: TensorMap, depths: readonly number[]): number[][] {
  return depths.map((depth, stage) =>
    Array.from({ length: depth }, (_, block) => {
      const prefix = `backbone.layers.${stage}.blocks.${block}.`;
      let difference = 0;
      let reference = 0;
      for (const [key, tensor] of first) {
        if (!key.startsWith(prefix) || tensor.dtype !== 'float32') continue;
        const other = second.get(key);
        if (!other || other.data.length !== tensor.data.length) continue;
        const part = relativeL2(tensor.data as Float32Array, other.data as Float32Array);
        difference += part.difference;
        reference += part.reference;
      }
      return reference > 0 ? Math.sqrt(difference) / Math.sqrt(reference) : 0;
    }),
  );
}

/** The comparison of the Runs page: every checkpoint scored on the same videos, side by side. */
export async function compareCheckpoints(options: {
  checkpoints: string[];
  annFile: string;
  root: string;
  views?: ViewProtocol;
  mediaUrl: (path: string) => string;
  progress: (done: number, total: number, message: string) => void;
}): Promise<Comparison> {
  const { checkpoints: paths, annFile, root } = options;
  const views = options.views ?? { clips: 1, crops: 1 };
  if (paths.length < 2) throw new Error(`compare: expected two or more checkpoints, received ${paths.length}`);
  const annotations = await loadAnnotations(annFile, root);
  if (annotations.entries.length === 0) throw new Error(`${annFile}: no usable entries to evaluate on`);
  const infos = paths.map((path) => openCheckpoint(path));
  for (const info of infos) {
    if (info.model.num_classes !== infos[0].model.num_classes)
      throw new Error(
        `compare: ${info.path} has ${info.model.num_classes} classes, ${infos[0].path} has ${infos[0].model.num_classes}`,
      );
  }
  const total = annotations.entries.length * infos.length;
  const evaluations: CheckpointEvaluation[] = [];
  let first: VideoPrediction[] = [];
  for (const [k, info] of infos.entries()) {
    const { report, predictions } = await scoreCheckpoint(info, {
      annotations,
      annFile,
      root,
      views,
      onProgress: (done) => options.progress(k * annotations.entries.length + done, total, `evaluating ${basename(info.path)}`),
    });
    if (k === 0) first = predictions;
    else if (predictions.map((p) => p.index).join() !== first.map((p) => p.index).join()) {
      throw new Error(
        `compare: ${info.path} could read a different set of videos than ${infos[0].path} (decode failures); fix the data first`,
      );
    }
    evaluations.push({
      checkpoint: info.path,
      label: `${basename(dirname(info.path))}/${basename(info.path)}`,
      views,
      top1: report.metrics.top1,
      top5: report.metrics.top5,
      meanClassAccuracy: report.metrics.meanClassAccuracy,
      perClassAccuracy: report.perClass.recall,
      confusion: report.confusion,
      predictions: predictions.map((p) => p.topClasses[0]),
      confidence: predictions.map((p) => p.topScores[0]),
    });
  }
  const videos = first.map((p) => {
    const path = annotations.entries[p.index].path;
    const absolute = path.startsWith('/') ? path : `${root}/${path}`;
    return { path, url: options.mediaUrl(absolute), label: p.label };
  });
  const flipped: Comparison['flipped'] = [];
  for (let v = 0; v < videos.length; v++) {
    const predictions = evaluations.map((evaluation) => evaluation.predictions[v]);
    if (predictions.some((p) => p !== predictions[0])) flipped.push({ video: v, predictions });
  }
  return {
    classNames: infos[0].classNames,
    videos,
    checkpoints: evaluations,
    flipped,
    weightChange: {
      stages: weightChange(infos[0].stateDict, infos[1].stateDict, infos[0].model.backbone.depths),
      labels: [evaluations[0].label, evaluations[1].label],
    },
  };
}

/** Registry names read better than file names: "run-name epoch 3" for every checkpoint the registry knows. */
export function nameCheckpoints(registry: Registry, comparison: Comparison): Comparison {
  const names = new Map<string, string>();
  for (const run of registry.listRuns())
    for (const c of registry.checkpoints(run.id, true)) names.set(c.path, `${run.name} epoch ${c.epoch}`);
  const checkpoints = comparison.checkpoints.map((c) => ({ ...c, label: names.get(c.checkpoint) ?? c.label }));
  return {
    ...comparison,
    checkpoints,
    weightChange: { ...comparison.weightChange, labels: checkpoints.slice(0, 2).map((c) => c.label) },
  };
}
