// The training loop: micro-batches with gradient accumulation (loss / update_interval, optimizer
// step every update_interval global iterations, as the official DistOptimizerHook), the mmcv
// schedule, AdamW with the paramwise groups, validation, checkpoints and the typed event stream.
// Tensor ownership: each iteration's forward/backward lives in variableGrads' tidy scope; the
// gradients it returns are owned here and disposed after they are accumulated or applied.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf, type Tensor } from '../engine/tf.ts';
import { crossEntropy } from '../engine/ops.ts';
import { Random } from '../engine/random.ts';
import type { VideoSwin } from '../model/video-swin.ts';
import { loadCheckpoint } from '../model/weights/checkpoint.ts';
import type { HostTensor, TensorMap } from '../model/weights/types.ts';
import { evaluateScores } from '../eval/metrics.ts';
import type { Registry } from '../registry/registry.ts';
import type { CheckpointReason, ClassificationMetrics, TrainEvent, TrainSplitMetrics } from '../protocol/train.ts';
import { AdamW, clipGradNorm } from './adamw.ts';
import { checkpointPaths, readTrainingState, removeCheckpointFiles, writeTrainingCheckpoint } from './checkpoint.ts';
import { checkpointMetadata, defaultClassNames } from './checkpoint-metadata.ts';
import { sweepStaleTemporaries } from '../files/atomic.ts';
import type { TrainControl } from './control.ts';
import { OFFICIAL_CUSTOM_KEYS, paramGroups } from './param-groups.ts';
import type { RunConfig } from './run-config.ts';
import { learningRate, type ScheduleConfig } from './schedule.ts';

/** One micro-batch, NCTHW float32 on the host. */
export interface TrainBatch {
  input: Float32Array;
  shape: number[];
  labels: Int32Array;
}

export interface BatchSource {
  /** Micro-batches per epoch. */
  readonly batchesPerEpoch: number;
  /** The batches of an epoch; order and augmentation must depend only on (seed, epoch) so a resumed run sees the same data. */
  batches(epoch: number): AsyncIterable<TrainBatch>;
  /** Samples skipped (unreadable, too short) since the last call, with the reason; drained by the trainer each epoch. */
  takeSkips?(): { path: string; reason: string }[];
}

export interface TrainOptions {
  runId: string;
  config: RunConfig;
  model: VideoSwin;
  train: BatchSource;
  val: BatchSource | null;
  runDir: string;
  registry: Registry | null;
  backend: string;
  /**
   * What every weights file records beside the model config, the pipeline and the run id
   * (core/train/checkpoint-metadata.ts): the class names (default "0", "1", ...) and the project version.
   */
  checkpointInfo?: { classNames: string[]; projectVersion: string };
  resumeFrom?: { weights: string; state: string } | null;
  onEvent?: (event: TrainEvent) => void;
  control?: TrainControl;
}

export interface CheckpointEntry {
  id: number | null;
  epoch: number;
  weights: string;
  state: string | null;
  reasons: CheckpointReason[];
}

export interface TrainResult {
  status: 'completed' | 'stopped' | 'failed';
  message: string | null;
  epochsDone: number;
  iteration: number;
  lastCheckpoint: string | null;
  bestCheckpoint: string | null;
  bestMetric: number | null;
  lastVal: (ClassificationMetrics & { loss: number }) | null;
  lastTrain: TrainSplitMetrics | null;
  seconds: number;
  /** Samples the loaders skipped over the epochs of this session (each epoch counts its own). */
  skipped: number;
}

const metricKey = { top1: 'top1', top5: 'top5', mean_class_accuracy: 'meanClassAccuracy' } as const;

/** Single-clip validation: mean CE loss and classification metrics. */
export async function validate(
  model: VideoSwin,
  source: BatchSource,
  epoch: number,
): Promise<ClassificationMetrics & { loss: number }> {
  const classes = model.config.num_classes;
  const scores: number[] = [];
  const labels: number[] = [];
  let lossSum = 0;
  for await (const batch of source.batches(epoch)) {
    // Logits and loss in one tensor: one read back per batch.
    const both = tf.tidy(() => {
      const x = tf.tensor(batch.input, batch.shape, 'float32');
      const out = model.forward(x).logits;
      return tf.concat([tf.reshape(out, [-1]), tf.reshape(crossEntropy(out, batch.labels), [1])]);
    });
    try {
      const values = await both.data();
      for (let i = 0; i < values.length - 1; i++) scores.push(values[i]);
      lossSum += values[values.length - 1] * batch.labels.length;
      for (const label of batch.labels) labels.push(label);
    } finally {
      both.dispose();
    }
  }
  if (labels.length === 0) throw new Error('the validation set produced no batches');
  const { metrics } = evaluateScores({ scores, labels, classes });
  return { ...metrics, loss: lossSum / labels.length };
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config, model, runId, registry } = options;
  const started = Date.now();
  const emit = (event: TrainEvent) => options.onEvent?.(event);
  const names = [...model.params.keys()];
  const variables = names.map((n) => model.params.get(n) as tf.Variable);
  const variableKey = new Map(variables.map((v, i) => [v.name, names[i]]));
  const opt = config.optimizer;
  const groups = paramGroups(names, opt.lr, opt.weight_decay, opt.paramwise === 'official' ? OFFICIAL_CUSTOM_KEYS : {});
  const optimizer = new AdamW(model.params, groups, { betas: opt.betas, eps: opt.eps });
  const perEpoch = Math.min(options.train.batchesPerEpoch, config.max_iterations_per_epoch ?? Infinity);
  if (perEpoch < 1) throw new Error('the training set produced no batches: check data.train_ann and batch_size');
  const schedule: ScheduleConfig = {
    epochs: config.epochs,
    iterationsPerEpoch: perEpoch,
    minLr: config.schedule.min_lr,
    warmupEpochs: config.schedule.warmup_epochs,
    warmupRatio: config.schedule.warmup_ratio,
  };
  const random = new Random(config.seed);
  let accumulated = new Map<string, Tensor>();
  let epochsDone = 0;
  let iteration = 0;
  let bestMetric: number | null = null;
  let bestEpoch: number | null = null;
  const kept: CheckpointEntry[] = [];
  let skipped = 0;
  /** Moves the sources' skipped samples of an epoch into the registry (path and reason each). */
  const recordSkips = (epochNumber: number): number => {
    const before = skipped;
    for (const [split, source] of [
      ['train', options.train],
      ['val', options.val],
    ] as const) {
      const skips = source?.takeSkips?.() ?? [];
      skipped += skips.length;
      registry?.addSkippedSamples(runId, epochNumber, split, skips);
    }
    return skipped - before;
  };

  const disposeAccumulated = () => {
    accumulated.forEach((t) => t.dispose());
    accumulated = new Map();
  };

  if (options.resumeFrom) {
    const { weights, state: statePath } = options.resumeFrom;
    model.loadStateDict(loadCheckpoint(weights).stateDict, { strict: true });
    const state = readTrainingState(statePath);
    optimizer.loadState(state.optimizerSteps, state.tensors, statePath);
    for (const [key, host] of state.tensors) {
      if (key.startsWith('accum.')) accumulated.set(key.slice(6), tf.tensor(host.data as Float32Array, host.shape, 'float32'));
    }
    random.setState(state.randomState);
    epochsDone = state.epochsDone;
    iteration = state.iteration;
    bestMetric = state.bestMetric;
    bestEpoch = state.bestEpoch;
    if (registry) {
      for (const c of registry.checkpoints(runId))
        kept.push({ id: c.id, epoch: c.epoch, weights: c.path, state: c.statePath, reasons: c.reasons });
      registry.truncateMetrics(runId, iteration, epochsDone);
    }
  }

  const reserve = diskReserve(options.runDir);
  registry?.markRunning(runId, options.backend);
  emit({
    kind: 'run-started',
    runId,
    name: registry?.getRun(runId)?.name ?? runId,
    epochs: config.epochs,
    iterationsPerEpoch: perEpoch,
    startEpoch: epochsDone,
    startIteration: iteration,
    backend: options.backend,
    resumed: Boolean(options.resumeFrom),
  });

  const finish = (status: TrainResult['status'], message: string | null, extra: Partial<TrainResult> = {}): TrainResult => {
    disposeAccumulated();
    optimizer.dispose();
    const seconds = (Date.now() - started) / 1000;
    try {
      registry?.setStatus(runId, status, message);
    } catch (error) {
      // A full disk refuses the status too: free the reserve and what failed writes left in the run
      // folder, and try once more, so the run ends `failed` with its last good checkpoint, not `running`.
      reserve.release();
      sweepStaleTemporaries(options.runDir);
      try {
        registry?.setStatus(runId, status, message);
      } catch {
        message = `${message ?? status}; ${registry?.file}: the run's status could not be recorded (${(error as Error).message})`;
      }
    }
    reserve.release();
    emit({ kind: 'run-finished', runId, status, message, seconds, val: extra.lastVal ?? null });
    const last = kept.at(-1)?.weights ?? null;
    const best = [...kept].reverse().find((c) => c.reasons.includes('best'))?.weights ?? null;
    return {
      skipped,
      status,
      message,
      epochsDone,
      iteration,
      lastCheckpoint: last,
      bestCheckpoint: best,
      bestMetric,
      lastVal: null,
      lastTrain: null,
      seconds,
      ...extra,
    };
  };

  let lastVal: TrainResult['lastVal'] = null;
  let lastTrain: TrainSplitMetrics | null = null;
  const secondsPerIteration: number[] = [];

  // Temporaries of writes killed in an earlier session (a SIGKILL, a full disk) are never read: remove them.
  sweepStaleTemporaries(options.runDir);
  /** Registry writes name the registry file when they fail ("database or disk is full" says neither). */
  const recording = (what: string, write: () => void) => {
    try {
      write();
    } catch (error) {
      throw new Error(`${registry?.file ?? 'registry'}: cannot record ${what} of run ${runId}: ${(error as Error).message}`);
    }
  };

  try {
    for (let epoch = epochsDone; epoch < config.epochs; epoch++) {
      const epochStart = Date.now();
      let lossSum = 0;
      let correct = 0;
      let clips = 0;
      let epochIteration = 0;
      let previous = Date.now();
      for await (const batch of options.train.batches(epoch)) {
        if (epochIteration >= perEpoch) break;
        // One turn of the event loop per iteration: with in-memory data (data.cache) every await here is a
        // microtask, and a pause or stop request (a worker message, a signal) would wait for the run's end.
        if (options.control) await new Promise((resolve) => setImmediate(resolve));
        if (options.control?.paused) {
          registry?.setStatus(runId, 'paused');
          emit({ kind: 'paused', runId, iteration });
          await options.control.waitWhilePaused();
          if (!options.control.stopRequested) {
            registry?.markRunning(runId, options.backend);
            emit({ kind: 'resumed', runId, iteration });
          }
          previous = Date.now();
        }
        const stop = options.control?.stopRequested;
        if (stop)
          return finish('stopped', `${stop}; resume from the last checkpoint with --resume ${runId}`, { lastVal, lastTrain });

        // The step's only read back: the loss and the predicted classes in one tensor, after the backward pass.
        let predicted: Tensor | null = null;
        const { value, grads } = tf.tidy(() => {
          const x = tf.tensor(batch.input, batch.shape, 'float32');
          return tf.variableGrads(() => {
            const logits = model.forward(x, { training: true, random: random.uniform }).logits;
            predicted = tf.keep(tf.cast(tf.argMax(logits, 1), 'float32'));
            return tf.div(crossEntropy(logits, batch.labels, config.loss.label_smoothing), config.update_interval) as tf.Scalar;
          }, variables);
        });
        const readBack = tf.tidy(() => tf.concat([tf.reshape(value, [1]), predicted as unknown as Tensor]));
        value.dispose();
        (predicted as unknown as Tensor).dispose();
        const lossAndPredictions = await readBack.data();
        readBack.dispose();
        const loss = lossAndPredictions[0] * config.update_interval;
        const predictions = lossAndPredictions.subarray(1);
        if (!Number.isFinite(loss)) {
          Object.values(grads).forEach((g) => g.dispose());
          const lr = learningRate(opt.lr, iteration, schedule);
          return finish(
            'failed',
            `the loss became ${loss} at epoch ${epoch + 1}, iteration ${iteration} (lr ${lr.toExponential(3)}); the run was stopped. Lower optimizer.lr, enable optimizer.clip_grad_norm, or check the input normalisation. The last good checkpoint is kept for --resume.`,
            { lastVal, lastTrain },
          );
        }
        for (const [variableName, grad] of Object.entries(grads)) {
          const key = variableKey.get(variableName) as string;
          const previousGrad = accumulated.get(key);
          if (previousGrad) {
            accumulated.set(key, tf.add(previousGrad, grad));
            previousGrad.dispose();
            grad.dispose();
          } else {
            accumulated.set(key, grad);
          }
        }
        const lr = learningRate(opt.lr, iteration, schedule);
        if ((iteration + 1) % config.update_interval === 0) {
          if (opt.clip_grad_norm !== null) {
            const clipped = clipGradNorm(accumulated, opt.clip_grad_norm);
            clipped.norm.dispose();
            accumulated = clipped.grads;
          }
          // The hook sets the LR before each iteration, so a step uses the LR of its last micro-batch.
          optimizer.step(accumulated, (group) => learningRate(group.lr, iteration, schedule));
          disposeAccumulated();
        }

        const size = batch.labels.length;
        lossSum += loss * size;
        clips += size;
        for (let i = 0; i < size; i++) if (predictions[i] === batch.labels[i]) correct += 1;
        const now = Date.now();
        secondsPerIteration.push((now - previous) / 1000);
        if (secondsPerIteration.length > 50) secondsPerIteration.shift();
        previous = now;
        const meanSeconds = secondsPerIteration.reduce((a, b) => a + b, 0) / secondsPerIteration.length;
        const remaining = (config.epochs - epoch) * perEpoch - epochIteration - 1;
        recording(`iteration ${iteration}`, () =>
          registry?.recordProgress(runId, epochsDone, iteration + 1, [
            { scope: 'iteration', split: 'train', step: iteration, epoch, name: 'loss', value: loss },
            { scope: 'iteration', split: 'train', step: iteration, epoch, name: 'lr', value: lr },
          ]),
        );
        emit({
          kind: 'iteration',
          runId,
          epoch,
          iteration,
          epochIteration,
          iterationsPerEpoch: perEpoch,
          loss,
          lr,
          clipsPerSecond: size / Math.max(meanSeconds, 1e-9),
          etaSeconds: remaining * meanSeconds,
        });
        iteration += 1;
        epochIteration += 1;
      }
      if (epochIteration === 0) throw new Error(`epoch ${epoch + 1} produced no training batches`);

      lastTrain = { loss: lossSum / clips, top1: correct / clips, clips };
      const validateNow = options.val !== null && ((epoch + 1) % config.evaluation.interval === 0 || epoch + 1 === config.epochs);
      lastVal = validateNow ? await validate(model, options.val as BatchSource, epoch) : null;
      epochsDone = epoch + 1;

      const reasons: CheckpointReason[] = ['last'];
      if (config.checkpoint.interval !== null && epochsDone % config.checkpoint.interval === 0) reasons.push('interval');
      let metricValue: number | null = null;
      if (lastVal) {
        metricValue = lastVal[metricKey[config.evaluation.metric]];
        if (config.checkpoint.save_best && (bestMetric === null || metricValue > bestMetric)) {
          bestMetric = metricValue;
          bestEpoch = epochsDone;
          reasons.push('best');
        }
      }
      const epochMetrics = [
        { scope: 'epoch' as const, split: 'train' as const, step: epochsDone, epoch, name: 'loss', value: lastTrain.loss },
        { scope: 'epoch' as const, split: 'train' as const, step: epochsDone, epoch, name: 'top1', value: lastTrain.top1 },
        ...(lastVal
          ? (['loss', 'top1', 'top5', 'meanClassAccuracy'] as const).map((name) => ({
              scope: 'epoch' as const,
              split: 'val' as const,
              step: epochsDone,
              epoch,
              name: name === 'meanClassAccuracy' ? 'mean_class_accuracy' : name,
              value: lastVal![name],
            }))
          : []),
      ];

      const paths = checkpointPaths(options.runDir, epochsDone);
      const tensors: TensorMap = (await optimizer.state()).tensors;
      for (const [key, grad] of accumulated) tensors.set(`accum.${key}`, await hostCopy(grad));
      writeTrainingCheckpoint(
        paths,
        await model.readStateDict(),
        checkpointMetadata({
          model: model.config,
          classNames: options.checkpointInfo?.classNames ?? defaultClassNames(model.config.num_classes),
          pipeline: config.data.pipeline,
          runId,
          projectVersion: options.checkpointInfo?.projectVersion ?? 'unknown',
          backend: options.backend,
          epoch: epochsDone,
          step: optimizer.steps,
          metrics: lastVal ? { ...lastVal } : {},
        }),
        {
          epochsDone,
          iteration,
          optimizerSteps: optimizer.steps,
          randomState: random.getState(),
          bestMetric,
          bestEpoch,
          tensors,
        },
      );
      let id: number | null = null;
      recording(`the checkpoint of epoch ${epochsDone}`, () => {
        id =
          registry?.addCheckpoint({
            runId,
            epoch: epochsDone,
            iteration,
            path: paths.weights,
            statePath: paths.state,
            reasons,
            metricName: lastVal ? config.evaluation.metric : null,
            metricValue,
          }) ?? null;
      });
      kept.push({ id, epoch: epochsDone, weights: paths.weights, state: paths.state, reasons });
      // Metrics of the epoch are committed with the checkpoint's position, so the registry and the
      // files agree on where a resumed run starts.
      let skippedThisEpoch = 0;
      recording(`epoch ${epochsDone}`, () => {
        skippedThisEpoch = recordSkips(epochsDone);
        registry?.recordProgress(runId, epochsDone, iteration, epochMetrics);
      });
      emit({ kind: 'checkpoint', runId, epoch: epochsDone, path: paths.weights, reasons });
      prune(kept, config.checkpoint.keep_last, registry);

      const seconds = (Date.now() - epochStart) / 1000;
      emit({
        kind: 'epoch',
        runId,
        epoch,
        epochs: config.epochs,
        train: lastTrain,
        val: lastVal ? { ...lastVal, views: { clips: 1, crops: 1 } } : null,
        seconds,
        etaSeconds: seconds * (config.epochs - epochsDone),
        skipped: skippedThisEpoch,
      });
    }
  } catch (error) {
    finish('failed', (error as Error).message);
    throw error;
  }
  return finish('completed', null, { lastVal, lastTrain });
}

/** Keeps the newest `keepLast` checkpoints, the current best and interval snapshots; deletes the rest. */
function prune(kept: CheckpointEntry[], keepLast: number, registry: Registry | null): void {
  const newest = new Set(kept.slice(-keepLast));
  const best = [...kept].reverse().find((c) => c.reasons.includes('best'));
  for (let i = kept.length - 1; i >= 0; i--) {
    const c = kept[i];
    if (newest.has(c) || c === best || c.reasons.includes('interval')) continue;
    removeCheckpointFiles({ weights: c.weights, state: c.state });
    if (c.id !== null) registry?.markCheckpointDeleted(c.id);
    kept.splice(i, 1);
  }
}

async function hostCopy(tensor: Tensor): Promise<HostTensor> {
  return { shape: [...tensor.shape], data: (await tensor.data()) as Float32Array, dtype: 'float32', fileDtype: 'float32' };
}

/**
 * A small file held in the run folder while the run trains: when the disk fills, deleting it gives the
 * registry room to record how the run ended (registry and runs share the workbench home's disk).
 */
function diskReserve(runDir: string, bytes = 256 * 1024): { release(): void } {
  const path = join(runDir, '.disk-reserve');
  try {
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path, new Uint8Array(bytes));
  } catch {
    rmSync(path, { force: true }); // no room even for the reserve: training will report the full disk itself
  }
  return { release: () => rmSync(path, { force: true }) };
}
