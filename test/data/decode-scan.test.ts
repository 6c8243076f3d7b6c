import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAnnotationText } from '../../core/data/annotations.ts';
import { checkAnnotationFile } from '../../core/data/dataset.ts';
import {
  DecodeError,
  decodeVideoFrames,
  indexFrames,
  planSeek,
  probeVideo,
  readFrameFolder,
  resolveTools,
  runProcess,
} from '../../core/data/decode.ts';
import { encodeVideo } from '../../core/data/synth.ts';
import { scanDataset, splitDataset, videoInfoFromReport, writeScanOutputs, type ScannedItem } from '../../core/data/scan.ts';
import { brokenFiles, frameLevel, rampFrameFolder, rampLevel, rampVideo, temporaryFolder } from './fixtures.ts';

let folder: { path: string; remove: () => Promise<void> };
let videos: Record<'h264' | 'vp8' | 'mjpeg' | 'mpeg4', string>;
let broken: Record<string, string>;

beforeAll(async () => {
  folder = await temporaryFolder('decode');
  const media = join(folder.path, 'media');
  videos = {
    h264: join(media, 'ramp h264 é.mp4'),
    vp8: join(media, 'ramp.webm'),
    mjpeg: join(media, 'ramp.avi'),
    mpeg4: join(media, 'ramp-mpeg4.mkv'),
  };
  await Promise.all([
    rampVideo(videos.h264, 20, 'h264'),
    rampVideo(videos.vp8, 20, 'vp8'),
    rampVideo(videos.mjpeg, 20, 'mjpeg'),
    rampVideo(videos.mpeg4, 20, 'mpeg4'),
  ]);
  broken = await brokenFiles(join(folder.path, 'broken'), videos.h264);
});

afterAll(async () => {
  await folder.remove();
});

describe('ffmpeg tools', () => {
  it('uses the bundled build by default and honours VSWIN_FFMPEG', () => {
    const tools = resolveTools();
    expect(tools.ffmpeg.source).toBe('bundled');
    expect(tools.ffprobe.source).toBe('bundled');
    const saved = process.env.VSWIN_FFMPEG;
    try {
      process.env.VSWIN_FFMPEG = tools.ffmpeg.path;
      expect(resolveTools().ffmpeg).toEqual({ path: tools.ffmpeg.path, source: 'environment' });
      process.env.VSWIN_FFMPEG = '/nowhere/ffmpeg';
      expect(() => resolveTools()).toThrow(/VSWIN_FFMPEG: "\/nowhere\/ffmpeg" is neither a file nor a command on PATH/);
    } finally {
      if (saved === undefined) delete process.env.VSWIN_FFMPEG;
      else process.env.VSWIN_FFMPEG = saved;
      resolveTools();
    }
  });
});

describe('probe and decode', () => {
  it.each(['h264', 'vp8', 'mjpeg', 'mpeg4'] as const)('probes and decodes exactly the requested frames of %s', async (codec) => {
    const info = await probeVideo(videos[codec]);
    expect(info).toMatchObject({ kind: 'video', width: 32, height: 32, totalFrames: 20, fps: 25 });
    if (info.kind !== 'video') return;
    const indices = [7, 3, 3, 19, 0];
    const clip = await decodeVideoFrames(videos[codec], indices, info);
    expect(clip.frames).toHaveLength(5);
    const levels = clip.frames.map(frameLevel);
    indices.forEach((index, position) => expect(Math.abs(levels[position] - rampLevel(index))).toBeLessThanOrEqual(2));
  });

  it('reports broken files with a reason instead of failing', async () => {
    expect(await probeVideo(broken.empty)).toMatchObject({ kind: 'error', reason: expect.stringMatching(/unreadable/) });
    expect(await probeVideo(broken.text)).toMatchObject({
      kind: 'error',
      reason: expect.stringMatching(/unreadable: .*(moov atom not found|Invalid data)/),
    });
    const truncated = await probeVideo(broken.truncated);
    expect(truncated.kind).toBe('error');
    if (truncated.kind === 'error') expect(truncated.reason).toMatch(/truncated|corrupt/);
  });

  it.each(['h264', 'vp8', 'mjpeg'] as const)(
    'seeks to a keyframe near the first wanted frame of %s and decodes the same frames',
    async (codec) => {
      // 150 frames, a keyframe every 10: frame t shows red 20 + 6 (t % 30) and green 20 + 6 floor(t / 30).
      const path = join(folder.path, `long ${codec}.${codec === 'h264' ? 'mp4' : codec === 'vp8' ? 'webm' : 'avi'}`);
      const frames = Array.from({ length: 150 }, (_, t) => {
        const frame = new Uint8Array(32 * 32 * 3);
        for (let p = 0; p < 32 * 32; p++) frame.set([20 + 6 * (t % 30), 20 + 6 * Math.floor(t / 30), 128], p * 3);
        return frame;
      });
      await encodeVideo(frames, 32, 32, path, { codec, keyframeInterval: 10 });
      const index = await indexFrames(path);
      expect(index?.times.length).toBe(150);
      // x264 may place keyframes a frame early; every 10 frames at most in all three codecs.
      expect(index?.keyframes[0]).toBe(0);
      expect(Math.max(...index!.keyframes.slice(1).map((frame, k) => frame - index!.keyframes[k]))).toBeLessThanOrEqual(10);
      // 25 fps: frame 61 starts at 2.44 s; the seek goes midway to frame 60, and 61 becomes frame 0.
      expect(planSeek(index!, 61)).toEqual({ time: expect.closeTo(2.42, 6), base: 61 });
      expect(planSeek(index!, 30)).toBeUndefined();
      const wanted = [93, 61, 61, 149, 100];
      const sought = await decodeVideoFrames(path, wanted, { width: 32, height: 32 }, 60_000, index);
      const plain = await decodeVideoFrames(path, wanted, { width: 32, height: 32 });
      // Decoding from a later keyframe gives the same bytes as decoding from the start.
      expect(sought.frames).toEqual(plain.frames);
      // First wanted frame on, just after and just before keyframes, and the very last frame.
      for (const start of [
        ...index!.keyframes
          .filter((frame) => frame >= 50)
          .slice(0, 2)
          .flatMap((frame) => [frame - 1, frame, frame + 1]),
        149,
      ]) {
        const set = [start, Math.min(149, start + 7)];
        expect((await decodeVideoFrames(path, set, { width: 32, height: 32 }, 60_000, index)).frames).toEqual(
          (await decodeVideoFrames(path, set, { width: 32, height: 32 })).frames,
        );
      }
      const channel = (frame: Uint8Array, c: number) =>
        Math.round(frame.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (32 * 32));
      sought.frames.forEach((frame, k) => {
        expect(Math.abs(channel(frame, 0) - (20 + 6 * (wanted[k] % 30)))).toBeLessThanOrEqual(3);
        expect(Math.abs(channel(frame, 1) - (20 + 6 * Math.floor(wanted[k] / 30)))).toBeLessThanOrEqual(3);
      });
    },
  );

  it('a frame past the end is a DecodeError naming what was missing', async () => {
    await expect(decodeVideoFrames(videos.h264, [2, 25], { width: 32, height: 32 })).rejects.toThrow(DecodeError);
    await expect(decodeVideoFrames(videos.h264, [2, 25], { width: 32, height: 32 })).rejects.toThrow(
      /decoded 1 of 2 requested frames \(last wanted index 25\)/,
    );
  });

  it('reads rawframe folders through sharp with the start index', async () => {
    const frames = join(folder.path, 'frames', 'clip one');
    await rampFrameFolder(frames, 6);
    const clip = await readFrameFolder(frames, [1, 6, 3], 1);
    expect(clip).toMatchObject({ width: 24, height: 24 });
    expect(clip.frames.map(frameLevel)).toEqual(
      [rampLevel(0), rampLevel(5), rampLevel(2)].map((level) => expect.closeTo(level, 0)),
    );
    await expect(readFrameFolder(frames, [7], 1)).rejects.toThrow(/frame 7 is outside the folder \(6 frames, start index 1\)/);
  });
});

describe('scan, split and check', () => {
  let root: string;
  beforeAll(async () => {
    root = join(folder.path, 'dataset root');
    const good = await readFile(videos.h264);
    const put = async (path: string, data: Uint8Array | string) => {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), data);
    };
    for (let k = 0; k < 5; k++) await put(`jumping jacks/clip ${k}.mp4`, good);
    await put('jumping jacks/deeper/nested folder/späť.mp4', good);
    await put('ünïcödé/a.webm', await readFile(videos.vp8));
    await put('ünïcödé/b.avi', await readFile(videos.mjpeg));
    await put('ünïcödé/c.mkv', await readFile(videos.mpeg4));
    await put('ünïcödé/broken/truncated.mp4', await readFile(broken.truncated));
    await put('ünïcödé/broken/empty.mp4', new Uint8Array(0));
    await put('ünïcödé/broken/fake.mp4', 'not a video');
    await put('ünïcödé/notes.txt', 'notes');
    await put('ünïcödé/.DS_Store', 'x');
    await put('.hidden class/x.mp4', good);
    await put('loose.mp4', good);
    await put(
      'ünïcödé/poster.jpg',
      await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
        .jpeg()
        .toBuffer(),
    );
    await symlink(join(root, 'ünïcödé'), join(root, 'ünïcödé', 'loop'));
    await symlink(join(root, 'nowhere.mp4'), join(root, 'ünïcödé', 'dangling.mp4'));
    const audio = join(folder.path, 'audio only.mp4');
    const encoded = await runProcess(resolveTools().ffmpeg.path, [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'sine=duration=0.5',
      '-c:a',
      'aac',
      audio,
    ]);
    expect(encoded.code).toBe(0);
    await put('ünïcödé/audio only.mp4', await readFile(audio));
  });

  it('finds classes, nested files and every faulty file with its reason', async () => {
    const scan = await scanDataset(root);
    expect(scan.classes).toEqual(['jumping jacks', 'ünïcödé']);
    expect(scan.format).toBe('video');
    expect(scan.items.map((item) => [item.path, item.label])).toEqual([
      ['jumping jacks/clip 0.mp4', 0],
      ['jumping jacks/clip 1.mp4', 0],
      ['jumping jacks/clip 2.mp4', 0],
      ['jumping jacks/clip 3.mp4', 0],
      ['jumping jacks/clip 4.mp4', 0],
      ['jumping jacks/deeper/nested folder/späť.mp4', 0],
      ['ünïcödé/a.webm', 1],
      ['ünïcödé/b.avi', 1],
      ['ünïcödé/c.mkv', 1],
    ]);
    expect(scan.items.map((item) => item.codec).sort()).toEqual([
      'h264',
      'h264',
      'h264',
      'h264',
      'h264',
      'h264',
      'mjpeg',
      'mpeg4',
      'vp8',
    ]);
    const reasons = Object.fromEntries(scan.skipped.map((item) => [item.path, item.reason]));
    expect(Object.keys(reasons).sort()).toEqual([
      'loose.mp4',
      'ünïcödé/audio only.mp4',
      'ünïcödé/broken/empty.mp4',
      'ünïcödé/broken/fake.mp4',
      'ünïcödé/broken/truncated.mp4',
      'ünïcödé/dangling.mp4',
      'ünïcödé/notes.txt',
      'ünïcödé/poster.jpg',
    ]);
    expect(reasons['ünïcödé/audio only.mp4']).toBe('no video stream');
    expect(reasons['ünïcödé/dangling.mp4']).toMatch(/dangling link/);
    expect(reasons['ünïcödé/poster.jpg']).toMatch(/an image outside a frame folder/);
    expect(reasons['ünïcödé/broken/empty.mp4']).toMatch(/empty file \(0 bytes\)/);
    expect(reasons['ünïcödé/broken/fake.mp4']).toMatch(/unreadable/);
    expect(reasons['ünïcödé/broken/truncated.mp4']).toMatch(/truncated|corrupt/);
    expect(reasons['ünïcödé/notes.txt']).toMatch(/not a video file/);
    expect(reasons['loose.mp4']).toMatch(/not inside a class folder/);
    expect(scan.hiddenIgnored).toBe(2);
  });

  it('splits stratified and reproducibly, writes lists that check clean', async () => {
    const scan = await scanDataset(root);
    const options = { val: 0.34, test: 0, seed: 3 };
    const split = splitDataset(scan.items, scan.classes.length, options);
    expect(splitDataset(scan.items, scan.classes.length, options)).toEqual(split);
    const perClass = (list: ScannedItem[]) => [0, 1].map((label) => list.filter((item) => item.label === label).length);
    // round(6 * 0.34) = 2 and round(3 * 0.34) = 1 per class
    expect(perClass(split.val)).toEqual([2, 1]);
    expect(perClass(split.train)).toEqual([4, 2]);
    const out = join(folder.path, 'annotations');
    const report = await writeScanOutputs(scan, split, options, out);
    expect(report.classes.map((entry) => [entry.name, entry.total, entry.train, entry.val])).toEqual([
      ['jumping jacks', 6, 4, 2],
      ['ünïcödé', 3, 2, 1],
    ]);
    expect(report.skipped).toHaveLength(8);
    expect(report.fps).toEqual({ min: 25, max: 25, mean: 25, median: 25 });
    expect(report.frames).toEqual({ min: 20, max: 20, mean: 20, median: 20 });
    const saved = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(saved.splits).toEqual({ train: 6, val: 3, test: 0 });
    expect(saved.items).toHaveLength(9);
    const known = await videoInfoFromReport(join(out, 'report.json'));
    expect(known['ünïcödé/b.avi']).toEqual({ totalFrames: 20, width: 32, height: 32, fps: 25 });
    await expect(videoInfoFromReport(join(out, 'classes.txt'))).rejects.toThrow(/classes.txt: expected a scan report/);
    expect(saved.items.find((item: { path: string }) => item.path === 'ünïcödé/a.webm')).toMatchObject({
      codec: 'vp8',
      width: 32,
      height: 32,
      totalFrames: 20,
      fps: 25,
      label: 1,
    });
    expect(await readFile(join(out, 'classes.txt'), 'utf8')).toBe('jumping jacks\nünïcödé\n');
    const trainText = await readFile(join(out, 'train.txt'), 'utf8');
    expect(parseAnnotationText(trainText, { format: 'video' }).entries).toHaveLength(6);
    const check = await checkAnnotationFile(join(out, 'train.txt'), { root, labelMap: join(out, 'classes.txt') });
    expect(check.errors).toBe(0);
    expect(check.problems.every((problem) => problem.kind === 'whitespace-in-path')).toBe(true);
  });

  it('rejects fractions that leave no training data', () => {
    expect(() => splitDataset([], 1, { val: 0.6, test: 0.5, seed: 0 })).toThrow(/val \+ test < 1, received val 0.6, test 0.5/);
  });

  it('scans frame folders into a rawframe list and checks frame counts', async () => {
    const frameRoot = join(folder.path, 'frames root');
    await rampFrameFolder(join(frameRoot, 'wave', 'v 1'), 5);
    await rampFrameFolder(join(frameRoot, 'wave', 'v2'), 4);
    await rampFrameFolder(join(frameRoot, 'clap', 'v3'), 3);
    const scan = await scanDataset(frameRoot);
    expect(scan.format).toBe('rawframes');
    expect(scan.items.map((item) => [item.path, item.totalFrames, item.label])).toEqual([
      ['clap/v3', 3, 0],
      ['wave/v 1', 5, 1],
      ['wave/v2', 4, 1],
    ]);
    const list = join(frameRoot, '..', 'frames.txt');
    await writeFile(list, 'wave/v 1 5 1\nwave/v2 7 1\nclap/v3 2 2 0\nwave/v2 4 1\n');
    const report = await checkAnnotationFile(list, { root: frameRoot });
    expect(report.format).toBe('rawframes');
    expect(
      report.problems.filter((problem) => problem.severity === 'error').map((problem) => [problem.line, problem.kind]),
    ).toEqual([
      [2, 'frame-count'],
      // three trailing numbers without an offset column: the path becomes "clap/v3 2", which is missing
      [3, 'missing-file'],
      [4, 'duplicate-entry'],
    ]);
    const withOffset = join(frameRoot, '..', 'offset.txt');
    await writeFile(withOffset, 'wave/v 1 2 3 1\nwave/v2 3 4 1\n');
    const offsetReport = await checkAnnotationFile(withOffset, { root: frameRoot, format: 'rawframes', withOffset: true });
    // frames 2..4 fit in 5; frames 3..6 do not fit in 4
    expect(
      offsetReport.problems.filter((problem) => problem.severity === 'error').map((problem) => [problem.line, problem.message]),
    ).toEqual([[2, 'frames 3..6 requested, the folder holds 4']]);
  });

  it('a missing root or one without class folders is a clear error', async () => {
    await expect(scanDataset(join(folder.path, 'nope'))).rejects.toThrow(/root ".*nope" does not exist/);
    const empty = join(folder.path, 'flat');
    await mkdir(empty, { recursive: true });
    await rename(broken.text, join(empty, 'x.mp4'));
    await expect(scanDataset(empty)).rejects.toThrow(/has no class folders/);
  });
});
