// Parameters, FLOPs and activation memory of a config for a given clip, computed from the geometry
// (no tensors). FLOPs count multiply-adds of every linear map and of the attention matmuls, the
// convention of the official README (Swin-T, 32x224x224: 87.9 G).
import { type ModelConfig, stageDim } from './config.ts';
import { modelGeometry, type StageGeometry } from './geometry.ts';
import { recognizerKeys } from './keys.ts';

export interface StageComplexity {
  stage: number;
  dim: number;
  heads: number;
  depth: number;
  geometry: StageGeometry;
  flops: number;
  /** Floats kept for the backward pass by this stage, per clip (estimate). */
  trainingActivations: number;
}

export interface Complexity {
  parameters: number;
  flopsPerView: number;
  stages: StageComplexity[];
  /** Estimated bytes of activations kept for backward, for the batch. */
  trainingActivationBytes: number;
  /** Estimated peak bytes of one block's attention scores + probabilities during inference, for the batch. */
  inferencePeakBytes: number;
}

export function parameterCount(config: ModelConfig): number {
  let total = 0;
  for (const spec of recognizerKeys(config).values()) if (spec.kind === 'param') total += spec.shape.reduce((a, b) => a * b, 1);
  return total;
}

export function complexity(config: ModelConfig, clip: { frames: number; height: number; width: number }, batch = 1): Complexity {
  const cfg = config.backbone;
  const [pt, ph, pw] = cfg.patch_size;
  const geometries = modelGeometry([clip.frames, clip.height, clip.width], cfg.patch_size, cfg.window_size, cfg.depths.length);
  const tokens = (g: readonly number[]) => g[0] * g[1] * g[2];
  let flops = tokens(geometries[0].grid) * cfg.embed_dim * cfg.in_chans * pt * ph * pw;
  let peak = 0;
  const stages: StageComplexity[] = geometries.map((geometry, stage) => {
    const dim = stageDim(cfg, stage);
    const heads = cfg.num_heads[stage];
    const hidden = Math.floor(dim * cfg.mlp_ratio);
    const real = tokens(geometry.grid);
    const padded = tokens(geometry.padded);
    const n = geometry.tokensPerWindow;
    // qkv and proj run on the padded windows; the attention matmuls are 2 * N^2 * dim per window.
    const perBlock = padded * 4 * dim * dim + 2 * padded * n * dim + real * 2 * dim * hidden;
    let stageFlops = perBlock * cfg.depths[stage];
    let activations = cfg.depths[stage] * (padded * (8 * dim + 2 * heads * n) + real * (4 * dim + 2 * hidden));
    if (stage < geometries.length - 1) {
      const merged = geometry.grid[0] * Math.ceil(geometry.grid[1] / 2) * Math.ceil(geometry.grid[2] / 2);
      stageFlops += merged * 4 * dim * 2 * dim;
      activations += merged * 8 * dim;
    }
    flops += stageFlops;
    peak = Math.max(peak, padded * heads * n * 2 * 4 * batch);
    return { stage, dim, heads, depth: cfg.depths[stage], geometry, flops: stageFlops, trainingActivations: activations };
  });
  flops += cfg.embed_dim * 2 ** (cfg.depths.length - 1) * config.num_classes;
  const trainingActivationBytes = stages.reduce((s, st) => s + st.trainingActivations, 0) * 4 * batch;
  return { parameters: parameterCount(config), flopsPerView: flops, stages, trainingActivationBytes, inferencePeakBytes: peak };
}
