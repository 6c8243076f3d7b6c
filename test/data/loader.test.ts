import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAnnotationFile } from '../../core/data/dataset.ts';
import { countDecodedFrames } from '../../core/data/decode.ts';
import { encodeVideo } from '../../core/data/synth.ts';
import { createLoader, epochOrder, type Batch } from '../../core/data/loader.ts';
import { smallClip } from '../../core/data/pipeline.ts';
import { sampleFrames } from '../../core/data/sampling.ts';
import { imagenetMean, imagenetStd } from '../../core/data/transforms.ts';
import { brokenFiles, rampFrameFolder, rampLevel, rampVideo, temporaryFolder } from './fixtures.ts';

let folder: { path: string; remove: () => Promise<void> };
let root: string;
let annFile: string;
const lengths = [12, 16, 20, 24, 28, 14, 18, 22];

beforeAll(async () => {
  folder = await temporaryFolder('loader');
  root = join(folder.path, 'videos');
  await Promise.all(
    lengths.map((frames, k) => rampVideo(join(root, k % 2 ? 'b' : 'a', `v ${k}.mp4`), frames, k % 3 === 0 ? 'mjpeg' : 'h264')),
  );
  await brokenFiles(join(root, 'broken'), join(root, 'a', 'v 0.mp4'));
  const lines = lengths.map((_, k) => `${k % 2 ? 'b' : 'a'}/v ${k}.mp4 ${k % 2}`);
  // Broken samples spread through the list: truncated, missing, empty, text.
  lines.splice(2, 0, 'broken/truncated.mp4 0');
  lines.splice(5, 0, 'a/missing.mp4 1');
  lines.splice(7, 0, 'broken/empty.mp4 0', 'broken/text renamed.mp4 1');
  annFile = join(folder.path, 'list.txt');
  await writeFile(annFile, `${lines.join('\n')}\n`);
});

afterAll(async () => {
  await folder.remove();
});

const valPipeline = smallClip('val', { clipLen: 4, frameInterval: 2, shortSide: 16, cropSize: 16 });
const trainPipeline = smallClip('train', { clipLen: 4, frameInterval: 2, shortSide: 16, cropSize: 12 });

async function collect(iterable: AsyncIterable<Batch>): Promise<Batch[]> {
  const batches: Batch[] = [];
  for await (const batch of iterable) batches.push(batch);
  return batches;
}

/** Gray level of view 0, channel 0, frame t of sample b (top-left pixel), de-normalised. */
function level(batch: Batch, sample: number, t: number): number {
  const [, channels, frames, height, width] = batch.shape;
  const value = batch.input[((sample * batch.views * channels + 0) * frames + t) * height * width];
  return Math.round(value * imagenetStd[0] + imagenetMean[0]);
}

describe('loader', () => {
  it('decodes the frames SampleFrames picks, in order, and skips broken samples with reasons', async () => {
    const loader = await createLoader({
      annFile,
      root,
      pipeline: valPipeline,
      batchSize: 3,
      shuffle: false,
      seed: 0,
      workers: 2,
    });
    expect(loader.size).toBe(12);
    const batches = await collect(loader.epoch(0));
    expect(batches.map((batch) => batch.shape)).toEqual([
      [3, 3, 4, 16, 16],
      [3, 3, 4, 16, 16],
      [2, 3, 4, 16, 16],
    ]);
    expect(loader.stats.samples).toBe(8);
    expect(loader.stats.skipped).toBe(4);
    expect(loader.stats.skips.map((skip) => [skip.path, skip.reason.split(':')[0]])).toEqual([
      // The loader reads only the header; the short decode and a frame count reveal the truncation.
      ['broken/truncated.mp4', 'truncated or corrupt'],
      ['a/missing.mp4', 'ENOENT'],
      ['broken/empty.mp4', 'empty file (0 bytes)'],
      ['broken/text renamed.mp4', 'unreadable'],
    ]);
    const samples = batches.flatMap((batch) => batch.indices.map((index, position) => ({ batch, index, position })));
    expect(samples.map((sample) => sample.batch.labels[sample.position])).toEqual(lengths.map((_, k) => k % 2));
    samples.forEach(({ batch, position }, k) => {
      const expected = sampleFrames(lengths[k], { clipLen: 4, frameInterval: 2, testMode: true });
      const levels = [0, 1, 2, 3].map((t) => level(batch, position, t));
      levels.forEach((value, t) => expect(Math.abs(value - rampLevel(expected[t]))).toBeLessThanOrEqual(2));
    });
  });

  it('gives the same batches for any number of workers, and repeats an epoch exactly', async () => {
    const make = (workers: number) =>
      createLoader({ annFile, root, pipeline: trainPipeline, batchSize: 4, shuffle: true, seed: 7, workers });
    const one = await make(1);
    const three = await make(3);
    const a = await collect(one.epoch(2));
    const b = await collect(three.epoch(2));
    const again = await collect(one.epoch(2));
    expect(b.map((batch) => batch.indices)).toEqual(a.map((batch) => batch.indices));
    b.forEach((batch, k) => expect(batch.input).toEqual(a[k].input));
    again.forEach((batch, k) => expect(batch.input).toEqual(a[k].input));
    const other = await collect(one.epoch(3));
    expect(other.map((batch) => batch.indices)).not.toEqual(a.map((batch) => batch.indices));
    expect(one.stats.skipped).toBe(12);
    // Transforms in worker threads continue each sample's generator: identical output.
    const threaded = await createLoader({
      annFile,
      root,
      pipeline: trainPipeline,
      batchSize: 4,
      shuffle: true,
      seed: 7,
      workers: 2,
      transformThreads: 2,
    });
    try {
      const c = await collect(threaded.epoch(2));
      expect(c.map((batch) => batch.indices)).toEqual(a.map((batch) => batch.indices));
      c.forEach((batch, k) => expect(batch.input).toEqual(a[k].input));
    } finally {
      await threaded.close();
    }
  });

  it('keeps at most batchSize * (prefetch + 1) samples in flight while the consumer is slow', async () => {
    const loader = await createLoader({
      annFile,
      root,
      pipeline: valPipeline,
      batchSize: 2,
      shuffle: false,
      seed: 0,
      workers: 3,
      prefetchBatches: 1,
    });
    for await (const _batch of loader.epoch(0)) await new Promise((resolve) => setTimeout(resolve, 30));
    expect(loader.stats.peakInFlight).toBe(4);
    expect(loader.stats.samples).toBe(8);
  });

  it('shuffles a permutation per (seed, epoch) and honours dropLast', async () => {
    const order = epochOrder(50, true, 1, 4);
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, k) => k));
    expect(epochOrder(50, true, 1, 4)).toEqual(order);
    expect(epochOrder(50, true, 1, 5)).not.toEqual(order);
    expect(epochOrder(5, false, 1, 4)).toEqual([0, 1, 2, 3, 4]);
    const loader = await createLoader({
      annFile,
      root,
      pipeline: valPipeline,
      batchSize: 3,
      shuffle: false,
      seed: 0,
      workers: 2,
      dropLast: true,
    });
    const batches = await collect(loader.epoch(0));
    expect(batches.map((batch) => batch.indices.length)).toEqual([3, 3]);
  });

  it('reads frame folders and trimmed entries', async () => {
    const frameRoot = join(folder.path, 'frames');
    await rampFrameFolder(join(frameRoot, 'x', 'clip'), 9);
    const loader = await createLoader({
      samples: [{ path: 'x/clip', labels: [1], totalFrames: 9 }],
      format: 'rawframes',
      root: frameRoot,
      pipeline: valPipeline,
      batchSize: 1,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    const [batch] = await collect(loader.epoch(0));
    // n = 9, span 8: avg = 2, offset int(1) = 1 -> 1, 3, 5, 7 -> files img_00002, 4, 6, 8 (start index 1)
    expect([0, 1, 2, 3].map((t) => level(batch, 0, t))).toEqual([1, 3, 5, 7].map(rampLevel));
    // A clip cut from the folder: frames 3..7 ("x/clip 3 5 1"); n = 5, span 4: avg 2, offset int(1) = 1
    // -> 1, 2, 3, 4 + start 3 = frames 4..7 = files img_00004..img_00007 = ramp steps 3..6
    const cut = await createLoader({
      samples: [{ path: 'x/clip', labels: [1], startIndex: 3, totalFrames: 5 }],
      format: 'rawframes',
      root: frameRoot,
      pipeline: smallClip('val', { clipLen: 4, frameInterval: 1, shortSide: 16, cropSize: 16 }),
      batchSize: 1,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    const [cutBatch] = await collect(cut.epoch(0));
    expect([0, 1, 2, 3].map((t) => level(cutBatch, 0, t))).toEqual([3, 4, 5, 6].map(rampLevel));
    // Trim 0.4 s .. 0.8 s of a 25 fps video: frames 10..19 (10 frames); span 8: avg 3, offset int(1.5) = 1
    const trimmed = await createLoader({
      samples: [{ path: 'b/v 7.mp4', labels: [1], startTime: 0.4, endTime: 0.8 }],
      root,
      pipeline: valPipeline,
      batchSize: 1,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    const [clip] = await collect(trimmed.epoch(0));
    [11, 13, 15, 17].forEach((frame, t) => expect(Math.abs(level(clip, 0, t) - rampLevel(frame))).toBeLessThanOrEqual(2));
  });

  it('recovers from a header that declares a frame more than decodes, and skips worse damage', async () => {
    const bytes = await readFile(join(root, 'a', 'v 2.mp4'));
    await writeFile(join(root, 'cut tail.mp4'), bytes.subarray(0, bytes.length - 20));
    expect(await countDecodedFrames(join(root, 'cut tail.mp4'))).toBe(19);
    // 20 frames, clip 20 at interval 1 in test mode: avg = 1, offset int(0.5) = 0 -> 0..19; frame 19
    // does not decode, so the loader counts 19 frames and samples again: 0..18 then 19 % 19 = 0.
    const spec = smallClip('val', { clipLen: 20, frameInterval: 1, shortSide: 16, cropSize: 16 });
    const loader = await createLoader({
      samples: [
        { path: 'cut tail.mp4', labels: [0] },
        { path: 'broken/truncated.mp4', labels: [1] },
      ],
      root,
      pipeline: spec,
      batchSize: 2,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    const [batch] = await collect(loader.epoch(0));
    expect(batch.indices).toEqual([0]);
    expect(Math.abs(level(batch, 0, 18) - rampLevel(18))).toBeLessThanOrEqual(2);
    expect(Math.abs(level(batch, 0, 19) - rampLevel(0))).toBeLessThanOrEqual(2);
    expect(loader.stats.skips.map((skip) => skip.reason)).toEqual([
      expect.stringMatching(/^truncated or corrupt: the header declares 12 frames, \d+ decode$/),
    ]);
  });

  it('reads Create ML CSV files with trims, and checks them', async () => {
    const csv = join(folder.path, 'create ml.csv');
    // b/v 7.mp4 has 22 frames at 25 fps: 0.4..0.8 s is frames 10..19 (see the trim test above)
    await writeFile(csv, 'video,label,start,end\n"b/v 7.mp4",wave,0.4,0.8\na/v 0.mp4,clap,,\n');
    const loader = await createLoader({
      annFile: csv,
      root,
      pipeline: valPipeline,
      batchSize: 2,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    const [batch] = await collect(loader.epoch(0));
    // sorted class names: clap = 0, wave = 1
    expect(Array.from(batch.labels)).toEqual([1, 0]);
    [11, 13, 15, 17].forEach((frame, t) => expect(Math.abs(level(batch, 0, t) - rampLevel(frame))).toBeLessThanOrEqual(2));
    const map = join(folder.path, 'map.txt');
    await writeFile(map, 'wave\n');
    await writeFile(csv, 'video,label,start,end\nb/v 7.mp4,wave,5,6\na/v 0.mp4,clap,,\n');
    const report = await checkAnnotationFile(csv, { root, labelMap: map, probe: true });
    expect(report.problems.map((problem) => [problem.line, problem.kind])).toEqual([
      [2, 'malformed-line'],
      [3, 'unknown-class'],
    ]);
    expect(report.problems[0].message).toMatch(/trim 5..6 s lies outside the video \(0.88 s\)/);
  });

  it('seeks in long videos and gives the same clips as decoding from the start', async () => {
    const frames = Array.from({ length: 300 }, (_, t) => new Uint8Array(32 * 32 * 3).fill(20 + (t % 40) * 5));
    await encodeVideo(frames, 32, 32, join(root, 'long.mp4'), { keyframeInterval: 12 });
    const samples = Array.from({ length: 6 }, () => ({ path: 'long.mp4', labels: [0] }));
    const make = (seek: boolean) =>
      createLoader({ samples, root, pipeline: trainPipeline, batchSize: 3, shuffle: false, seed: 2, workers: 2, seek });
    const [sought, plain] = await Promise.all([make(true), make(false)]);
    const a = await collect(sought.epoch(0));
    const b = await collect(plain.epoch(0));
    expect(a.map((batch) => batch.input)).toEqual(b.map((batch) => batch.input));
    expect(sought.stats.skipped).toBe(0);
  });

  it('uses known frame counts instead of probing', async () => {
    // a/v 4.mp4 has 28 frames; told it has 12: avg = 12 - 8 + 1 = 5, offset int(2.5) = 2 -> 2, 4, 6, 8
    const loader = await createLoader({
      samples: [{ path: 'a/v 4.mp4', labels: [0] }],
      videoInfo: { 'a/v 4.mp4': { totalFrames: 12, width: 32, height: 32 } },
      root,
      pipeline: valPipeline,
      batchSize: 1,
      shuffle: false,
      seed: 0,
      workers: 1,
    });
    const [batch] = await collect(loader.epoch(0));
    [2, 4, 6, 8].forEach((frame, t) => expect(Math.abs(level(batch, 0, t) - rampLevel(frame))).toBeLessThanOrEqual(2));
  });

  it('multi-view batches keep the views of a sample together', async () => {
    const testPipeline = smallClip('test', { clipLen: 4, frameInterval: 2, numClips: 2, shortSide: 16, cropSize: 16 });
    const loader = await createLoader({
      annFile,
      root,
      pipeline: testPipeline,
      batchSize: 2,
      shuffle: false,
      seed: 0,
      workers: 2,
    });
    const iterator = loader.epoch(0)[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as Batch;
    await iterator.return?.();
    expect(first.views).toBe(6);
    expect(first.shape).toEqual([12, 3, 4, 16, 16]);
    expect(first.labels).toEqual(Int32Array.from([0, 1]));
  });

  it('rejects bad options with the value received', async () => {
    await expect(
      createLoader({ annFile, root, pipeline: valPipeline, batchSize: 0, shuffle: false, seed: 0, workers: 1 }),
    ).rejects.toThrow(/batchSize: expected an integer >= 1, received 0/);
    await expect(
      createLoader({ root, pipeline: valPipeline, batchSize: 1, shuffle: false, seed: 0, workers: 1 }),
    ).rejects.toThrow(/expected annFile or samples/);
    await mkdir(join(folder.path, 'empty'), { recursive: true });
    await expect(
      createLoader({
        annFile: join(folder.path, 'empty', 'nothing.txt'),
        root,
        pipeline: valPipeline,
        batchSize: 1,
        shuffle: false,
        seed: 0,
        workers: 1,
      }),
    ).rejects.toThrow(/nothing.txt: cannot read the annotation file \(ENOENT\)/);
  });
});
