// mmcv's DefaultOptimizerConstructor paramwise rule (fact sheet 6.2): custom keys are sorted
// alphabetically, then by length (longest first, stable), and the FIRST key that is a substring of
// the full parameter name decides both multipliers. That is why LayerNorms in the backbone still
// decay and relative position tables keep the full LR in the released models.

export interface CustomKey {
  lrMult?: number;
  decayMult?: number;
}

/** The `paramwise_cfg.custom_keys` of every official Video Swin config. */
export const OFFICIAL_CUSTOM_KEYS: Readonly<Record<string, CustomKey>> = {
  absolute_pos_embed: { decayMult: 0 },
  relative_position_bias_table: { decayMult: 0 },
  norm: { decayMult: 0 },
  backbone: { lrMult: 0.1 },
};

export interface ParamGroup {
  name: string;
  /** Custom key that matched, or null when none did (plain base LR and decay). */
  matchedKey: string | null;
  lr: number;
  weightDecay: number;
}

/** Keys in the order mmcv tries them. */
export function customKeyOrder(keys: Record<string, CustomKey>): string[] {
  // Sorting by name first and then (stably) by descending length is exactly mmcv's two sorts.
  return Object.keys(keys)
    .sort()
    .sort((a, b) => b.length - a.length);
}

/** Group of one parameter: first matching key wins. */
export function paramGroup(name: string, baseLr: number, baseDecay: number, keys: Record<string, CustomKey>): ParamGroup {
  for (const key of customKeyOrder(keys)) {
    if (!name.includes(key)) continue;
    const rule = keys[key];
    return { name, matchedKey: key, lr: baseLr * (rule.lrMult ?? 1), weightDecay: baseDecay * (rule.decayMult ?? 1) };
  }
  return { name, matchedKey: null, lr: baseLr, weightDecay: baseDecay };
}

export function paramGroups(
  names: Iterable<string>,
  baseLr: number,
  baseDecay: number,
  keys: Record<string, CustomKey>,
): Map<string, ParamGroup> {
  const out = new Map<string, ParamGroup>();
  for (const name of names) out.set(name, paramGroup(name, baseLr, baseDecay, keys));
  return out;
}
