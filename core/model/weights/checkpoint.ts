// One entry point for every checkpoint a user may bring: official mmaction .pth files, bare state
// dicts, DDP-wrapped ones, 2-D ImageNet Swin files, foreign safetensors and our own. The file kind is
// recognised from its first bytes, not its extension, because downloaded files are often renamed.
import type { TensorMap } from './types.ts';
import { isHostTensor } from './dtypes.ts';
import { NumpyArray, isDict, readPth } from './pth.ts';
import { CheckpointFileError, jsonNestingBeyond, readHead } from './read-bytes.ts';
import { readSafetensors, writeSafetensors, type WriteSafetensorsOptions } from './safetensors.ts';
import { toWorkbenchKeys } from '../keys.ts';

export type CheckpointFormat = 'pth' | 'safetensors';
/**
 * mmcv: `{meta, state_dict}` (or `{state_dict}`); bare: the file is the state dict; swin2d: the 2-D
 * Swin layout `{model: state_dict}`; vswin: our safetensors with `format: vswin` metadata.
 */
export type CheckpointLayout = 'mmcv' | 'bare' | 'swin2d' | 'vswin';

export interface LoadedCheckpoint {
  path: string;
  format: CheckpointFormat;
  layout: CheckpointLayout;
  stateDict: TensorMap;
  /** mmcv `meta` (plain values), our decoded metadata, or a foreign safetensors file's raw strings. */
  metadata: Record<string, unknown>;
  /** What was adapted while loading (prefix stripped, entries skipped), in plain words. */
  notes: string[];
  /** Top-level entries of a .pth dict (e.g. meta, state_dict, optimizer, message_hub); empty otherwise. */
  entries?: string[];
}

export const checkpointFormatTag = 'vswin';
/** Our metadata is a config (4 deep) or metrics; deeper JSON would only feed stack-exhausting walks. */
const maxMetadataNesting = 32;

/**
 * Reads the first bytes to decide the format; errors name the file and what was found. safetensors is
 * recognised by its structure first (a u64 header length that fits the file, then "{"), because a
 * valid header of 128, 384, 640... bytes starts with the bytes 80 0x that also open a legacy pickle.
 */
export function sniffCheckpointFormat(path: string): CheckpointFormat {
  const { head, size } = readHead(path, 16, (message) => new CheckpointFileError(message));
  if (head.length >= 2 && head[0] === 0x50 && head[1] === 0x4b) return 'pth';
  if (head.length >= 9 && head[8] === 0x7b) {
    const declared = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true);
    if (declared >= 2n && declared <= BigInt(size - 8)) return 'safetensors';
  }
  if (head.length >= 2 && head[0] === 0x80 && head[1] <= 5) return 'pth'; // legacy torch.save; readPth explains.
  if (head.length >= 9 && head[8] === 0x7b) return 'safetensors'; // the reader explains the header length.
  const shown = [...head.subarray(0, 8)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
  throw new CheckpointFileError(
    `${path}: not a checkpoint this tool reads (expected a torch.save zip archive starting with "PK" or a safetensors file ` +
      `whose JSON header starts at byte 8; first bytes are ${shown || '(empty file)'})`,
  );
}

export function loadCheckpoint(path: string): LoadedCheckpoint {
  const format = sniffCheckpointFormat(path);
  return format === 'pth' ? fromPth(path) : fromSafetensors(path);
}

function fromSafetensors(path: string): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(path);
  const notes: string[] = [];
  if (metadata.format !== checkpointFormatTag) {
    const stateDict = officialKeys(stripModulePrefix(tensors, notes), notes);
    return { path, format: 'safetensors', layout: 'bare', stateDict, metadata: { ...metadata }, notes };
  }
  const decoded: Record<string, unknown> = { format: checkpointFormatTag };
  for (const [field, text] of Object.entries(metadata)) {
    if (field === 'format') continue;
    const deep = jsonNestingBeyond(text, maxMetadataNesting);
    if (deep !== null)
      throw new CheckpointFileError(
        `${path}: metadata "${field}" nests JSON more than ${maxMetadataNesting} levels deep at character ${deep}; ` +
          `vswin checkpoints store shallow JSON (a config, a step, metrics)`,
      );
    try {
      decoded[field] = JSON.parse(text);
    } catch (error) {
      throw new CheckpointFileError(
        `${path}: metadata "${field}" is not valid JSON (${(error as Error).message}); vswin checkpoints store every metadata ` +
          `value as JSON`,
      );
    }
  }
  return { path, format: 'safetensors', layout: 'vswin', stateDict: tensors, metadata: decoded, notes };
}

function fromPth(path: string): LoadedCheckpoint {
  const { root, container } = readPth(path);
  const notes: string[] = [];
  if (container === 'legacy') notes.push('legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False)');
  if (!isDict(root))
    throw new CheckpointFileError(
      `${path}: the pickled object is not a dict (found ${describe(root)}); expected a state dict or {meta, state_dict}`,
    );
  let layout: CheckpointLayout;
  let source: Record<string, unknown>;
  let metadata: Record<string, unknown> = {};
  const keys = Object.keys(root);
  if (isDict(root.state_dict)) {
    layout = 'mmcv';
    source = root.state_dict;
    if (isDict(root.meta)) metadata = plainValues(root.meta);
    const others = keys.filter((key) => key !== 'state_dict' && key !== 'meta');
    if (others.length) notes.push(`ignored top-level entries: ${others.join(', ')}`);
  } else if (isDict(root.model) && Object.values(root.model).some(isHostTensor)) {
    layout = 'swin2d';
    source = root.model;
    const others = keys.filter((key) => key !== 'model');
    if (others.length) notes.push(`ignored top-level entries: ${others.join(', ')}`);
  } else if (keys.length > 0 && Object.values(root).some(isHostTensor)) {
    layout = 'bare';
    source = root;
  } else {
    throw new CheckpointFileError(
      `${path}: no state dict found; top-level keys are [${keys.slice(0, 12).join(', ')}] but a state dict, {state_dict: ...} ` +
        `or {model: ...} holding tensors was expected`,
    );
  }
  const tensors: TensorMap = new Map();
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(source)) {
    if (isHostTensor(value)) tensors.set(key, value);
    else skipped.push(key);
  }
  if (skipped.length)
    notes.push(
      `skipped ${skipped.length} non-tensor entr${skipped.length === 1 ? 'y' : 'ies'} in the state dict: ` +
        `${skipped.slice(0, 5).join(', ')}`,
    );
  const stateDict = officialKeys(stripModulePrefix(tensors, notes), notes);
  return { path, format: 'pth', layout, stateDict, metadata, notes, entries: layout === 'bare' ? [] : keys };
}

/** Official key variants (mmaction2 1.x's `backbone.norm3`) under the names the model uses, for every command. */
function officialKeys(tensors: TensorMap, notes: string[]): TensorMap {
  const renamed = toWorkbenchKeys(tensors);
  notes.push(...renamed.notes);
  return renamed.stateDict;
}

/** DistributedDataParallel saves every key as `module.<key>`; the model's names have no prefix. */
function stripModulePrefix(tensors: TensorMap, notes: string[]): TensorMap {
  const names = [...tensors.keys()];
  if (names.length === 0 || !names.every((name) => name.startsWith('module.'))) return tensors;
  notes.push('removed the "module." prefix of every key (a DistributedDataParallel checkpoint)');
  return new Map([...tensors].map(([name, tensor]) => [name.slice('module.'.length), tensor]));
}

export interface CheckpointMetadata {
  /** The model config (the shape of `config` in the parity manifest). */
  config?: unknown;
  step?: number;
  metrics?: Record<string, number>;
  [field: string]: unknown;
}

/**
 * Writes our checkpoint format: safetensors whose `__metadata__` has `format: "vswin"` and every
 * other value JSON-encoded (so Python's json.loads gives it back unchanged). Atomic.
 */
export function saveCheckpoint(
  path: string,
  stateDict: TensorMap,
  metadata: CheckpointMetadata = {},
  options: WriteSafetensorsOptions = {},
): void {
  const encoded: Record<string, string> = { format: checkpointFormatTag };
  for (const [field, value] of Object.entries(metadata)) {
    if (field === 'format' || value === undefined) continue;
    const text = JSON.stringify(value);
    if (text === undefined) throw new Error(`checkpoint metadata "${field}" cannot be stored as JSON (received ${typeof value})`);
    encoded[field] = text;
  }
  writeSafetensors(path, stateDict, encoded, options);
}

/** Metadata without tensors or opaque objects, for display and JSON. */
function plainValues(value: Record<string, unknown>): Record<string, unknown> {
  const seen = new Set<unknown>();
  const convert = (node: unknown, depth: number): unknown => {
    if (node === null || typeof node !== 'object') return typeof node === 'bigint' ? node.toString() : node;
    if (seen.has(node) || depth > 20) return '[repeated]';
    if (isHostTensor(node)) return `[tensor ${node.fileDtype} ${JSON.stringify(node.shape)}]`;
    if (node instanceof Uint8Array) return `[${node.length} bytes]`;
    // `seen` holds the ancestors only: shared values print fully, cycles stop.
    seen.add(node);
    let result: unknown;
    if (Array.isArray(node)) result = node.map((item) => convert(item, depth + 1));
    else if (isDict(node))
      result = Object.fromEntries(Object.entries(node).map(([key, item]) => [key, convert(item, depth + 1)]));
    else if (node instanceof NumpyArray && node.tensor)
      result = node.tensor.data.length === 1 ? node.tensor.data[0] : `[numpy ${JSON.stringify(node.shape)}]`;
    else result = `[${(node as { constructor?: { name?: string } }).constructor?.name ?? 'object'}]`;
    seen.delete(node);
    return result;
  };
  return convert(value, 0) as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (isHostTensor(value)) return 'a single tensor';
  return value === null ? 'None' : typeof value;
}
