// Parsers for mmaction2's JSON training logs, in both generations (scale-out.md, "Logs"):
//   0.x: work_dir/<YYYYmmdd_HHMMSS>.log.json, a metadata first line, then {"mode": "train"|"val", ...}
//   1.x: work_dir/<YYYYmmdd_HHMMSS>/vis_data/scalars.json, no mode: train lines carry lr/loss and
//        the global `step`, val lines carry acc/* and `step` = epoch.
// Logs are read while the job writes them, so only whole lines are parsed and the byte offset of
// the last newline is returned; Python writes NaN/Infinity, which JSON.parse rejects.
import type { EngineFlavor, LogProblem } from '../protocol/cluster.ts';
import type { MetricRow } from '../registry/registry.ts';

export interface TrainRecord {
  kind: 'train';
  /** 1-based epoch as logged. */
  epoch: number;
  /** 0.x: 1-based iteration inside the epoch; 1.x: 1-based global iteration (`step`). */
  iteration: number;
  values: Record<string, number>;
}

export interface ValRecord {
  kind: 'val';
  /** 1-based epoch the validation followed. */
  epoch: number;
  values: Record<string, number>;
}

export type LogRecord = TrainRecord | ValRecord;

export interface ParsedChunk {
  records: LogRecord[];
  problems: LogProblem[];
  /** Bytes of the chunk that ended in a newline and were consumed; the rest is a partial line. */
  consumedBytes: number;
  /** Whole lines consumed (for line numbers in later chunks). */
  consumedLines: number;
}

const NEWLINE = 0x0a;

/**
 * JSON.parse that accepts Python's bare NaN, Infinity and -Infinity tokens (outside strings).
 * Throws SyntaxError like JSON.parse on anything else that is not JSON.
 */
export function parsePythonJson(text: string): unknown {
  const marker = '\u0000vswin:';
  let rewritten = '';
  let inString = false;
  let changed = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      rewritten += char;
      if (char === '\\') {
        rewritten += text[i + 1] ?? '';
        i += 1;
      } else if (char === '"') {
        inString = false;
      }
      continue;
    }
    if (char === '"') {
      inString = true;
      rewritten += char;
      continue;
    }
    const token = text.startsWith('-Infinity', i)
      ? '-Infinity'
      : text.startsWith('Infinity', i)
        ? 'Infinity'
        : text.startsWith('NaN', i)
          ? 'NaN'
          : null;
    if (token) {
      rewritten += JSON.stringify(`${marker}${token}`);
      i += token.length - 1;
      changed = true;
      continue;
    }
    rewritten += char;
  }
  if (!changed) return JSON.parse(text);
  return JSON.parse(rewritten, (_key, value) => {
    if (typeof value !== 'string' || !value.startsWith(marker)) return value;
    const token = value.slice(marker.length);
    return token === 'NaN' ? Number.NaN : token === 'Infinity' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  });
}

function numericValues(entry: Record<string, unknown>, skip: ReadonlySet<string>): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (skip.has(key)) continue;
    if (typeof value === 'number') values[key] = value;
  }
  return values;
}

const positiveInteger = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

const skip0x = new Set(['mode', 'epoch', 'iter']);
const skip1x = new Set(['epoch', 'iter', 'step']);

/** One parsed log line: a record, null for lines that carry no metrics (0.x metadata), or a problem. */
export function parseLogLine(flavor: EngineFlavor, line: string): LogRecord | null | { problem: string } {
  let entry: unknown;
  try {
    entry = parsePythonJson(line);
  } catch (error) {
    return { problem: `not a JSON line (${(error as Error).message}): ${line.slice(0, 120)}` };
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
    return { problem: `expected a JSON object, received ${line.slice(0, 120)}` };
  const record = entry as Record<string, unknown>;
  if (flavor === '0.x') {
    if (!('mode' in record)) return null; // the run's metadata line (env_info, config, seed)
    if (!positiveInteger(record.epoch))
      return { problem: `"epoch" must be a non-negative integer, received ${JSON.stringify(record.epoch)}` };
    if (record.mode === 'train') {
      if (!positiveInteger(record.iter))
        return { problem: `"iter" must be a non-negative integer, received ${JSON.stringify(record.iter)}` };
      return { kind: 'train', epoch: record.epoch, iteration: record.iter, values: numericValues(record, skip0x) };
    }
    if (record.mode === 'val') return { kind: 'val', epoch: record.epoch, values: numericValues(record, skip0x) };
    return { problem: `unknown "mode" ${JSON.stringify(record.mode)}; expected "train" or "val"` };
  }
  if (!positiveInteger(record.step))
    return { problem: `"step" must be a non-negative integer, received ${JSON.stringify(record.step)}` };
  const keys = Object.keys(record);
  if (keys.some((key) => key.startsWith('acc/')))
    return { kind: 'val', epoch: record.step, values: numericValues(record, skip1x) };
  if ('loss' in record || 'lr' in record) {
    const epoch = positiveInteger(record.epoch) ? record.epoch : 0;
    return { kind: 'train', epoch, iteration: record.step, values: numericValues(record, skip1x) };
  }
  return null; // e.g. a test-loop line; nothing the curves show
}

/**
 * Parses the whole lines of a chunk read at some byte offset; a trailing partial line is left for the
 * next read. `firstLine` is the 1-based number of the chunk's first line, for messages.
 */
export function parseLogChunk(flavor: EngineFlavor, chunk: Uint8Array, file: string, firstLine = 1): ParsedChunk {
  const end = chunk.lastIndexOf(NEWLINE);
  const result: ParsedChunk = { records: [], problems: [], consumedBytes: end + 1, consumedLines: 0 };
  if (end < 0) return result;
  const lines = new TextDecoder('utf-8').decode(chunk.subarray(0, end)).split('\n');
  result.consumedLines = lines.length;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line.length === 0) return;
    const parsed = parseLogLine(flavor, line);
    if (parsed === null) return;
    if ('problem' in parsed) result.problems.push({ file, line: firstLine + index, problem: parsed.problem });
    else result.records.push(parsed);
  });
  return result;
}

/** The folder-or-file timestamp mmaction puts in log paths (YYYYmmdd_HHMMSS), or null. */
export function logTimestamp(path: string): string | null {
  const matches = [...path.matchAll(/(\d{8}_\d{6})/g)];
  return matches.length ? matches[matches.length - 1][1] : null;
}

/** Orders log files by the time mmaction started them (the resumed run's file comes last). */
export function orderLogFiles(paths: readonly string[]): string[] {
  return [...paths].sort((a, b) => {
    const ta = logTimestamp(a) ?? '';
    const tb = logTimestamp(b) ?? '';
    return ta === tb ? a.localeCompare(b) : ta.localeCompare(tb);
  });
}

/** Finds the engine's JSON logs among paths of a work dir listing. */
export function isEngineLog(flavor: EngineFlavor, path: string): boolean {
  return flavor === '0.x' ? /(^|\/)\d{8}_\d{6}\.log\.json$/.test(path) : /(^|\/)\d{8}_\d{6}\/vis_data\/scalars\.json$/.test(path);
}

export interface RowContext {
  flavor: EngineFlavor;
  /** Needed for 0.x, whose `iter` restarts every epoch. */
  itersPerEpoch: number;
  /** The logged lr is the first parameter group's; this factor gives the head (base) LR when no `base_lr` is logged. */
  loggedLrToBase: number;
}

const trainNames: Record<string, string> = { top1_acc: 'top1', top5_acc: 'top5', lr: 'lr', base_lr: 'lr' };
const valNames: Record<string, string> = {
  top1_acc: 'top1',
  top5_acc: 'top5',
  mean_class_accuracy: 'mean_class_accuracy',
  'acc/top1': 'top1',
  'acc/top5': 'top5',
  'acc/mean1': 'mean_class_accuracy',
};

/** 0-based global iteration of a train record, the registry's `step` for iteration metrics. */
export function globalIteration(record: TrainRecord, context: RowContext): number {
  if (context.flavor === '1.x') return Math.max(0, record.iteration - 1);
  return Math.max(0, (record.epoch - 1) * context.itersPerEpoch + record.iteration - 1);
}

/**
 * Registry rows of records, with the names the local trainer uses (loss, lr, top1, top5,
 * mean_class_accuracy) so curves and overlays treat both alike; other numeric fields keep their names.
 */
export function recordsToRows(records: readonly LogRecord[], context: RowContext): MetricRow[] {
  const rows: MetricRow[] = [];
  for (const record of records) {
    if (record.kind === 'train') {
      const step = globalIteration(record, context);
      const epoch = Math.max(0, record.epoch - 1);
      // mmengine logs `base_lr` (the LR of the parameters without a multiplier, the head's) beside
      // `lr` (the first parameter group's) when there are several groups: it is the LR, as logged.
      const hasBaseLr = typeof record.values.base_lr === 'number';
      for (const [key, raw] of Object.entries(record.values)) {
        if (hasBaseLr && key === 'lr') continue;
        const value = key === 'base_lr' ? raw : key === 'lr' ? raw * context.loggedLrToBase : raw;
        rows.push({
          scope: 'iteration',
          split: 'train',
          step,
          epoch,
          name: trainNames[key] ?? key,
          value: Number.isNaN(value) ? null : value,
        });
      }
    } else {
      for (const [key, value] of Object.entries(record.values)) {
        const name = valNames[key];
        if (!name) continue; // timing fields of the val loop
        rows.push({
          scope: 'epoch',
          split: 'val',
          step: record.epoch,
          epoch: Math.max(0, record.epoch - 1),
          name,
          value: Number.isNaN(value) ? null : value,
        });
      }
    }
  }
  return rows;
}

/** Where a resumed log starts: rows at or after it, from earlier files, are superseded. */
export function resumePoint(
  records: readonly LogRecord[],
  context: RowContext,
): { iteration: number; epochsDone: number } | null {
  const first = records.find((record): record is TrainRecord => record.kind === 'train');
  if (!first) return null;
  return { iteration: globalIteration(first, context), epochsDone: Math.max(0, first.epoch - 1) };
}

const rowKey = (row: MetricRow): string => `${row.scope}|${row.split}|${row.step}|${row.name}`;

/**
 * Merges complete logs of one work dir (as a fresh reader would): files in time order, a later
 * file supersedes what earlier ones logged from its resume point on, later lines win on the same key.
 */
export function mergeLogs(files: readonly { path: string; records: readonly LogRecord[] }[], context: RowContext): MetricRow[] {
  const merged = new Map<string, MetricRow>();
  const byPath = new Map(files.map((file) => [file.path, file.records]));
  for (const path of orderLogFiles([...byPath.keys()])) {
    const records = byPath.get(path)!;
    const resume = merged.size > 0 ? resumePoint(records, context) : null;
    if (resume) {
      for (const [key, row] of merged) {
        const superseded = row.scope === 'iteration' ? row.step >= resume.iteration : row.step > resume.epochsDone;
        if (superseded) merged.delete(key);
      }
    }
    for (const row of recordsToRows(records, context)) merged.set(rowKey(row), row);
  }
  return [...merged.values()].sort((a, b) =>
    a.scope === b.scope ? a.step - b.step || a.name.localeCompare(b.name) : a.scope.localeCompare(b.scope),
  );
}

/**
 * Epoch-level train rows (mean of the logged interval losses and accuracies of each finished epoch):
 * mmaction logs no epoch summary, and the run views plot one.
 */
export function epochTrainRows(rows: readonly MetricRow[], finishedEpochs: number): MetricRow[] {
  const sums = new Map<string, { sum: number; count: number; epoch: number }>();
  for (const row of rows) {
    if (row.scope !== 'iteration' || row.split !== 'train' || row.value === null || row.epoch >= finishedEpochs) continue;
    if (row.name !== 'loss' && row.name !== 'top1') continue;
    const key = `${row.epoch}|${row.name}`;
    const entry = sums.get(key) ?? { sum: 0, count: 0, epoch: row.epoch };
    entry.sum += row.value;
    entry.count += 1;
    sums.set(key, entry);
  }
  return [...sums.entries()].map(([key, entry]) => ({
    scope: 'epoch' as const,
    split: 'train' as const,
    step: entry.epoch + 1,
    epoch: entry.epoch,
    name: key.split('|')[1],
    value: entry.sum / entry.count,
  }));
}
