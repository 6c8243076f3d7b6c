// Training checkpoints: two safetensors files per snapshot, each written atomically.
//   epoch_0003.safetensors        the model (official keys, `format: vswin` metadata: the versioned
//                                 schema of checkpoint-metadata.ts; `vswin eval --checkpoint` reads it)
//   epoch_0003.state.safetensors  optimizer moments, pending accumulated gradients, and in its
//                                 metadata the schedule position, RNG state and best metric
// The state file is written first and the registry row added last, so a kill at any moment leaves
// either a complete pair (known to the registry) or a stray temporary that nobody reads.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { saveCheckpoint } from '../model/weights/checkpoint.ts';
import type { CheckpointMetadata } from './checkpoint-metadata.ts';
import { readSafetensors, writeSafetensors } from '../model/weights/safetensors.ts';
import type { TensorMap } from '../model/weights/types.ts';

export const CHECKPOINT_FORMAT = 'vswin-train-state/1';

export interface TrainingPosition {
  /** Epochs completed; training continues with this (0-based) epoch. */
  epochsDone: number;
  /** Global micro-batch iterations completed. */
  iteration: number;
  optimizerSteps: number;
  /** Drop-path / dropout RNG state (engine/random.ts). */
  randomState: number;
  bestMetric: number | null;
  bestEpoch: number | null;
}

export interface TrainingState extends TrainingPosition {
  /** exp_avg.* / exp_avg_sq.* / accum.* tensors. */
  tensors: TensorMap;
}

export function checkpointPaths(runDir: string, epoch: number): { weights: string; state: string } {
  const stem = `epoch_${String(epoch).padStart(4, '0')}`;
  return {
    weights: join(runDir, 'checkpoints', `${stem}.safetensors`),
    state: join(runDir, 'checkpoints', `${stem}.state.safetensors`),
  };
}

export function writeTrainingCheckpoint(
  paths: { weights: string; state: string },
  weights: TensorMap,
  weightsMetadata: CheckpointMetadata,
  state: TrainingState,
): void {
  const { tensors, ...position } = state;
  // Errors name the file: a bare "ENOSPC: no space left on device, write" says neither what nor where.
  writing(paths.state, () => {
    mkdirSync(dirname(paths.state), { recursive: true });
    writeSafetensors(paths.state, tensors, { format: CHECKPOINT_FORMAT, position: JSON.stringify(position) });
  });
  writing(paths.weights, () => {
    mkdirSync(dirname(paths.weights), { recursive: true });
    saveCheckpoint(paths.weights, weights, { ...weightsMetadata } as Record<string, unknown>, { keepInt64: true });
  });
}

/** A write failure with the path, the code kept (ENOSPC, EDQUOT, EACCES...) for callers that react to it. */
export class CheckpointWriteError extends Error {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    cause: Error,
  ) {
    const hint = code === 'ENOSPC' || code === 'EDQUOT' ? ' (the disk is full: free space, then resume the run)' : '';
    super(`cannot write ${path}: ${cause.message}${hint}`);
  }
}

function writing(path: string, write: () => void): void {
  try {
    write();
  } catch (error) {
    throw new CheckpointWriteError(path, (error as NodeJS.ErrnoException).code, error as Error);
  }
}

export function readTrainingState(path: string): TrainingState {
  if (!existsSync(path))
    throw new Error(`${path}: training state file not found (it sits beside the weights as epoch_NNNN.state.safetensors)`);
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${path}: metadata "format" is ${JSON.stringify(metadata.format)}, expected "${CHECKPOINT_FORMAT}"`);
  }
  let position: TrainingPosition;
  try {
    position = JSON.parse(metadata.position ?? '');
  } catch {
    throw new Error(`${path}: metadata "position" is not JSON (received ${JSON.stringify(metadata.position)})`);
  }
  for (const field of ['epochsDone', 'iteration', 'optimizerSteps', 'randomState'] as const) {
    if (!Number.isInteger(position[field]))
      throw new Error(`${path}: position.${field} is ${JSON.stringify(position[field])}, expected an integer`);
  }
  return { ...position, tensors };
}

export function removeCheckpointFiles(paths: { weights: string; state: string | null }): void {
  rmSync(paths.weights, { force: true });
  if (paths.state) rmSync(paths.state, { force: true });
}
