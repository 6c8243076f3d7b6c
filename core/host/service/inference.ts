// The checkpoint work of the service moved to the application layer, shared with the CLI:
// core/app/checkpoints.ts (opening a checkpoint), core/app/evaluate.ts (comparison) and
// core/app/inspect.ts (attention, predictions). These names stay for code that imports them here.
import { openCheckpoint, type CheckpointInfo } from '../../app/checkpoints.ts';

export {
  attentionView,
  attentionWindow,
  forgetAttentionCapture,
  forgetLoadedModel,
  keptAttentionCapture,
  loadedModel,
  MAX_ATTENTION_CAPTURE_VALUES,
  predictVideo,
} from '../../app/inspect.ts';
export { compareCheckpoints, weightChange } from '../../app/evaluate.ts';

/** openCheckpoint (core/app/checkpoints.ts) under its former field names `config` and `classes`. */
export function readCheckpointInfo(path: string): CheckpointInfo & { config: CheckpointInfo['model']; classes: string[] } {
  const info = openCheckpoint(path);
  return { ...info, config: info.model, classes: info.classNames };
}
