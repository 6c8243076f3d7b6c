// Bridges the run config to the data engine: pipeline specs from the config's preset and
// parameters, loaders for train/val/test, and the BatchSource view the trainer consumes.
import { createLoader, type Loader } from '../data/loader.ts';
import { presetPipeline, type PipelineMode, type PipelineSpec, type PresetOptions } from '../data/pipeline.ts';
import type { BatchSource, TrainBatch } from './trainer.ts';
import type { PipelineConfig, RunConfig } from './run-config.ts';
import type { ViewProtocol } from '../protocol/train.ts';

/** The data engine's pipeline spec of a run config's pipeline section, for one mode. */
export function pipelineSpec(p: PipelineConfig, mode: PipelineMode, views?: ViewProtocol): PipelineSpec {
  const options: PresetOptions = {};
  if (p.clip_len !== undefined) options.clipLen = p.clip_len;
  if (p.frame_interval !== undefined) options.frameInterval = p.frame_interval;
  if (p.short_side !== undefined) options.shortSide = p.short_side;
  if (p.crop_size !== undefined) options.cropSize = p.crop_size;
  if (p.flip_ratio !== undefined) options.flipRatio = p.flip_ratio;
  if (p.area_range !== undefined) options.areaRange = p.area_range;
  if (p.rand_augment !== undefined && mode === 'train') {
    options.randAugment =
      p.rand_augment === false
        ? null
        : { n: p.rand_augment.n, m: p.rand_augment.m, cval: p.rand_augment.cval, flipRatio: p.rand_augment.flip_ratio };
  }
  if (mode === 'test') {
    const clips = views?.clips ?? p.test_clips;
    if (clips !== undefined) options.numClips = clips;
  }
  const spec = presetPipeline(p.preset, mode, options);
  if (mode !== 'test') return spec;
  const crops = views?.crops ?? p.test_crops ?? (spec.crop.kind === 'three' ? 3 : 1);
  return { ...spec, crop: crops === 3 ? { kind: 'three', size: spec.crop.size } : { kind: 'center', size: spec.crop.size } };
}

export function pipelineFor(config: RunConfig, mode: PipelineMode, views?: ViewProtocol): PipelineSpec {
  return pipelineSpec(config.data.pipeline, mode, views);
}

/**
 * The input of an evaluation under a view protocol, the one definition every evaluation uses
 * (`vswin eval`, the comparison, attention, Try a video): one clip x one crop is the validation
 * pipeline the trainer scores every epoch with; more views are the official multi-view test protocol.
 */
export function evaluationSpec(p: PipelineConfig, views: ViewProtocol = { clips: 1, crops: 1 }): PipelineSpec {
  if (views.clips === 1 && views.crops === 1) return pipelineSpec(p, 'val');
  return pipelineSpec(p, 'test', views);
}

/** The views `vswin eval` uses when none are given: the run's test views, else one clip x one crop. */
export function defaultViews(p: PipelineConfig): ViewProtocol {
  return { clips: p.test_clips ?? 1, crops: p.test_crops ?? 1 };
}

/** Parses "CLIPSxCROPS" (e.g. 4x3); crops is 1 (center) or 3 (three crops along the long side). */
export function parseViews(text: string, source = '--views'): ViewProtocol {
  const match = /^(\d+)x(\d+)$/i.exec(text.trim());
  const clips = match ? Number(match[1]) : NaN;
  const crops = match ? Number(match[2]) : NaN;
  if (!match || clips < 1 || (crops !== 1 && crops !== 3)) {
    throw new Error(`${source}: expected CLIPSxCROPS with CLIPS >= 1 and CROPS 1 or 3 (e.g. 4x3, 1x1), received "${text}"`);
  }
  return { clips, crops };
}

export interface LoaderSource extends BatchSource {
  loader: Loader;
}

export async function loaderSource(options: {
  annFile: string;
  root: string;
  spec: PipelineSpec;
  batchSize: number;
  shuffle: boolean;
  seed: number;
  workers: number;
  dropLast?: boolean;
}): Promise<LoaderSource> {
  const loader = await createLoader({
    annFile: options.annFile,
    root: options.root,
    pipeline: options.spec,
    batchSize: options.batchSize,
    shuffle: options.shuffle,
    seed: options.seed,
    workers: Math.max(1, options.workers),
    dropLast: options.dropLast ?? false,
  });
  if (loader.size === 0) {
    const detail = loader.problems.length ? `; problems: ${loader.problems.slice(0, 3).join('; ')}` : '';
    throw new Error(`${options.annFile}: no usable samples${detail}`);
  }
  let reported = 0;
  return {
    loader,
    batchesPerEpoch: loader.batchesPerEpoch,
    async *batches(epoch: number): AsyncIterable<TrainBatch> {
      for await (const batch of loader.epoch(epoch)) yield { input: batch.input, shape: batch.shape, labels: batch.labels };
    },
    takeSkips() {
      const fresh = loader.stats.skips.slice(reported);
      reported = loader.stats.skips.length;
      return fresh.map(({ path, reason }) => ({ path, reason }));
    },
  };
}
