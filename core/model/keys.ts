// The official state_dict layout (fact sheet, section 3): every parameter and buffer key with its shape.
import { type BackboneConfig, type ModelConfig, stageDim, numFeatures } from './config.ts';

export interface KeySpec {
  shape: number[];
  /** 'param' is learned; 'buffer' is a pure function of the config (relative_position_index). */
  kind: 'param' | 'buffer';
}

/** Number of rows of a relative position bias table for a (configured) window. */
export const biasTableRows = (window: readonly number[]): number =>
  (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1);

/** Keys of the backbone, without the `backbone.` prefix, in the official registration order. */
export function backboneKeys(cfg: BackboneConfig): Map<string, KeySpec> {
  const keys = new Map<string, KeySpec>();
  const param = (name: string, shape: number[]) => keys.set(name, { shape, kind: 'param' });
  const [pt, ph, pw] = cfg.patch_size;
  const C = cfg.embed_dim;
  param('patch_embed.proj.weight', [C, cfg.in_chans, pt, ph, pw]);
  param('patch_embed.proj.bias', [C]);
  if (cfg.patch_norm) {
    param('patch_embed.norm.weight', [C]);
    param('patch_embed.norm.bias', [C]);
  }
  const nFull = cfg.window_size[0] * cfg.window_size[1] * cfg.window_size[2];
  const hidden = (dim: number) => Math.floor(dim * cfg.mlp_ratio);
  cfg.depths.forEach((depth, i) => {
    const dim = stageDim(cfg, i);
    const heads = cfg.num_heads[i];
    for (let j = 0; j < depth; j++) {
      const p = `layers.${i}.blocks.${j}`;
      param(`${p}.norm1.weight`, [dim]);
      param(`${p}.norm1.bias`, [dim]);
      param(`${p}.attn.relative_position_bias_table`, [biasTableRows(cfg.window_size), heads]);
      keys.set(`${p}.attn.relative_position_index`, { shape: [nFull, nFull], kind: 'buffer' });
      param(`${p}.attn.qkv.weight`, [3 * dim, dim]);
      if (cfg.qkv_bias) param(`${p}.attn.qkv.bias`, [3 * dim]);
      param(`${p}.attn.proj.weight`, [dim, dim]);
      param(`${p}.attn.proj.bias`, [dim]);
      param(`${p}.norm2.weight`, [dim]);
      param(`${p}.norm2.bias`, [dim]);
      param(`${p}.mlp.fc1.weight`, [hidden(dim), dim]);
      param(`${p}.mlp.fc1.bias`, [hidden(dim)]);
      param(`${p}.mlp.fc2.weight`, [dim, hidden(dim)]);
      param(`${p}.mlp.fc2.bias`, [dim]);
    }
    if (i < cfg.depths.length - 1) {
      param(`layers.${i}.downsample.reduction.weight`, [2 * dim, 4 * dim]);
      param(`layers.${i}.downsample.norm.weight`, [4 * dim]);
      param(`layers.${i}.downsample.norm.bias`, [4 * dim]);
    }
  });
  param('norm.weight', [numFeatures(cfg)]);
  param('norm.bias', [numFeatures(cfg)]);
  return keys;
}

/** Keys of a full recognizer (`backbone.*` + `cls_head.fc_cls.*`), as in mmaction checkpoints. */
export function recognizerKeys(cfg: ModelConfig): Map<string, KeySpec> {
  const keys = new Map<string, KeySpec>();
  for (const [name, spec] of backboneKeys(cfg.backbone)) keys.set(`backbone.${name}`, spec);
  keys.set('cls_head.fc_cls.weight', { shape: [cfg.num_classes, numFeatures(cfg.backbone)], kind: 'param' });
  keys.set('cls_head.fc_cls.bias', { shape: [cfg.num_classes], kind: 'param' });
  return keys;
}

/** Which official code base a state dict's names follow: 0.x (Video-Swin-Transformer, mmcv) or 1.x (mmaction2 on mmengine). */
export type KeyFlavor = '0.x' | '1.x';

const lastNormPattern = /^((?:backbone\.)?)norm(\d*)\.(weight|bias)$/;

/**
 * Renames official key variants to the names this model uses (the 0.x names of `recognizerKeys`).
 * mmaction2 1.x registers the backbone's last norm as `norm{i}` for each output stage i (`norm3`
 * with the default out_indices=(3,)); the norm of the last stage is the model's `norm`. Returns the
 * renamed map (the same map when nothing changes) and what was renamed, in plain words.
 */
export function toWorkbenchKeys<T>(stateDict: Map<string, T>): { stateDict: Map<string, T>; notes: string[] } {
  const lastStage = (prefix: string): number => {
    let last = -1;
    for (const key of stateDict.keys()) {
      const match = /^layers\.(\d+)\./.exec(key.slice(prefix.length));
      if (key.startsWith(prefix) && match) last = Math.max(last, Number(match[1]));
    }
    return last;
  };
  const notes: string[] = [];
  const renames = new Map<string, string>();
  for (const prefix of ['backbone.', '']) {
    if (stateDict.has(`${prefix}norm.weight`)) continue;
    const last = lastStage(prefix);
    if (last < 0 || !stateDict.has(`${prefix}norm${last}.weight`)) continue;
    for (const suffix of ['weight', 'bias'])
      if (stateDict.has(`${prefix}norm${last}.${suffix}`))
        renames.set(`${prefix}norm${last}.${suffix}`, `${prefix}norm.${suffix}`);
    notes.push(`renamed ${prefix}norm${last}.* (mmaction2 1.x's name of the last stage's norm) to ${prefix}norm.*`);
  }
  if (renames.size === 0) return { stateDict, notes };
  return { stateDict: new Map([...stateDict].map(([key, value]) => [renames.get(key) ?? key, value])), notes };
}

/**
 * The names a target engine expects: 0.x keeps `backbone.norm`, 1.x calls the last stage's norm
 * `backbone.norm{last stage}` (`norm3` for four stages). Keys already in the target's form stay.
 */
export function toFlavorKeys<T>(stateDict: Map<string, T>, flavor: KeyFlavor): Map<string, T> {
  const { stateDict: workbench } = toWorkbenchKeys(stateDict);
  if (flavor === '0.x') return workbench;
  const stages = new Map<string, number>();
  for (const key of workbench.keys()) {
    const match = /^((?:backbone\.)?)layers\.(\d+)\./.exec(key);
    if (match) stages.set(match[1], Math.max(stages.get(match[1]) ?? -1, Number(match[2])));
  }
  return new Map(
    [...workbench].map(([key, value]) => {
      const match = lastNormPattern.exec(key);
      if (!match || match[2] !== '' || !stages.has(match[1])) return [key, value];
      return [`${match[1]}norm${stages.get(match[1])}.${match[3]}`, value];
    }),
  );
}
