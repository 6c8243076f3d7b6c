// The model a run starts from: a fresh official initialisation, then either 2-D ImageNet weights
// inflated to 3-D (`pretrained`) or a 3-D recognizer checkpoint (`load_from`, the head skipped when
// its class count differs, as the official SSv2 fine-tuning does).
import { createVideoSwin, type VideoSwin } from '../model/video-swin.ts';
import { loadCheckpoint } from '../model/weights/checkpoint.ts';
import { describeInflation, inflate2dTo3d } from '../model/weights/inflate.ts';
import type { TensorMap } from '../model/weights/types.ts';
import { modelConfigOf, type RunConfig } from './run-config.ts';

export interface ModelSetup {
  model: VideoSwin;
  /** What was loaded, in plain words, for the CLI and the run log. */
  notes: string[];
}

/** `resuming`: the weights come from the run's own checkpoint next, so neither `pretrained` nor `load_from` is read. */
export function buildModel(config: RunConfig, options: { resuming?: boolean } = {}): ModelSetup {
  const model = createVideoSwin(modelConfigOf(config), { seed: config.seed });
  const notes: string[] = [];
  try {
    if (options.resuming) {
      // The trainer loads the checkpoint strictly; the starting weights would be overwritten.
    } else if (config.model.pretrained) {
      const checkpoint = loadCheckpoint(config.model.pretrained);
      const { stateDict, report } = inflate2dTo3d(checkpoint.stateDict, model.config.backbone);
      if (report.mismatched.length > 0 || report.missing.length > 0) {
        throw new Error(
          `model.pretrained: ${config.model.pretrained} does not fit the configured backbone:\n  ${describeInflation(report).join('\n  ')}`,
        );
      }
      const prefixed: TensorMap = new Map([...stateDict].map(([key, tensor]) => [`backbone.${key}`, tensor]));
      const loaded = model.loadStateDict(prefixed, { strict: false });
      notes.push(
        `inflated ${loaded.loaded.length} backbone tensors from the 2-D checkpoint ${config.model.pretrained}; the head is freshly initialised`,
      );
      notes.push(...describeInflation(report));
    } else if (config.model.load_from) {
      const checkpoint = loadCheckpoint(config.model.load_from);
      const loaded = model.loadStateDict(checkpoint.stateDict, { strict: false, skipMismatched: true });
      if (loaded.loaded.length === 0)
        throw new Error(
          `model.load_from: ${config.model.load_from} has no tensor this model uses (is it a Video Swin recognizer checkpoint?)`,
        );
      const backboneMissing = loaded.missing.filter((key) => key.startsWith('backbone.'));
      if (backboneMissing.length > 0)
        throw new Error(
          `model.load_from: ${config.model.load_from} lacks ${backboneMissing.length} backbone tensors, e.g. ${backboneMissing.slice(0, 3).join(', ')}`,
        );
      notes.push(`loaded ${loaded.loaded.length} tensors from ${config.model.load_from}`);
      for (const m of loaded.mismatched)
        notes.push(`re-initialised ${m.key}: the checkpoint has [${m.received}], this model needs [${m.expected}]`);
      for (const key of loaded.missing) notes.push(`freshly initialised ${key} (not in the checkpoint)`);
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, notes };
}
