// Run configs as the doors receive them: resolved against a folder, validated (issues as data),
// their named files checked, and their cost estimated for the Config page.
import { readFileSync } from 'node:fs';
import { presetPipeline } from '../data/pipeline.ts';
import { currentBackend } from '../engine/backend.ts';
import { complexity } from '../model/complexity.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { issuesFromError, type ConfigIssue } from '../protocol/issues.ts';
import type { ConfigValidation } from '../protocol/workbench.ts';
import { checkConfigFiles, modelConfigOf, parseRunConfig, resolveRunConfig, type RunConfig } from '../train/run-config.ts';

export type { RunConfig } from '../train/run-config.ts';
export { loadRunConfig, parseRunConfig, presetJson, presetNames } from '../train/run-config.ts';
export { parseViews } from '../train/data-source.ts';

/** A config object whose relative paths resolve against `baseDir`, validated, every named file present. */
export function resolveConfig(value: unknown, baseDir: string, source = 'run config'): RunConfig {
  const config = resolveRunConfig(value, baseDir, source);
  checkConfigFiles(config);
  return config;
}

function lineCount(file: string): number | null {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim().length > 0).length;
  } catch {
    return null;
  }
}

/** Models whose clip costs less than this many multiply-adds get one real training step timed. */
export const TIMED_STEP_LIMIT = 2e9;

export interface CostMeasures {
  /** Dense matMul throughput of the backend, GFLOP/s. */
  gflops(): Promise<number>;
  /** Seconds of one training micro-batch of this model, clip and batch, timed on the backend. */
  timedStep(config: ModelConfig, clip: { frames: number; height: number; width: number }, batch: number): Promise<number>;
}

/** The Config page's check: the issues of a config as data, else its cost on the running backend. */
export async function validateConfig(
  value: unknown,
  home: string,
  measures: CostMeasures,
  trainSize?: number,
): Promise<ConfigValidation> {
  let resolved: RunConfig;
  try {
    resolved = resolveRunConfig(value, home, 'run config');
  } catch (error) {
    return { ok: false, issues: issuesFromError(error), estimate: null };
  }
  // The cost does not depend on the data: a preset whose videos are not downloaded yet still gets it.
  let fileIssues: ConfigIssue[] = [];
  try {
    checkConfigFiles(resolved);
  } catch (error) {
    fileIssues = issuesFromError(error);
  }
  const modelConfig = parseModelConfig(modelConfigOf(resolved));
  const p = resolved.data.pipeline;
  const spec = presetPipeline(p.preset, 'train', {
    clipLen: p.clip_len,
    frameInterval: p.frame_interval,
    cropSize: p.crop_size,
    shortSide: p.short_side,
  });
  const clip = { frames: spec.sampling.clipLen, height: spec.crop.size, width: spec.crop.size };
  const cost = complexity(modelConfig, clip, resolved.batch_size);
  const gflops = await measures.gflops();
  const size = trainSize ?? lineCount(resolved.data.train_ann);
  const iterations =
    size === null ? null : Math.min(Math.ceil(size / resolved.batch_size), resolved.max_iterations_per_epoch ?? Infinity);
  // Small models: a timed step. Big ones: forward + backward is about 3x the forward multiply-adds, 2 FLOPs each (a lower bound).
  const timed = cost.flopsPerView * resolved.batch_size < TIMED_STEP_LIMIT;
  const secondsPerStep = timed
    ? await measures.timedStep(modelConfig, clip, resolved.batch_size)
    : (cost.flopsPerView * resolved.batch_size * 2 * 3) / (gflops * 1e9);
  return {
    ok: fileIssues.length === 0,
    issues: fileIssues,
    estimate: {
      parameters: cost.parameters,
      gflopsPerClip: cost.flopsPerView / 1e9,
      activationBytes: cost.trainingActivationBytes,
      parameterBytes: cost.parameters * 4 * 4,
      secondsPerEpoch: iterations === null ? null : iterations * secondsPerStep,
      timeMethod: timed ? 'timed' : 'flop-bound',
      backend: currentBackend()?.name ?? 'unknown',
      measuredGflops: gflops,
      clip: [clip.frames, clip.height, clip.width],
    },
  };
}

/** Blocks per stage of a stored run config's model, for the attention page's block list (null when it does not parse). */
export function runDepths(config: unknown): number[] | null {
  try {
    return [...parseModelConfig(modelConfigOf(parseRunConfig(config))).backbone.depths];
  } catch {
    return null;
  }
}
