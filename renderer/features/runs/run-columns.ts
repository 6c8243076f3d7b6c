// Which config fields the runs table shows: only those that differ between runs.
import type { RunSummary } from '../../../core/protocol/workbench.ts';

/** Config fields whose value is not the same in every listed run. */
export function differingFields(runs: RunSummary[]): string[] {
  if (runs.length < 2) return [];
  const keys = new Set(runs.flatMap((r) => Object.keys(r.flatConfig)));
  return [...keys].filter((k) => new Set(runs.map((r) => r.flatConfig[k] ?? '∅')).size > 1 && k !== 'description').sort();
}

/** A curve key as words: 'iter:train:loss' -> 'train loss per iteration'. */
export function metricLabel(key: string): string {
  const [scope, split, name] = key.split(':');
  if (!split || !name) return key;
  return `${split} ${name} per ${scope === 'iter' ? 'iteration' : 'epoch'}`;
}
