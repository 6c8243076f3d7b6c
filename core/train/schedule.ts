// mmcv's CosineAnnealingLrUpdaterHook with linear warm-up (fact sheet 6.4): the cosine value is set
// once per EPOCH, while warm-up ramps per micro-batch ITERATION and multiplies the epoch's value.

export interface ScheduleConfig {
  /** Total epochs E of the cosine cycle. */
  epochs: number;
  /** Micro-batch iterations per epoch (dataloader steps). */
  iterationsPerEpoch: number;
  /** Absolute floor of the cosine (mmcv `min_lr`). */
  minLr: number;
  /** Warm-up length in epochs (the official runs: 2.5); 0 disables warm-up. */
  warmupEpochs: number;
  /** LR multiplier at iteration 0 of warm-up (mmcv `warmup_ratio`, default 0.1). */
  warmupRatio: number;
}

/** Cosine value for epoch `epoch` (0-based) from `base` down to `minLr` over `epochs` epochs. */
export function cosineEpochLr(base: number, epoch: number, epochs: number, minLr = 0): number {
  return minLr + 0.5 * (base - minLr) * (1 + Math.cos((Math.PI * epoch) / epochs));
}

/** Warm-up length in iterations; mmcv keeps the fractional product (`warmup_epochs * epoch_len`). */
export function warmupIterations(config: ScheduleConfig): number {
  return config.warmupEpochs * config.iterationsPerEpoch;
}

/**
 * LR of a parameter group whose initial LR is `base`, at global micro-batch iteration `iteration`.
 * The epoch is derived from the iteration, as the hook sees it at the start of each iteration.
 */
export function learningRate(base: number, iteration: number, config: ScheduleConfig): number {
  const epoch = Math.floor(iteration / config.iterationsPerEpoch);
  const regular = cosineEpochLr(base, epoch, config.epochs, config.minLr);
  const warmup = warmupIterations(config);
  if (iteration >= warmup) return regular;
  return regular * (1 - (1 - iteration / warmup) * (1 - config.warmupRatio));
}
