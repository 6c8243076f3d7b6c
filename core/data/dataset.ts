// Reading an annotation file against its data root: format detection and annotation checks (every
// problem with its file and line).
import { readFile, stat } from 'node:fs/promises';
import { extname, isAbsolute, join } from 'node:path';
import {
  createMlToEntries,
  parseAnnotationText,
  parseCreateMlCsv,
  parseCreateMlJson,
  readLabelMap,
  type AnnotationEntry,
  type AnnotationFormat,
  type AnnotationProblem,
  type ParseResult,
} from './annotations.ts';
import { listFrameFiles, probeVideo } from './decode.ts';

export interface LoadOptions {
  /** 'auto' looks at the first line: a folder under the root means rawframes. */
  format?: AnnotationFormat | 'auto';
  multiLabel?: boolean;
  withOffset?: boolean;
  /** Class names for Create ML files (labels are names there); sorted names when absent. */
  classes?: string[];
}

export function resolveDataPath(root: string, path: string): string {
  return isAbsolute(path) ? path : join(root, path);
}

async function kindOf(path: string): Promise<'file' | 'folder' | 'missing'> {
  try {
    const info = await stat(path);
    return info.isDirectory() ? 'folder' : 'file';
  } catch {
    return 'missing';
  }
}

/** Decides video list versus rawframe list (and the offset column) from the first usable line. */
export async function detectFormat(text: string, root: string): Promise<{ format: AnnotationFormat; withOffset: boolean }> {
  const firstLine = text.split(/\r?\n/).find((line) => line.trim() !== '');
  if (firstLine === undefined) return { format: 'video', withOffset: false };
  for (const withOffset of [false, true]) {
    const parsed = parseAnnotationText(firstLine, { format: 'rawframes', withOffset });
    const entry = parsed.entries[0];
    if (entry && (await kindOf(resolveDataPath(root, entry.path))) === 'folder') return { format: 'rawframes', withOffset };
  }
  return { format: 'video', withOffset: false };
}

export interface LoadedAnnotations extends ParseResult {
  format: AnnotationFormat;
  withOffset: boolean;
  /** Class names when the file carries them (Create ML CSV/JSON). */
  classes?: string[];
}

/** Create ML files (.csv / .json) hold class names and optional trims; mmaction2 lists hold indices. */
export function isCreateMlFile(path: string): boolean {
  return ['.csv', '.json'].includes(extname(path).toLowerCase());
}

export async function loadAnnotations(annFile: string, root: string, options: LoadOptions = {}): Promise<LoadedAnnotations> {
  let text: string;
  try {
    text = await readFile(annFile, 'utf8');
  } catch (error) {
    throw new Error(
      `${annFile}: cannot read the annotation file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  if (isCreateMlFile(annFile)) {
    const parsed = extname(annFile).toLowerCase() === '.csv' ? parseCreateMlCsv(text, annFile) : parseCreateMlJson(text, annFile);
    const converted = createMlToEntries(parsed.records, options.classes, annFile);
    return {
      entries: converted.entries,
      problems: [...parsed.problems, ...converted.problems],
      format: 'video',
      withOffset: false,
      classes: converted.classes,
    };
  }
  const detected =
    options.format === undefined || options.format === 'auto'
      ? await detectFormat(text, root)
      : { format: options.format, withOffset: options.withOffset ?? false };
  const withOffset = options.withOffset ?? detected.withOffset;
  const parsed = parseAnnotationText(text, {
    format: detected.format,
    withOffset,
    multiLabel: options.multiLabel ?? false,
    file: annFile,
  });
  return { ...parsed, format: detected.format, withOffset };
}

export interface CheckOptions extends LoadOptions {
  root: string;
  labelMap?: string;
  /** Also open every video with ffprobe (header + packet count) to find unreadable or truncated ones. */
  probe?: boolean;
  /** ffprobe processes at a time. */
  concurrency?: number;
}

function limiter(limit: number): <T>(work: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await work();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

export interface CheckReport {
  file: string;
  format: AnnotationFormat;
  withOffset: boolean;
  entries: number;
  classes?: number;
  problems: AnnotationProblem[];
  errors: number;
  warnings: number;
}

/**
 * Checks an annotation file: malformed lines, missing or empty files, labels out of the label map's
 * range, duplicate entries, frame counts that disagree with the frame folder.
 */
export async function checkAnnotationFile(annFile: string, options: CheckOptions): Promise<CheckReport> {
  const problems: AnnotationProblem[] = [];
  let classCount: number | undefined;
  let classes: string[] | undefined;
  if (options.labelMap) {
    const map = await readLabelMap(options.labelMap);
    problems.push(...map.problems);
    classCount = map.classes.length;
    classes = map.classes;
  }
  const loaded = await loadAnnotations(annFile, options.root, { ...options, ...(classes ? { classes } : {}) });
  problems.push(...loaded.problems);
  const seen = new Map<string, number>();
  const problem = (entry: AnnotationEntry, severity: 'error' | 'warning', kind: AnnotationProblem['kind'], message: string) =>
    problems.push({ file: annFile, line: entry.line ?? 0, severity, kind, message });
  // Frame folders are listed once each even when several clips point into them.
  const frameCounts = new Map<string, Promise<number>>();
  const limited = limiter(Math.max(1, options.concurrency ?? 4));
  await Promise.all(
    loaded.entries.map(async (entry) => {
      const key = `${entry.path}\u0000${entry.startIndex ?? ''}\u0000${entry.startTime ?? ''}\u0000${entry.endTime ?? ''}`;
      const earlier = seen.get(key);
      if (earlier !== undefined)
        problem(entry, 'error', 'duplicate-entry', `duplicate entry "${entry.path}": already on line ${earlier}`);
      else seen.set(key, entry.line ?? 0);
      if (classCount !== undefined) {
        for (const label of entry.labels) {
          if (label >= classCount)
            problem(
              entry,
              'error',
              'label-out-of-range',
              `label ${label} is out of range: the label map has ${classCount} classes (0..${classCount - 1})`,
            );
        }
      }
      if (!isCreateMlFile(annFile) && /\s/.test(entry.path))
        problem(
          entry,
          'warning',
          'whitespace-in-path',
          `path "${entry.path}" contains whitespace: this workbench reads it, mmaction2's own loader does not`,
        );
      const full = resolveDataPath(options.root, entry.path);
      const kind = await kindOf(full);
      if (kind === 'missing') {
        problem(entry, 'error', 'missing-file', `missing: "${entry.path}" does not exist under ${options.root}`);
        return;
      }
      if (loaded.format === 'video') {
        if (kind === 'folder')
          problem(
            entry,
            'error',
            'not-a-folder',
            `"${entry.path}" is a folder; a video list expects files (is this a rawframe list?)`,
          );
        else if ((await stat(full)).size === 0) problem(entry, 'error', 'empty-file', `"${entry.path}" is empty (0 bytes)`);
        else if (options.probe) {
          const probe = await limited(() => probeVideo(full));
          if (probe.kind === 'error') problem(entry, 'error', 'unreadable', `"${entry.path}": ${probe.reason}`);
          else if (
            (entry.startTime !== undefined || entry.endTime !== undefined) &&
            ((entry.startTime ?? 0) >= probe.durationSeconds || (entry.endTime ?? 0) > probe.durationSeconds + 0.5)
          ) {
            problem(
              entry,
              'error',
              'malformed-line',
              `trim ${entry.startTime ?? 0}..${entry.endTime ?? 'end'} s lies outside the video (${probe.durationSeconds.toFixed(2)} s)`,
            );
          }
        }
        return;
      }
      if (kind !== 'folder') {
        problem(entry, 'error', 'not-a-folder', `"${entry.path}" is a file; a rawframe list expects a folder of frames`);
        return;
      }
      let counting = frameCounts.get(full);
      if (!counting) {
        counting = listFrameFiles(full).then((files) => files.length);
        frameCounts.set(full, counting);
      }
      const available = await counting;
      const total = entry.totalFrames ?? 0;
      if (entry.startIndex !== undefined) {
        // With an offset the clip must fit in the folder; frames are numbered from 1 in mmaction2.
        const last = entry.startIndex + total - 1;
        if (last > available)
          problem(entry, 'error', 'frame-count', `frames ${entry.startIndex}..${last} requested, the folder holds ${available}`);
      } else if (total !== available) {
        problem(entry, 'error', 'frame-count', `total_frames is ${total}, the folder holds ${available} frames`);
      }
    }),
  );
  problems.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  const errors = problems.filter((item) => item.severity === 'error').length;
  const report: CheckReport = {
    file: annFile,
    format: loaded.format,
    withOffset: loaded.withOffset,
    entries: loaded.entries.length,
    problems,
    errors,
    warnings: problems.length - errors,
  };
  if (classCount !== undefined) report.classes = classCount;
  return report;
}
