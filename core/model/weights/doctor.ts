// The checkpoint doctor: says what a weights file is, which config it was trained with (read off the
// tensor shapes), and, for a given model config, exactly what would not load and what to do about it.
// Users' most common failure with the official code is a checkpoint that "does not load"; every
// finding here is a sentence a user can act on, not a raw key diff.
import { type BackboneConfig, type ModelConfig, parseModelConfig } from '../config.ts';
import { biasTableRows, recognizerKeys } from '../keys.ts';
import { VARIANTS } from '../variants.ts';
import type { TensorMap } from './types.ts';
import { elementCount, itemSize } from './dtypes.ts';
import { type CheckpointFormat, type CheckpointLayout, type LoadedCheckpoint, loadCheckpoint } from './checkpoint.ts';
import { describeInflation, inflate2dTo3d } from './inflate.ts';

/** recognizer3d: backbone + cls_head; backbone3d: backbone only; swin2d: 2-D ImageNet Swin; vswin: our own file. */
export type CheckpointKind = 'recognizer3d' | 'backbone3d' | 'swin2d' | 'vswin' | 'unknown';

export interface GuessedConfig {
  embed_dim: number;
  in_chans: number;
  /** [pt, ph, pw] for 3-D files, [ph, pw] for 2-D ones. */
  patch_size: number[];
  depths: number[];
  num_heads: number[];
  /** [wd, wh, ww] (3-D) or [w, w] (2-D); null when the tables do not pin it down. */
  window_size: number[] | null;
  mlp_ratio: number;
  qkv_bias: boolean;
  patch_norm: boolean;
  /** Classes of cls_head.fc_cls (3-D) or head (2-D); null without a head. */
  num_classes: number | null;
}

export interface Finding {
  severity: 'error' | 'warning' | 'info';
  message: string;
}

export interface KeyComparison {
  /** The config compared against, and where it came from. */
  against: 'given config' | 'config stored in the file' | 'guessed config';
  missing: string[];
  unexpected: string[];
  misshaped: { key: string; expected: number[]; received: number[] }[];
  /** True when every parameter of the config is present with its shape (strict load works). */
  loadsStrictly: boolean;
}

export interface Diagnosis {
  path: string;
  format: CheckpointFormat;
  layout: CheckpointLayout;
  kind: CheckpointKind;
  /** Whether the file carries a classification head (cls_head.fc_cls, or head for 2-D files). */
  hasHead: boolean;
  tensorCount: number;
  elementCount: number;
  /** Bytes of tensor data as stored in the file. */
  dataBytes: number;
  fileDtypes: Record<string, number>;
  guessed: GuessedConfig | null;
  /** Named variants (core/model/variants.ts) with the guessed architecture (2-D files: same widths and depths). */
  variants: string[];
  metadata: Record<string, unknown>;
  /** What a training framework's checkpoint says about its run (epoch, iteration, versions, entries). */
  training: TrainingSummary | null;
  comparison: KeyComparison | null;
  findings: Finding[];
}

export interface TrainingSummary {
  epoch: number | null;
  iteration: number | null;
  /** Framework versions recorded in `meta` (mmengine_version, mmcv_version, mmaction_version, ...). */
  versions: Record<string, string>;
  /** Top-level entries besides meta and state_dict: optimizer, param_schedulers, message_hub, ... */
  entries: string[];
  /** mmengine training checkpoints (message_hub + optimizer) resume a run; others only give weights. */
  resumable: boolean;
}

/** Epoch, iteration, versions and training-state entries of an mmcv/mmengine checkpoint, or null. */
export function trainingSummary(checkpoint: LoadedCheckpoint): TrainingSummary | null {
  if (checkpoint.layout !== 'mmcv') return null;
  const meta = checkpoint.metadata;
  const count = (value: unknown) => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null);
  const versions: Record<string, string> = {};
  for (const [field, value] of Object.entries(meta))
    if (/_version$/.test(field) && (typeof value === 'string' || typeof value === 'number')) versions[field] = String(value);
  const entries = (checkpoint.entries ?? []).filter((entry) => entry !== 'meta' && entry !== 'state_dict');
  return {
    epoch: count(meta.epoch),
    iteration: count(meta.iter),
    versions,
    entries,
    resumable: entries.includes('optimizer') && (entries.includes('message_hub') || count(meta.epoch) !== null),
  };
}

export function diagnoseCheckpoint(path: string, modelConfig?: ModelConfig): Diagnosis {
  return diagnoseLoaded(loadCheckpoint(path), modelConfig);
}

export function diagnoseLoaded(checkpoint: LoadedCheckpoint, modelConfig?: ModelConfig): Diagnosis {
  const { stateDict } = checkpoint;
  const findings: Finding[] = checkpoint.notes.map((message) => ({ severity: 'info' as const, message }));
  const fileDtypes: Record<string, number> = {};
  let elements = 0;
  let dataBytes = 0;
  for (const tensor of stateDict.values()) {
    const count = elementCount(tensor.shape);
    elements += count;
    dataBytes += count * itemSize[tensor.fileDtype];
    fileDtypes[tensor.fileDtype] = (fileDtypes[tensor.fileDtype] ?? 0) + 1;
  }

  const prefixed = [...stateDict.keys()].some((key) => key.startsWith('backbone.'));
  const backbone = prefixed ? withoutPrefix(stateDict, 'backbone.') : stateDict;
  const patchWeight = backbone.get('patch_embed.proj.weight');
  let kind: CheckpointKind;
  if (!patchWeight) kind = 'unknown';
  else if (patchWeight.shape.length === 4) kind = 'swin2d';
  else if (checkpoint.layout === 'vswin') kind = 'vswin';
  else kind = stateDict.has('cls_head.fc_cls.weight') ? 'recognizer3d' : 'backbone3d';
  const guessed = patchWeight ? guessConfig(backbone, stateDict, kind === 'swin2d') : null;

  const diagnosis: Diagnosis = {
    path: checkpoint.path,
    format: checkpoint.format,
    layout: checkpoint.layout,
    kind,
    hasHead: guessed?.num_classes != null,
    tensorCount: stateDict.size,
    elementCount: elements,
    dataBytes,
    fileDtypes,
    guessed,
    variants: guessed ? matchingVariants(guessed, kind === 'swin2d') : [],
    metadata: checkpoint.metadata,
    training: trainingSummary(checkpoint),
    comparison: null,
    findings,
  };

  switch (kind) {
    case 'unknown': {
      const sample = [...stateDict.keys()].slice(0, 4).join(', ');
      findings.push({
        severity: 'error',
        message:
          `not a Swin checkpoint: there is no patch_embed.proj.weight (with or without "backbone.") among its ` +
          `${stateDict.size} tensors (first keys: ${sample || 'none'})`,
      });
      return diagnosis;
    }
    case 'swin2d':
      diagnoseTwoD(backbone, guessed!, diagnosis.variants, modelConfig, findings);
      return diagnosis;
    case 'recognizer3d':
    case 'backbone3d':
    case 'vswin':
      break;
    default: {
      const exhaustive: never = kind;
      throw new Error(`unhandled checkpoint kind ${String(exhaustive)}`);
    }
  }

  if (diagnosis.variants.length) {
    findings.push({
      severity: 'info',
      message: `architecture of variant ${diagnosis.variants.join(' / ')} (usable as --model-config ${diagnosis.variants[0]})`,
    });
  }
  if (!diagnosis.hasHead) {
    const unprefixedNote = ' (keys have no "backbone." prefix: compared as backbone.*; `vswin checkpoint convert` adds it)';
    findings.push({
      severity: 'info',
      message:
        `3-D backbone without a classification head${prefixed ? '' : unprefixedNote}: ` +
        `cls_head.fc_cls is initialised fresh, so fine-tune before evaluating`,
    });
  }
  const fileKeys = prefixed || kind === 'recognizer3d' ? stateDict : withPrefix(stateDict, 'backbone.');
  let target: { config: ModelConfig; against: KeyComparison['against'] } | undefined;
  if (modelConfig) target = { config: modelConfig, against: 'given config' };
  else if (kind === 'vswin' && checkpoint.metadata.config !== undefined) {
    try {
      target = {
        config: parseModelConfig(checkpoint.metadata.config, 'config stored in the file'),
        against: 'config stored in the file',
      };
    } catch (error) {
      findings.push({ severity: 'warning', message: (error as Error).message });
    }
  }
  if (!target && guessed) {
    const config = configFromGuess(guessed);
    if (config) target = { config, against: 'guessed config' };
  }
  if (!target) return diagnosis;

  const comparison = compareKeys(fileKeys, target.config, target.against);
  diagnosis.comparison = comparison;
  describeComparison(comparison, target.config, guessed, findings);
  return diagnosis;
}

/** Reads the architecture off the tensor shapes (the only thing every checkpoint reliably carries). */
export function guessConfig(backbone: TensorMap, full: TensorMap, twoD: boolean): GuessedConfig {
  const patch = backbone.get('patch_embed.proj.weight')!;
  const depths: number[] = [];
  for (const key of backbone.keys()) {
    const match = /^layers\.(\d+)\.blocks\.(\d+)\./.exec(key);
    if (!match) continue;
    const stage = Number(match[1]);
    const block = Number(match[2]);
    if (stage > 64 || block > 1024) continue;
    while (depths.length <= stage) depths.push(0);
    depths[stage] = Math.max(depths[stage], block + 1);
  }
  const num_heads = depths.map(
    (_, stage) => backbone.get(`layers.${stage}.blocks.0.attn.relative_position_bias_table`)?.shape[1] ?? 0,
  );
  const table = backbone.get('layers.0.blocks.0.attn.relative_position_bias_table');
  const index = backbone.get('layers.0.blocks.0.attn.relative_position_index');
  const window_size = table ? guessWindow(table.shape[0], index?.shape[0], twoD) : null;
  const embed_dim = patch.shape[0];
  const fc1 = backbone.get('layers.0.blocks.0.mlp.fc1.weight');
  const head = twoD ? full.get('head.weight') : full.get('cls_head.fc_cls.weight');
  return {
    embed_dim,
    in_chans: patch.shape[1],
    patch_size: patch.shape.slice(2),
    depths,
    num_heads,
    window_size,
    mlp_ratio: fc1 ? fc1.shape[0] / embed_dim : 4,
    qkv_bias: backbone.has('layers.0.blocks.0.attn.qkv.bias'),
    patch_norm: backbone.has('patch_embed.norm.weight'),
    num_classes: head ? head.shape[0] : null,
  };
}

/**
 * Solves rows = (2wd-1)(2w-1)^2 (3-D) or (2w-1)^2 (2-D) for square spatial windows, using the index
 * buffer's side N = wd*w*w when present; the largest spatial window that fits wins.
 */
function guessWindow(rows: number, indexSide: number | undefined, twoD: boolean): number[] | null {
  for (let w = 64; w >= 1; w--) {
    const spatial = (2 * w - 1) ** 2;
    if (rows % spatial !== 0) continue;
    const temporal = rows / spatial;
    if (twoD) {
      if (temporal === 1) return [w, w];
      continue;
    }
    if (temporal % 2 !== 1) continue;
    const wd = (temporal + 1) / 2;
    if (indexSide !== undefined && wd * w * w !== indexSide) continue;
    return [wd, w, w];
  }
  return null;
}

export function configFromGuess(guess: GuessedConfig): ModelConfig | null {
  if (!guess.window_size || guess.patch_size.length !== 3) return null;
  try {
    return parseModelConfig({
      backbone: {
        patch_size: guess.patch_size,
        in_chans: guess.in_chans,
        embed_dim: guess.embed_dim,
        depths: guess.depths,
        num_heads: guess.num_heads,
        window_size: guess.window_size,
        mlp_ratio: guess.mlp_ratio,
        qkv_bias: guess.qkv_bias,
        patch_norm: guess.patch_norm,
      },
      num_classes: guess.num_classes ?? 1,
    });
  } catch {
    return null;
  }
}

export function compareKeys(fileKeys: TensorMap, config: ModelConfig, against: KeyComparison['against']): KeyComparison {
  const expected = recognizerKeys(config);
  const missing: string[] = [];
  const misshaped: KeyComparison['misshaped'] = [];
  for (const [key, spec] of expected) {
    const tensor = fileKeys.get(key);
    // Index buffers are a function of the window: recomputed, never required, never checked.
    if (spec.kind === 'buffer') continue;
    if (!tensor) missing.push(key);
    else if (!sameShape(tensor.shape, spec.shape)) misshaped.push({ key, expected: spec.shape, received: tensor.shape });
  }
  const unexpected = [...fileKeys.keys()].filter((key) => !expected.has(key));
  return { against, missing, unexpected, misshaped, loadsStrictly: missing.length === 0 && misshaped.length === 0 };
}

function describeComparison(
  comparison: KeyComparison,
  config: ModelConfig,
  guessed: GuessedConfig | null,
  findings: Finding[],
): void {
  const { missing, unexpected, misshaped, against } = comparison;
  const backbone = config.backbone;
  if (guessed && against !== 'guessed config') {
    for (const line of architectureDifferences(guessed, backbone))
      findings.push({ severity: 'error', message: `${line} (${against})` });
  }
  const headWeight = misshaped.find((entry) => entry.key === 'cls_head.fc_cls.weight');
  const headOnlyDiffers = headWeight && headWeight.received[1] === headWeight.expected[1];
  if (headWeight && headOnlyDiffers) {
    findings.push({
      severity: 'warning',
      message:
        `head has ${headWeight.received[0]} classes, config has ${config.num_classes}: the head will be re-initialised ` +
        `when fine-tuning (evaluation with this file needs num_classes ${headWeight.received[0]})`,
    });
  }

  const tables = misshaped.filter((entry) => entry.key.endsWith('relative_position_bias_table'));
  if (tables.length) {
    const rows = tables[0].received[0];
    const fileWindow = guessed?.window_size ? `window ${guessed.window_size.join('x')}` : `${rows}-row tables`;
    findings.push({
      severity: 'error',
      message:
        `relative position bias tables have ${rows} rows (${fileWindow}) but the config's window ` +
        `${backbone.window_size.join('x')} needs ${biasTableRows(backbone.window_size)}: set window_size to the file's window`,
    });
  }
  const otherMisshaped = misshaped.filter(
    (entry) => !entry.key.endsWith('relative_position_bias_table') && !(headOnlyDiffers && entry.key.startsWith('cls_head.')),
  );
  if (otherMisshaped.length) {
    findings.push({
      severity: 'error',
      message: `${otherMisshaped.length} tensor(s) have the wrong shape for the ${against}: ${listShapes(otherMisshaped)}`,
    });
  }
  const bodyMissing = missing.filter((key) => !key.startsWith('cls_head.'));
  if (bodyMissing.length)
    findings.push({
      severity: 'error',
      message: `${bodyMissing.length} parameter(s) of the ${against} are missing from the file: ${listKeys(bodyMissing)}`,
    });
  const extra = unexpected.filter((key) => !key.endsWith('relative_position_index'));
  if (extra.length)
    findings.push({
      severity: 'warning',
      message: `${extra.length} tensor(s) in the file are not used by the ${against} and will be ignored: ${listKeys(extra)}`,
    });
  if (comparison.loadsStrictly && extra.length === 0) {
    findings.push({
      severity: 'info',
      message:
        `every parameter of the ${against} is present with the right shape (relative_position_index buffers are ` + `recomputed)`,
    });
  }
}

function diagnoseTwoD(
  backbone: TensorMap,
  guessed: GuessedConfig,
  variants: string[],
  modelConfig: ModelConfig | undefined,
  findings: Finding[],
): void {
  const window = guessed.window_size ? `, window ${guessed.window_size[0]}` : '';
  const classes = guessed.num_classes ? `, ${guessed.num_classes}-class ImageNet head` : '';
  const variantNote = variants.length
    ? ` (the ${variants.join(' / ')} variant${variants.length > 1 ? 's have' : ' has'} this architecture, ` +
      `or give your own CFG.json)`
    : '';
  findings.push({
    severity: 'warning',
    message:
      `2-D ImageNet Swin weights (embed_dim ${guessed.embed_dim}, depths ` +
      `${guessed.depths.join(',')}${window}${classes}): a 3-D model cannot load them directly; use \`vswin checkpoint convert ` +
      `IN OUT --inflate --model-config ${variants[0] ?? 'CFG.json'}\`${variantNote}`,
  });
  if (!modelConfig) return;
  const { report } = inflate2dTo3d(backbone, modelConfig.backbone);
  const lines = describeInflation(report);
  if (report.mismatched.length) {
    findings.push({ severity: 'error', message: `inflation into the given config would fail:\n  ${lines.join('\n  ')}` });
  } else {
    findings.push({ severity: 'info', message: `inflation into the given config would work:\n  ${lines.join('\n  ')}` });
  }
}

/** Variants whose backbone has the guessed architecture; 2-D files only fix widths and depths. */
export function matchingVariants(guess: GuessedConfig, twoD: boolean): string[] {
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((value, i) => value === b[i]);
  return Object.entries(VARIANTS)
    .filter(([, variant]) => {
      const backbone = variant.config.backbone;
      if (
        backbone.embed_dim !== guess.embed_dim ||
        !same(backbone.depths, guess.depths) ||
        !same(backbone.num_heads, guess.num_heads)
      )
        return false;
      if (twoD) return true;
      return (
        same(backbone.patch_size, guess.patch_size) && guess.window_size !== null && same(backbone.window_size, guess.window_size)
      );
    })
    .map(([name]) => name);
}

function architectureDifferences(guess: GuessedConfig, config: BackboneConfig): string[] {
  const differences: string[] = [];
  const compare = (name: string, file: unknown, configured: unknown) => {
    if (JSON.stringify(file) !== JSON.stringify(configured))
      differences.push(`file has ${name} ${JSON.stringify(file)}, config has ${JSON.stringify(configured)}`);
  };
  compare('embed_dim', guess.embed_dim, config.embed_dim);
  compare('in_chans', guess.in_chans, config.in_chans);
  compare('patch_size', guess.patch_size, config.patch_size);
  compare('depths', guess.depths, config.depths);
  compare('num_heads', guess.num_heads, config.num_heads);
  compare('mlp_ratio', guess.mlp_ratio, config.mlp_ratio);
  compare('qkv_bias', guess.qkv_bias, config.qkv_bias);
  compare('patch_norm', guess.patch_norm, config.patch_norm);
  return differences;
}

const listKeys = (keys: string[]) => `${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ` and ${keys.length - 6} more` : ''}`;
const listShapes = (entries: KeyComparison['misshaped']) =>
  `${entries
    .slice(0, 4)
    .map((entry) => `${entry.key} is [${entry.received.join(', ')}], expected [${entry.expected.join(', ')}]`)
    .join('; ')}${entries.length > 4 ? `; and ${entries.length - 4} more` : ''}`;

function withoutPrefix(map: TensorMap, prefix: string): TensorMap {
  return new Map([...map].filter(([key]) => key.startsWith(prefix)).map(([key, tensor]) => [key.slice(prefix.length), tensor]));
}

function withPrefix(map: TensorMap, prefix: string): TensorMap {
  return new Map([...map].map(([key, tensor]) => [`${prefix}${key}`, tensor]));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

/** One line for `checkpoint inspect`: "epoch 2, iteration 16; mmengine 0.10.7; also holds optimizer, ...". */
export function describeTraining(summary: TrainingSummary): string {
  const parts = [
    `epoch ${summary.epoch ?? 'not recorded'}, iteration ${summary.iteration ?? 'not recorded'}`,
    Object.keys(summary.versions).length
      ? Object.entries(summary.versions)
          .map(([field, version]) => `${field.replace(/_version$/, '')} ${version}`)
          .join(', ')
      : 'no framework version recorded',
  ];
  if (summary.versions.mmengine_version && !Object.keys(summary.versions).some((field) => field.startsWith('mmaction')))
    parts[1] += ' (mmengine records no mmaction2 version)';
  const resumable = summary.resumable ? ' (a training checkpoint the engine can resume from)' : '';
  parts.push(summary.entries.length ? `also holds ${summary.entries.join(', ')}${resumable}` : 'weights only');
  return parts.join('; ');
}
