// mmaction2 annotation formats (video lists, rawframe lists, multi-label lines, label maps) and the
// Create ML style CSV/JSON (`video,label[,start,end]`).
//
// mmaction2 splits lines on whitespace, so it cannot read paths containing spaces. We read a line
// from the right instead: the trailing integer fields are taken off and everything before them,
// spaces included, is the path. Files we write stay byte-compatible with mmaction2 whenever the
// paths have no whitespace.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './files.ts';

export type AnnotationFormat = 'video' | 'rawframes';

export interface AnnotationEntry {
  /** Relative to the data root: a video file, or a folder of frames. */
  path: string;
  /** One label, or several for multi-label lines. */
  labels: number[];
  /** Rawframes only: frames in the folder (or in the clip when startIndex is given). */
  totalFrames?: number;
  /** Rawframes with offset: first frame of a clip cut from a longer video. */
  startIndex?: number;
  /** Create ML trims, in seconds; mmaction2 lists cannot express them. */
  startTime?: number;
  endTime?: number;
  /** 1-based line in the file it was read from. */
  line?: number;
}

export type ProblemKind =
  | 'malformed-line'
  | 'blank-line'
  | 'missing-file'
  | 'empty-file'
  | 'not-a-folder'
  | 'label-out-of-range'
  | 'duplicate-entry'
  | 'frame-count'
  | 'duplicate-class'
  | 'unknown-class'
  | 'whitespace-in-path'
  | 'unreadable';

export interface AnnotationProblem {
  file: string;
  line: number;
  severity: 'error' | 'warning';
  kind: ProblemKind;
  message: string;
}

export interface ParseOptions {
  format: AnnotationFormat;
  /** Several labels per line (mmaction2 `multi_class`). */
  multiLabel?: boolean;
  /** Rawframe lines carry a start index (mmaction2 `with_offset`). */
  withOffset?: boolean;
  /** Name used in problem reports. */
  file?: string;
}

export interface ParseResult {
  entries: AnnotationEntry[];
  problems: AnnotationProblem[];
}

const integerToken = /^-?\d+$/;

/** Splits "path with spaces 12 3" into the path (spacing kept) and its trailing integer tokens. */
function splitTrailingIntegers(line: string): { path: string; numbers: string[]; tokenStarts: number[] } {
  const tokens = [...line.matchAll(/\S+/g)];
  let first = tokens.length;
  while (first > 0 && integerToken.test(tokens[first - 1][0])) first--;
  const numbers = tokens.slice(first).map((token) => token[0]);
  const tokenStarts = tokens.slice(first).map((token) => token.index ?? 0);
  const end = first < tokens.length ? (tokens[first].index ?? line.length) : line.length;
  return { path: line.slice(0, end).trim(), numbers, tokenStarts };
}

export function parseAnnotationText(text: string, options: ParseOptions): ParseResult {
  const file = options.file ?? '<annotations>';
  const entries: AnnotationEntry[] = [];
  const problems: AnnotationProblem[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const countsBefore = options.format === 'rawframes' ? (options.withOffset ? 2 : 1) : 0;
  const fieldNames =
    options.format === 'video'
      ? 'path label'
      : options.withOffset
        ? 'frame_dir start_index total_frames label'
        : 'frame_dir total_frames label';
  const expected = `"${fieldNames}${options.multiLabel ? ' [label ...]' : ''}"`;
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') {
      problems.push({ file, line, severity: 'warning', kind: 'blank-line', message: 'blank line (mmaction2 fails on it)' });
      return;
    }
    const split = splitTrailingIntegers(raw);
    let numbers = split.numbers;
    let path = split.path;
    const needed = countsBefore + 1;
    if (!options.multiLabel && numbers.length > needed) {
      // A path may itself end in number tokens ("clip 2.mp4" cannot, "take 2" can): give them back.
      const keep = numbers.length - needed;
      path = raw.slice(0, split.tokenStarts[keep]).trim();
      numbers = numbers.slice(keep);
    }
    if (numbers.length < needed || path === '') {
      problems.push({
        file,
        line,
        severity: 'error',
        kind: 'malformed-line',
        message: `malformed line: expected ${expected}, received "${raw.trim()}"`,
      });
      return;
    }
    const values = numbers.map(Number);
    const entry: AnnotationEntry = { path, labels: values.slice(countsBefore), line };
    if (options.format === 'rawframes') {
      if (options.withOffset) {
        entry.startIndex = values[0];
        entry.totalFrames = values[1];
      } else {
        entry.totalFrames = values[0];
      }
      if ((entry.startIndex ?? 0) < 0 || (entry.totalFrames ?? 0) < 1) {
        problems.push({
          file,
          line,
          severity: 'error',
          kind: 'malformed-line',
          message: `malformed line: frame counts must be positive, received "${raw.trim()}"`,
        });
        return;
      }
    }
    const negative = entry.labels.find((label) => label < 0);
    if (negative !== undefined) {
      problems.push({
        file,
        line,
        severity: 'error',
        kind: 'label-out-of-range',
        message: `label ${negative} is negative; expected an index >= 0`,
      });
      return;
    }
    entries.push(entry);
  });
  return { entries, problems };
}

export function formatAnnotationLines(
  entries: AnnotationEntry[],
  format: AnnotationFormat,
  options: { withOffset?: boolean } = {},
): string {
  return entries
    .map((entry, index) => {
      if (entry.startTime !== undefined || entry.endTime !== undefined) {
        throw new Error(
          `entry ${index + 1} (${entry.path}): mmaction2 lists cannot hold start/end times; cut the clip or use rawframes with a start index`,
        );
      }
      if (entry.labels.length === 0)
        throw new Error(`entry ${index + 1} (${entry.path}): expected at least one label, received none`);
      if (/[\r\n]/.test(entry.path))
        throw new Error(`entry ${index + 1}: a path cannot contain a line break, received ${JSON.stringify(entry.path)}`);
      const labels = entry.labels.join(' ');
      if (format === 'video') return `${entry.path} ${labels}`;
      if (entry.totalFrames === undefined)
        throw new Error(`entry ${index + 1} (${entry.path}): rawframes need total_frames, received none`);
      if (options.withOffset || entry.startIndex !== undefined) {
        if (!options.withOffset) throw new Error(`entry ${index + 1} (${entry.path}): has a start index; write with withOffset`);
        return `${entry.path} ${entry.startIndex ?? 1} ${entry.totalFrames} ${labels}`;
      }
      return `${entry.path} ${entry.totalFrames} ${labels}`;
    })
    .map((line) => `${line}\n`)
    .join('');
}

export async function readAnnotationFile(path: string, options: Omit<ParseOptions, 'file'>): Promise<ParseResult> {
  const text = await readFile(path, 'utf8');
  return parseAnnotationText(text, { ...options, file: path });
}

export async function writeAnnotationFile(
  path: string,
  entries: AnnotationEntry[],
  format: AnnotationFormat,
  options: { withOffset?: boolean } = {},
): Promise<void> {
  await writeFileAtomic(path, formatAnnotationLines(entries, format, options));
}

// ---- label map: one class name per line, index = line number - 1 ----

export function parseLabelMap(text: string, file = '<label map>'): { classes: string[]; problems: AnnotationProblem[] } {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const problems: AnnotationProblem[] = [];
  const seen = new Map<string, number>();
  const classes = lines.map((raw, index) => {
    const name = raw.trim();
    if (name === '')
      problems.push({
        file,
        line: index + 1,
        severity: 'error',
        kind: 'blank-line',
        message: 'blank line in the label map: every line is a class, so indices after it shift',
      });
    const earlier = seen.get(name);
    if (name !== '' && earlier !== undefined) {
      problems.push({
        file,
        line: index + 1,
        severity: 'error',
        kind: 'duplicate-class',
        message: `class "${name}" already on line ${earlier}`,
      });
    } else if (name !== '') seen.set(name, index + 1);
    return name;
  });
  return { classes, problems };
}

export function formatLabelMap(classes: string[]): string {
  for (const [index, name] of classes.entries()) {
    if (name.trim() === '' || /[\r\n]/.test(name))
      throw new Error(`class ${index}: expected a non-empty single-line name, received ${JSON.stringify(name)}`);
  }
  return classes.map((name) => `${name}\n`).join('');
}

export async function readLabelMap(path: string): Promise<{ classes: string[]; problems: AnnotationProblem[] }> {
  return parseLabelMap(await readFile(path, 'utf8'), path);
}

export async function writeLabelMap(path: string, classes: string[]): Promise<void> {
  await writeFileAtomic(path, formatLabelMap(classes));
}

// ---- Create ML style CSV / JSON: video,label[,start,end] ----

export interface CreateMlRecord {
  video: string;
  label: string;
  start?: number;
  end?: number;
  line?: number;
}

/** RFC 4180 fields: quotes around fields with commas, quotes or line breaks; "" inside quotes. */
function parseCsvRows(text: string): { fields: string[]; line: number }[] {
  const rows: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else {
        if (char === '\n') line++;
        field += char;
      }
    } else if (char === '"' && field === '') quoted = true;
    else if (char === ',') {
      fields.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      rows.push({ fields, line: rowLine });
      fields = [];
      field = '';
      line++;
      rowLine = line;
    } else field += char;
  }
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    rows.push({ fields, line: rowLine });
  }
  return rows.filter((row) => !(row.fields.length === 1 && row.fields[0].trim() === ''));
}

const columnAliases: Record<string, keyof CreateMlRecord> = {
  video: 'video',
  file: 'video',
  filename: 'video',
  path: 'video',
  label: 'label',
  class: 'label',
  start: 'start',
  end: 'end',
};

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.split('"').join('""')}"` : value;
}

function parseTime(
  value: unknown,
  file: string,
  line: number,
  column: string,
  problems: AnnotationProblem[],
): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const number = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isFinite(number) || number < 0) {
    problems.push({
      file,
      line,
      severity: 'error',
      kind: 'malformed-line',
      message: `${column}: expected a time in seconds >= 0, received "${String(value)}"`,
    });
    return undefined;
  }
  return number;
}

function checkRange(record: CreateMlRecord, file: string, problems: AnnotationProblem[]): void {
  if (record.start !== undefined && record.end !== undefined && record.end <= record.start) {
    problems.push({
      file,
      line: record.line ?? 0,
      severity: 'error',
      kind: 'malformed-line',
      message: `end (${record.end}) must be after start (${record.start})`,
    });
  }
}

export function parseCreateMlCsv(text: string, file = '<csv>'): { records: CreateMlRecord[]; problems: AnnotationProblem[] } {
  const rows = parseCsvRows(text.replace(/^\uFEFF/, ''));
  const problems: AnnotationProblem[] = [];
  if (rows.length === 0)
    return {
      records: [],
      problems: [
        {
          file,
          line: 1,
          severity: 'error',
          kind: 'malformed-line',
          message: 'empty file: expected a header "video,label[,start,end]"',
        },
      ],
    };
  const header = rows[0].fields.map((name) => columnAliases[name.trim().toLowerCase()]);
  if (!header.includes('video') || !header.includes('label')) {
    return {
      records: [],
      problems: [
        {
          file,
          line: rows[0].line,
          severity: 'error',
          kind: 'malformed-line',
          message: `header: expected columns "video,label[,start,end]", received "${rows[0].fields.join(',')}"`,
        },
      ],
    };
  }
  const records: CreateMlRecord[] = [];
  for (const row of rows.slice(1)) {
    if (row.fields.length !== header.length) {
      problems.push({
        file,
        line: row.line,
        severity: 'error',
        kind: 'malformed-line',
        message: `expected ${header.length} fields, received ${row.fields.length}: "${row.fields.join(',')}"`,
      });
      continue;
    }
    const value = (key: keyof CreateMlRecord) => {
      const index = header.indexOf(key);
      return index < 0 ? undefined : row.fields[index];
    };
    const video = (value('video') ?? '').trim();
    const label = (value('label') ?? '').trim();
    if (video === '' || label === '') {
      problems.push({
        file,
        line: row.line,
        severity: 'error',
        kind: 'malformed-line',
        message: `video and label must not be empty, received "${row.fields.join(',')}"`,
      });
      continue;
    }
    const before = problems.length;
    const record: CreateMlRecord = { video, label, line: row.line };
    const start = parseTime(value('start'), file, row.line, 'start', problems);
    const end = parseTime(value('end'), file, row.line, 'end', problems);
    if (start !== undefined) record.start = start;
    if (end !== undefined) record.end = end;
    checkRange(record, file, problems);
    if (problems.length === before) records.push(record);
  }
  return { records, problems };
}

export function formatCreateMlCsv(records: CreateMlRecord[]): string {
  const timed = records.some((record) => record.start !== undefined || record.end !== undefined);
  const header = timed ? 'video,label,start,end' : 'video,label';
  const lines = records.map((record) => {
    const base = `${csvField(record.video)},${csvField(record.label)}`;
    return timed ? `${base},${record.start ?? ''},${record.end ?? ''}` : base;
  });
  return [header, ...lines].map((line) => `${line}\n`).join('');
}

export function parseCreateMlJson(text: string, file = '<json>'): { records: CreateMlRecord[]; problems: AnnotationProblem[] } {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    return {
      records: [],
      problems: [
        { file, line: 1, severity: 'error', kind: 'malformed-line', message: `not valid JSON: ${(error as Error).message}` },
      ],
    };
  }
  if (!Array.isArray(data)) {
    return {
      records: [],
      problems: [
        {
          file,
          line: 1,
          severity: 'error',
          kind: 'malformed-line',
          message: `expected a JSON array of {video, label, start?, end?}, received ${typeof data}`,
        },
      ],
    };
  }
  const problems: AnnotationProblem[] = [];
  const records: CreateMlRecord[] = [];
  data.forEach((item: unknown, index) => {
    // JSON has no line numbers worth reporting once parsed; the item number is what users can find.
    const line = index + 1;
    const object = item as Record<string, unknown> | null;
    const video = object && typeof object === 'object' ? (object.video ?? object.file ?? object.filename) : undefined;
    const label = object && typeof object === 'object' ? (object.label ?? object.class) : undefined;
    if (typeof video !== 'string' || video.trim() === '' || (typeof label !== 'string' && typeof label !== 'number')) {
      problems.push({
        file,
        line,
        severity: 'error',
        kind: 'malformed-line',
        message: `item ${index}: expected {"video": string, "label": string}, received ${JSON.stringify(item)}`,
      });
      return;
    }
    const before = problems.length;
    const record: CreateMlRecord = { video: video.trim(), label: String(label).trim(), line };
    const start = parseTime(object!.start, file, line, `item ${index} start`, problems);
    const end = parseTime(object!.end, file, line, `item ${index} end`, problems);
    if (start !== undefined) record.start = start;
    if (end !== undefined) record.end = end;
    checkRange(record, file, problems);
    if (problems.length === before) records.push(record);
  });
  return { records, problems };
}

export function formatCreateMlJson(records: CreateMlRecord[]): string {
  const clean = records.map(({ video, label, start, end }) => ({
    video,
    label,
    ...(start !== undefined ? { start } : {}),
    ...(end !== undefined ? { end } : {}),
  }));
  return `${JSON.stringify(clean, null, 2)}\n`;
}

/** Create ML records to mmaction2 entries; classes are the given label map or the sorted names. */
export function createMlToEntries(
  records: CreateMlRecord[],
  classes?: string[],
  file = '<create ml>',
): { entries: AnnotationEntry[]; classes: string[]; problems: AnnotationProblem[] } {
  const names = classes ?? [...new Set(records.map((record) => record.label))].sort();
  const indexOf = new Map(names.map((name, index) => [name, index]));
  const problems: AnnotationProblem[] = [];
  const entries: AnnotationEntry[] = [];
  for (const record of records) {
    const label = indexOf.get(record.label);
    if (label === undefined) {
      problems.push({
        file,
        line: record.line ?? 0,
        severity: 'error',
        kind: 'unknown-class',
        message: `class "${record.label}" is not in the label map (${names.length} classes)`,
      });
      continue;
    }
    const entry: AnnotationEntry = { path: record.video, labels: [label] };
    if (record.line !== undefined) entry.line = record.line;
    if (record.start !== undefined) entry.startTime = record.start;
    if (record.end !== undefined) entry.endTime = record.end;
    entries.push(entry);
  }
  return { entries, classes: names, problems };
}

export function entriesToCreateMl(entries: AnnotationEntry[], classes: string[]): CreateMlRecord[] {
  return entries.map((entry, index) => {
    if (entry.labels.length !== 1)
      throw new Error(`entry ${index + 1} (${entry.path}): Create ML holds one label per video, received ${entry.labels.length}`);
    const name = classes[entry.labels[0]];
    if (name === undefined)
      throw new Error(
        `entry ${index + 1} (${entry.path}): label ${entry.labels[0]} is out of range for ${classes.length} classes`,
      );
    const record: CreateMlRecord = { video: entry.path, label: name };
    if (entry.startTime !== undefined) record.start = entry.startTime;
    if (entry.endTime !== undefined) record.end = entry.endTime;
    return record;
  });
}
