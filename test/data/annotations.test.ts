import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createMlToEntries,
  entriesToCreateMl,
  formatAnnotationLines,
  formatCreateMlCsv,
  formatCreateMlJson,
  formatLabelMap,
  parseAnnotationText,
  parseCreateMlCsv,
  parseCreateMlJson,
  parseLabelMap,
  readAnnotationFile,
  writeAnnotationFile,
  type AnnotationEntry,
} from '../../core/data/annotations.ts';

const temporary: string[] = [];
afterAll(async () => {
  for (const folder of temporary) await rm(folder, { recursive: true, force: true });
});

describe('mmaction2 video lists', () => {
  it('round-trips paths with spaces and non-ASCII characters through a file', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'vswin-ann-'));
    temporary.push(folder);
    const entries: AnnotationEntry[] = [
      { path: 'jumping jacks/clip 01.mp4', labels: [3] },
      { path: 'Straße/vidéo_ü.webm', labels: [0] },
      { path: '跳舞/片段.avi', labels: [12] },
    ];
    const file = join(folder, 'train list.txt');
    await writeAnnotationFile(file, entries, 'video');
    expect(await readFile(file, 'utf8')).toBe('jumping jacks/clip 01.mp4 3\nStraße/vidéo_ü.webm 0\n跳舞/片段.avi 12\n');
    const parsed = await readAnnotationFile(file, { format: 'video' });
    expect(parsed.problems).toEqual([]);
    expect(parsed.entries.map(({ path, labels }) => ({ path, labels }))).toEqual(entries);
    expect(parsed.entries.map((entry) => entry.line)).toEqual([1, 2, 3]);
  });

  it('keeps number-like path tokens in single-label mode and reads multi-label lines', () => {
    const single = parseAnnotationText('take 2 7\n', { format: 'video' });
    expect(single.entries[0]).toMatchObject({ path: 'take 2', labels: [7] });
    const multi = parseAnnotationText('a/b.mp4 1 4 9\nc d.mp4 0\n', { format: 'video', multiLabel: true });
    expect(multi.entries.map((entry) => entry.labels)).toEqual([[1, 4, 9], [0]]);
    expect(multi.entries[1].path).toBe('c d.mp4');
    expect(formatAnnotationLines(multi.entries, 'video')).toBe('a/b.mp4 1 4 9\nc d.mp4 0\n');
  });

  it('reports malformed lines, blank lines and negative labels with their line numbers', () => {
    const text = 'good.mp4 1\nno-label.mp4\n\nneg.mp4 -2\nx.mp4 abc\n';
    const { entries, problems } = parseAnnotationText(text, { format: 'video', file: 'list.txt' });
    expect(entries.map((entry) => entry.path)).toEqual(['good.mp4']);
    expect(problems.map((problem) => [problem.line, problem.kind, problem.severity])).toEqual([
      [2, 'malformed-line', 'error'],
      [3, 'blank-line', 'warning'],
      [4, 'label-out-of-range', 'error'],
      [5, 'malformed-line', 'error'],
    ]);
    expect(problems[0].message).toMatch(/expected "path label", received "no-label.mp4"/);
    expect(problems[0].file).toBe('list.txt');
  });

  it('handles CRLF and a byte-order mark', () => {
    const { entries, problems } = parseAnnotationText('\uFEFFa.mp4 1\r\nb.mp4 2\r\n', { format: 'video' });
    expect(problems).toEqual([]);
    expect(entries.map((entry) => [entry.path, entry.labels[0]])).toEqual([
      ['a.mp4', 1],
      ['b.mp4', 2],
    ]);
  });
});

describe('mmaction2 rawframe lists', () => {
  it('reads and writes "frame_dir total_frames label" and the offset form', () => {
    const plain = parseAnnotationText('frames/run 01 120 4\n', { format: 'rawframes' });
    expect(plain.entries[0]).toMatchObject({ path: 'frames/run 01', totalFrames: 120, labels: [4] });
    expect(formatAnnotationLines(plain.entries, 'rawframes')).toBe('frames/run 01 120 4\n');
    const offset = parseAnnotationText('long video 31 64 2\n', { format: 'rawframes', withOffset: true });
    expect(offset.entries[0]).toMatchObject({ path: 'long video', startIndex: 31, totalFrames: 64, labels: [2] });
    expect(formatAnnotationLines(offset.entries, 'rawframes', { withOffset: true })).toBe('long video 31 64 2\n');
  });

  it('rejects zero frame counts and too few fields', () => {
    const { problems } = parseAnnotationText('dir 0 1\ndir 5\n', { format: 'rawframes' });
    expect(problems.map((problem) => [problem.line, problem.kind])).toEqual([
      [1, 'malformed-line'],
      [2, 'malformed-line'],
    ]);
    expect(problems[1].message).toMatch(/frame_dir total_frames label/);
  });
});

describe('label maps', () => {
  it('round-trips and reports blank and duplicate class names', () => {
    const classes = ['abseiling', 'air drumming', 'café'];
    expect(parseLabelMap(formatLabelMap(classes)).classes).toEqual(classes);
    const { problems } = parseLabelMap('a\n\nb\na\n', 'map.txt');
    expect(problems.map((problem) => [problem.line, problem.kind])).toEqual([
      [2, 'blank-line'],
      [4, 'duplicate-class'],
    ]);
    expect(problems[1].message).toMatch(/"a" already on line 1/);
    expect(() => formatLabelMap(['ok', ''])).toThrow(/class 1: expected a non-empty single-line name/);
  });
});

describe('Create ML CSV and JSON', () => {
  it('parses quoted fields, aliases and trims; converts to entries and back', () => {
    const csv = 'Video,Label,Start,End\n"clips/a, b.mp4",waving,0.5,2\nclips/c.mp4,"say ""hi""",,\nclips/d.mp4,waving,1,3\n';
    const { records, problems } = parseCreateMlCsv(csv, 'in.csv');
    expect(problems).toEqual([]);
    expect(records).toEqual([
      { video: 'clips/a, b.mp4', label: 'waving', start: 0.5, end: 2, line: 2 },
      { video: 'clips/c.mp4', label: 'say "hi"', line: 3 },
      { video: 'clips/d.mp4', label: 'waving', start: 1, end: 3, line: 4 },
    ]);
    const converted = createMlToEntries(records);
    expect(converted.classes).toEqual(['say "hi"', 'waving']);
    expect(converted.entries.map((entry) => entry.labels[0])).toEqual([1, 0, 1]);
    const back = entriesToCreateMl(converted.entries, converted.classes);
    const again = parseCreateMlCsv(formatCreateMlCsv(back));
    expect(again.records.map(({ video, label, start, end }) => ({ video, label, start, end }))).toEqual(
      records.map(({ video, label, start, end }) => ({ video, label, start, end })),
    );
    const json = parseCreateMlJson(formatCreateMlJson(back));
    expect(json.records.map((record) => record.video)).toEqual(records.map((record) => record.video));
    // mmaction2 lists cannot carry trims: say so instead of dropping them.
    expect(() => formatAnnotationLines(converted.entries, 'video')).toThrow(/cannot hold start\/end times/);
  });

  it('reports bad rows with their line numbers and unknown classes', () => {
    const { problems } = parseCreateMlCsv('video,label,start,end\na.mp4,x,abc,1\nb.mp4,x,2,1\nc.mp4\n', 'in.csv');
    expect(problems.map((problem) => problem.line)).toEqual([2, 3, 4]);
    expect(problems[0].message).toMatch(/start: expected a time in seconds >= 0, received "abc"/);
    expect(problems[1].message).toMatch(/end \(1\) must be after start \(2\)/);
    expect(parseCreateMlCsv('name,kind\n').problems[0].message).toMatch(/expected columns "video,label\[,start,end\]"/);
    const unknown = createMlToEntries([{ video: 'a.mp4', label: 'other', line: 5 }], ['one', 'two'], 'in.csv');
    expect(unknown.problems[0]).toMatchObject({ line: 5, kind: 'unknown-class' });
    expect(parseCreateMlJson('{"video": 1}').problems[0].message).toMatch(/expected a JSON array/);
    expect(parseCreateMlJson('[{"video": "a.mp4"}]').problems[0].message).toMatch(
      /item 0: expected \{"video": string, "label": string\}/,
    );
  });
});
