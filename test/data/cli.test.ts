import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../core/engine/random.ts';
import { sampleFrames } from '../../core/data/sampling.ts';
import { temporaryFolder } from './fixtures.ts';

const cli = fileURLToPath(new URL('../../bin/vswin.js', import.meta.url));

function vswin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let folder: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  folder = await temporaryFolder('cli');
});
afterAll(async () => {
  await folder.remove();
});

describe('vswin data (end to end)', () => {
  it('synth, scan with faulty files and spaces, check, preview, convert', async () => {
    const synthDir = join(folder.path, 'synth out');
    const synth = await vswin('data', 'synth', synthDir, '--classes', '2', '--per-class', '4', '--seed', '3');
    expect(synth.stderr).toMatch(/ffmpeg: bundled/);
    expect(synth.code).toBe(0);
    expect(synth.stdout).toMatch(/8 videos in .*\(right, left\)/);

    // A user's folder: spaces, non-ASCII, nesting, hidden files and faulty files.
    const root = join(folder.path, 'My Videos');
    await cp(join(synthDir, 'videos', 'right'), join(root, 'to the right'), { recursive: true });
    await cp(join(synthDir, 'videos', 'left'), join(root, 'à gauche', 'nested dir'), { recursive: true });
    await writeFile(join(root, 'à gauche', 'zero.mp4'), new Uint8Array(0));
    await writeFile(join(root, 'à gauche', 'fake video.mp4'), 'plain text');
    await writeFile(join(root, 'to the right', '.hidden.mp4'), 'x');
    // The output folder sits inside the root: a rescan must not take it for a class.
    const outDir = join(root, 'annotations');
    await vswin('data', 'scan', root, '--out', outDir, '--val', '0.25', '--seed', '1');
    const scan = await vswin('data', 'scan', root, '--out', outDir, '--val', '0.25', '--seed', '1');
    expect(scan.code).toBe(0);
    expect(scan.stdout).toMatch(/8 usable videos in 2 classes; 2 skipped; 1 hidden ignored/);
    expect(scan.stdout).toMatch(/skipped à gauche\/zero.mp4: empty file/);
    const train = await readFile(join(outDir, 'train.txt'), 'utf8');
    const val = await readFile(join(outDir, 'val.txt'), 'utf8');
    expect(train.trim().split('\n')).toHaveLength(6);
    expect(val.trim().split('\n')).toHaveLength(2);
    // Classes sorted by code point: "t" (U+0074) before "à" (U+00E0).
    expect(await readFile(join(outDir, 'classes.txt'), 'utf8')).toBe('to the right\nà gauche\n');
    expect(train).toMatch(/^à gauche\/nested dir\/left-\d{3}\.mp4 1$/m);
    const report = JSON.parse(await readFile(join(outDir, 'report.json'), 'utf8'));
    expect(report.skipped.map((item: { path: string }) => item.path)).toEqual(['à gauche/fake video.mp4', 'à gauche/zero.mp4']);
    expect(report.classes.map((entry: { total: number }) => entry.total)).toEqual([4, 4]);

    const good = await vswin(
      'data',
      'check',
      join(outDir, 'train.txt'),
      '--root',
      root,
      '--label-map',
      join(outDir, 'classes.txt'),
    );
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/6 entries \(video\), 0 error\(s\)/);
    const badList = join(folder.path, 'bad list.txt');
    await writeFile(
      badList,
      `${train.split('\n')[0]}\nmissing one.mp4 0\n${train.split('\n')[0]}\nà gauche/zero.mp4 7\nonly-a-path\n`,
    );
    const bad = await vswin('data', 'check', badList, '--root', root, '--label-map', join(outDir, 'classes.txt'));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${badList}:2: error: missing`);
    expect(bad.stdout).toContain(`${badList}:3: error: duplicate entry`);
    expect(bad.stdout).toMatch(/:4: error: label 7 is out of range: the label map has 2 classes/);
    expect(bad.stdout).toMatch(/:4: error: .*is empty \(0 bytes\)/);
    expect(bad.stdout).toMatch(/:5: error: malformed line: expected "path label", received "only-a-path"/);
    // Checks open every video by default: a text file named .mp4 is unreadable.
    await writeFile(badList, 'à gauche/fake video.mp4 1\n');
    const unreadable = await vswin('data', 'check', badList, '--root', root);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stdout).toMatch(/:1: error: "à gauche\/fake video.mp4": unreadable/);
    expect((await vswin('data', 'check', badList, '--root', root, '--no-probe')).code).toBe(0);

    const sheet = join(folder.path, 'preview sheet.png');
    const preview = await vswin(
      'data',
      'preview',
      join(outDir, 'val.txt'),
      '--root',
      root,
      '--index',
      '1',
      '--pipeline',
      'test',
      '--preset',
      'small',
      '--out',
      sheet,
    );
    expect(preview.code).toBe(0);
    // small test preset on 64x64 videos: 3 crops x 2 clips = 6 rows of 8 frames of 64 pixels, 2 px gaps
    expect(await sharp(sheet).metadata()).toMatchObject({ format: 'png', width: 8 * 64 + 9 * 2, height: 6 * 64 + 7 * 2 });
    const outOfRange = await vswin(
      'data',
      'preview',
      join(outDir, 'val.txt'),
      '--root',
      root,
      '--index',
      '9',
      '--pipeline',
      'val',
      '--out',
      sheet,
    );
    expect(outOfRange.code).not.toBe(0);
    expect(outOfRange.stderr).toMatch(/--index: expected 0..1 \(2 usable entries/);

    const csv = join(folder.path, 'create ml.csv');
    const toCsv = await vswin(
      'data',
      'convert',
      join(outDir, 'train.txt'),
      '--label-map',
      join(outDir, 'classes.txt'),
      '--out',
      csv,
    );
    expect(toCsv.code).toBe(0);
    expect((await readFile(csv, 'utf8')).split('\n')[0]).toBe('video,label');
    const backDir = join(folder.path, 'back');
    await mkdir(backDir);
    const back = await vswin(
      'data',
      'convert',
      csv,
      '--label-map',
      join(outDir, 'classes.txt'),
      '--out',
      join(backDir, 'train.txt'),
    );
    expect(back.code).toBe(0);
    expect(await readFile(join(backDir, 'train.txt'), 'utf8')).toBe(train);
  });

  it('sample prints mmaction2 indices as JSON and rejects bad values', async () => {
    // K400 test, n = 300: offsets 29, 88, 148, 207 (see sampling.test.ts)
    const test = await vswin(
      'data',
      'sample',
      '--total-frames',
      '300',
      '--clip-len',
      '32',
      '--frame-interval',
      '2',
      '--num-clips',
      '4',
      '--test-mode',
    );
    const indices = JSON.parse(test.stdout) as number[];
    expect(indices).toHaveLength(128);
    expect([indices[0], indices[32], indices[64], indices[96], indices[127]]).toEqual([29, 88, 148, 207, 269]);
    const uniform = await vswin('data', 'sample', '--total-frames', '10', '--clip-len', '4', '--uniform', '--test-mode');
    expect(JSON.parse(uniform.stdout)).toEqual([1, 3, 5, 8]);
    const repeat = await vswin(
      'data',
      'sample',
      '--total-frames',
      '10',
      '--clip-len',
      '4',
      '--frame-interval',
      '4',
      '--test-mode',
      '--out-of-bound',
      'repeat_last',
      '--start-index',
      '1',
    );
    expect(JSON.parse(repeat.stdout)).toEqual([1, 5, 9, 9]);
    // Train mode draws from our generator seeded with --seed: the same indices as the library call.
    const seeded = await vswin(
      'data',
      'sample',
      '--total-frames',
      '100',
      '--clip-len',
      '8',
      '--frame-interval',
      '3',
      '--seed',
      '5',
    );
    expect(JSON.parse(seeded.stdout)).toEqual(sampleFrames(100, { clipLen: 8, frameInterval: 3 }, new Random(5)));
    const bad = await vswin('data', 'sample', '--total-frames', 'ten', '--clip-len', '4');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--total-frames: expected an integer >= 1, received "ten"/);
  });
});
