// Folder scan (classes are the top-level folders; anything deeper belongs to its top-level class),
// a stratified seeded split, and the annotation files + report written atomically.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';
import sharp from 'sharp';
import { Random } from '../engine/random.ts';
import { writeAnnotationFile, writeLabelMap, type AnnotationEntry, type AnnotationFormat } from './annotations.ts';
import { describeTools, listFrameFiles, probeVideo } from './decode.ts';
import { imageExtensions, toPosixPath, videoExtensions, writeFileAtomic } from './files.ts';
import { mixSeed, type KnownVideo } from './loader.ts';

export interface ScannedItem {
  /** Relative to the root, forward slashes. */
  path: string;
  label: number;
  className: string;
  kind: 'video' | 'rawframes';
  codec: string;
  container: string;
  width: number;
  height: number;
  totalFrames: number;
  /** 0 when unknown (frame folders). */
  fps: number;
  durationSeconds: number;
}

export interface SkippedItem {
  path: string;
  reason: string;
}

export interface ScanResult {
  root: string;
  classes: string[];
  format: AnnotationFormat;
  items: ScannedItem[];
  skipped: SkippedItem[];
  hiddenIgnored: number;
  tools: string;
}

interface Candidate {
  path: string;
  className: string;
  kind: 'video' | 'rawframes' | 'other' | 'stray-image' | 'unreadable';
}

const isHidden = (name: string) => name.startsWith('.');

interface Counters {
  hidden: number;
  /** Folders already walked (real paths), so a symbolic link loop cannot recurse forever. */
  visited: Set<string>;
}

async function collect(folder: string, className: string, depth: number, into: Candidate[], counters: Counters): Promise<void> {
  const real = await realpath(folder);
  if (counters.visited.has(real)) return;
  counters.visited.add(real);
  const names = (await readdir(folder)).sort();
  const visible = names.filter((name) => {
    if (isHidden(name)) counters.hidden++;
    return !isHidden(name);
  });
  const entries = await Promise.all(
    visible.map(async (name) => {
      const full = join(folder, name);
      const info = await stat(full).catch(() => undefined);
      const extension = extname(name).toLowerCase();
      const kind =
        info === undefined
          ? 'unreadable'
          : info.isDirectory()
            ? 'folder'
            : imageExtensions.has(extension)
              ? 'image'
              : videoExtensions.has(extension) || extension === ''
                ? 'video'
                : 'other';
      return { name, full, kind };
    }),
  );
  const images = entries.filter((entry) => entry.kind === 'image');
  const others = entries.filter((entry) => entry.kind === 'video' || entry.kind === 'folder');
  // A folder below the class level holding only images is one sample of extracted frames. Images
  // next to videos or subfolders (thumbnails, posters) are stray files, not samples.
  if (depth > 0 && images.length > 0 && others.length === 0) {
    into.push({ path: folder, className, kind: 'rawframes' });
    return;
  }
  for (const entry of entries) {
    if (entry.kind === 'folder') await collect(entry.full, className, depth + 1, into, counters);
    else if (entry.kind === 'video') into.push({ path: entry.full, className, kind: 'video' });
    else if (entry.kind === 'image') into.push({ path: entry.full, className, kind: 'stray-image' });
    else if (entry.kind === 'unreadable') into.push({ path: entry.full, className, kind: 'unreadable' });
    else into.push({ path: entry.full, className, kind: 'other' });
  }
}

async function mapLimited<T, R>(items: T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, run));
  return results;
}

export interface ScanOptions {
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /** Folders left out (the output folder when it sits inside the root, so a rescan does not see a class). */
  exclude?: string[];
}

export async function scanDataset(root: string, options: ScanOptions = {}): Promise<ScanResult> {
  let rootInfo;
  try {
    rootInfo = await stat(root);
  } catch {
    throw new Error(`scan: root "${root}" does not exist`);
  }
  if (!rootInfo.isDirectory()) throw new Error(`scan: root "${root}" is not a folder`);
  const counters: Counters = { hidden: 0, visited: new Set() };
  const skipped: SkippedItem[] = [];
  const classes: string[] = [];
  const candidates: Candidate[] = [];
  const topNames = (await readdir(root)).sort();
  const excluded = new Set(await Promise.all((options.exclude ?? []).map((path) => realpath(path).catch(() => resolve(path)))));
  for (const name of topNames) {
    if (isHidden(name)) {
      counters.hidden++;
      continue;
    }
    const full = join(root, name);
    const info = await stat(full).catch(() => undefined);
    if (info?.isDirectory() && excluded.has(await realpath(full))) continue;
    if (info?.isDirectory()) {
      classes.push(name);
      await collect(full, name, 0, candidates, counters);
    } else {
      skipped.push({ path: name, reason: 'not inside a class folder (classes are the top-level folders)' });
    }
  }
  if (classes.length === 0)
    throw new Error(`scan: "${root}" has no class folders; expected ROOT/<class>/<video files or frame folders>`);
  const relativePath = (path: string) => toPosixPath(relative(root, path));
  let done = 0;
  const probed = await mapLimited(candidates, options.concurrency ?? 4, async (candidate): Promise<ScannedItem | SkippedItem> => {
    const path = relativePath(candidate.path);
    const label = classes.indexOf(candidate.className);
    try {
      if (candidate.kind === 'other') return { path, reason: `not a video file (extension "${extname(candidate.path)}")` };
      if (candidate.kind === 'unreadable') return { path, reason: 'cannot be read (a dangling link, or no permission)' };
      if (candidate.kind === 'stray-image')
        return {
          path,
          reason: 'an image outside a frame folder (frames go in CLASS/VIDEO_NAME/img_00001.jpg, a folder per video)',
        };
      if (candidate.kind === 'rawframes') {
        const files = await listFrameFiles(candidate.path);
        const first = await sharp(join(candidate.path, files[0])).metadata();
        const last = await sharp(join(candidate.path, files[files.length - 1])).metadata();
        if (!first.width || !first.height || first.width !== last.width || first.height !== last.height) {
          return {
            path,
            reason: `frame folder with unreadable or inconsistent frames (${first.width}x${first.height} vs ${last.width}x${last.height})`,
          };
        }
        return {
          path,
          label,
          className: candidate.className,
          kind: 'rawframes',
          codec: first.format ?? 'image',
          container: 'frames',
          width: first.width,
          height: first.height,
          totalFrames: files.length,
          fps: 0,
          durationSeconds: 0,
        };
      }
      const size = (await stat(candidate.path)).size;
      if (size === 0) return { path, reason: 'empty file (0 bytes)' };
      const probe = await probeVideo(candidate.path);
      if (probe.kind === 'error') return { path, reason: probe.reason };
      return {
        path,
        label,
        className: candidate.className,
        kind: 'video',
        codec: probe.codec,
        container: probe.container,
        width: probe.width,
        height: probe.height,
        totalFrames: probe.totalFrames,
        fps: probe.fps,
        durationSeconds: probe.durationSeconds,
      };
    } catch (error) {
      return { path, reason: `unreadable: ${(error as Error).message}` };
    } finally {
      options.onProgress?.(++done, candidates.length);
    }
  });
  let items = probed.filter((item): item is ScannedItem => 'label' in item);
  skipped.push(...probed.filter((item): item is SkippedItem => !('label' in item)));
  const videos = items.filter((item) => item.kind === 'video').length;
  const format: AnnotationFormat = videos >= items.length - videos ? 'video' : 'rawframes';
  const wanted = format === 'video' ? 'video' : 'rawframes';
  for (const item of items) {
    if (item.kind !== wanted)
      skipped.push({
        path: item.path,
        reason: `a ${item.kind === 'video' ? 'video file' : 'frame folder'} in a dataset of ${format === 'video' ? 'videos' : 'frame folders'}: one annotation file holds one kind`,
      });
  }
  items = items.filter((item) => item.kind === wanted);
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root, classes, format, items, skipped, hiddenIgnored: counters.hidden, tools: describeTools() };
}

export interface SplitOptions {
  val: number;
  test: number;
  seed: number;
}

export interface Split {
  train: ScannedItem[];
  val: ScannedItem[];
  test: ScannedItem[];
}

/** Stratified: every class is shuffled with its own seeded generator and cut by the fractions. */
export function splitDataset(items: ScannedItem[], classCount: number, options: SplitOptions): Split {
  if (!(options.val >= 0 && options.test >= 0 && options.val + options.test < 1)) {
    throw new Error(`split: expected val >= 0, test >= 0 and val + test < 1, received val ${options.val}, test ${options.test}`);
  }
  const split: Split = { train: [], val: [], test: [] };
  for (let label = 0; label < classCount; label++) {
    const members = items.filter((item) => item.label === label).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const random = new Random(mixSeed(options.seed, label, 0x5b1));
    for (let i = members.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [members[i], members[j]] = [members[j], members[i]];
    }
    let testCount = Math.round(members.length * options.test);
    let valCount = Math.round(members.length * options.val);
    // Keep at least one training sample per class whenever the class has any.
    while (members.length > 0 && testCount + valCount >= members.length) {
      if (valCount >= testCount && valCount > 0) valCount--;
      else testCount--;
    }
    split.test.push(...members.slice(0, testCount));
    split.val.push(...members.slice(testCount, testCount + valCount));
    split.train.push(...members.slice(testCount + valCount));
  }
  const byPath = (a: ScannedItem, b: ScannedItem) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  split.train.sort(byPath);
  split.val.sort(byPath);
  split.test.sort(byPath);
  return split;
}

function statistics(values: number[]): { min: number; max: number; mean: number; median: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    min: round(sorted[0]),
    max: round(sorted[sorted.length - 1]),
    mean: round(values.reduce((a, b) => a + b, 0) / values.length),
    median: round(median),
  };
}

function histogram(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

export interface ScanReport {
  root: string;
  tools: string;
  format: AnnotationFormat;
  classes: { index: number; name: string; total: number; train: number; val: number; test: number }[];
  splits: { train: number; val: number; test: number };
  split: SplitOptions;
  balance: { smallest: number; largest: number; ratio: number | null };
  skipped: SkippedItem[];
  hiddenIgnored: number;
  durationSeconds: ReturnType<typeof statistics>;
  fps: ReturnType<typeof statistics>;
  frames: ReturnType<typeof statistics>;
  resolutions: Record<string, number>;
  codecs: Record<string, number>;
  containers: Record<string, number>;
  warnings: string[];
  files: Record<string, string>;
  /** Every usable sample with its probe and split, for the dataset wizard. */
  items: (ScannedItem & { split: 'train' | 'val' | 'test' })[];
}

export function buildReport(scan: ScanResult, split: Split, options: SplitOptions, files: Record<string, string>): ScanReport {
  const count = (list: ScannedItem[], label: number) => list.filter((item) => item.label === label).length;
  const classes = scan.classes.map((name, index) => ({
    index,
    name,
    total: count(scan.items, index),
    train: count(split.train, index),
    val: count(split.val, index),
    test: count(split.test, index),
  }));
  const totals = classes.map((entry) => entry.total);
  const smallest = Math.min(...totals);
  const largest = Math.max(...totals);
  const warnings: string[] = [];
  for (const entry of classes) {
    if (entry.total === 0) warnings.push(`class "${entry.name}" (${entry.index}) has no usable samples`);
    else if (options.val > 0 && entry.val === 0)
      warnings.push(`class "${entry.name}" has ${entry.total} sample(s): none left for validation`);
  }
  if (smallest > 0 && largest / smallest >= 3)
    warnings.push(`classes are unbalanced: ${smallest} to ${largest} samples (ratio ${(largest / smallest).toFixed(2)})`);
  const spaced = scan.items.filter((item) => /\s/.test(item.path)).length;
  if (spaced > 0)
    warnings.push(
      `${spaced} path(s) contain whitespace: this workbench reads them, mmaction2's own loader splits lines on whitespace and does not`,
    );
  const timed = scan.items.filter((item) => item.kind === 'video');
  return {
    root: scan.root,
    tools: scan.tools,
    format: scan.format,
    classes,
    splits: { train: split.train.length, val: split.val.length, test: split.test.length },
    split: options,
    balance: { smallest, largest, ratio: smallest > 0 ? Math.round((largest / smallest) * 1000) / 1000 : null },
    skipped: scan.skipped,
    hiddenIgnored: scan.hiddenIgnored,
    durationSeconds: statistics(timed.map((item) => item.durationSeconds)),
    fps: statistics(timed.map((item) => item.fps)),
    frames: statistics(scan.items.map((item) => item.totalFrames)),
    resolutions: histogram(scan.items.map((item) => `${item.width}x${item.height}`)),
    codecs: histogram(scan.items.map((item) => item.codec)),
    containers: histogram(scan.items.map((item) => item.container)),
    warnings,
    files,
    items: [
      ...split.train.map((item) => ({ ...item, split: 'train' as const })),
      ...split.val.map((item) => ({ ...item, split: 'val' as const })),
      ...split.test.map((item) => ({ ...item, split: 'test' as const })),
    ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

function toEntries(items: ScannedItem[], format: AnnotationFormat): AnnotationEntry[] {
  return items.map((item) =>
    format === 'video'
      ? { path: item.path, labels: [item.label] }
      : { path: item.path, labels: [item.label], totalFrames: item.totalFrames },
  );
}

/** Writes train/val(/test) lists, classes.txt and report.json into outDir; returns the report. */
export async function writeScanOutputs(
  scan: ScanResult,
  split: Split,
  options: SplitOptions,
  outDir: string,
): Promise<ScanReport> {
  const files: Record<string, string> = {
    train: join(outDir, 'train.txt'),
    val: join(outDir, 'val.txt'),
    labelMap: join(outDir, 'classes.txt'),
    report: join(outDir, 'report.json'),
  };
  if (options.test > 0) files.test = join(outDir, 'test.txt');
  await writeAnnotationFile(files.train, toEntries(split.train, scan.format), scan.format);
  await writeAnnotationFile(files.val, toEntries(split.val, scan.format), scan.format);
  if (files.test) await writeAnnotationFile(files.test, toEntries(split.test, scan.format), scan.format);
  await writeLabelMap(files.labelMap, scan.classes);
  const report = buildReport(scan, split, options, files);
  await writeFileAtomic(files.report, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

/** Frame counts and sizes from a scan's report.json, keyed like the annotation paths (loader `videoInfo`). */
export async function videoInfoFromReport(reportPath: string): Promise<Record<string, KnownVideo>> {
  let report: { items?: Partial<ScannedItem>[] };
  try {
    report = JSON.parse(await readFile(reportPath, 'utf8'));
  } catch (error) {
    throw new Error(`${reportPath}: expected a scan report (report.json), ${(error as Error).message}`);
  }
  if (!Array.isArray(report.items))
    throw new Error(`${reportPath}: expected an "items" array (written by vswin data scan), received ${typeof report.items}`);
  const info: Record<string, KnownVideo> = {};
  for (const item of report.items) {
    if (item.kind === 'video' && typeof item.path === 'string' && Number(item.totalFrames) > 0) {
      info[item.path] = {
        totalFrames: Number(item.totalFrames),
        width: Number(item.width),
        height: Number(item.height),
        fps: Number(item.fps),
      };
    }
  }
  return info;
}
