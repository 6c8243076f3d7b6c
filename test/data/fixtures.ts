// Small generated media for the data tests (no fixtures checked in: everything is made by ffmpeg/sharp).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { encodeVideo, type VideoCodec } from '../../core/data/synth.ts';

export async function temporaryFolder(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `vswin-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Gray level of frame t in ramp videos: far enough apart to survive lossy codecs. */
export const rampLevel = (t: number) => 20 + 6 * t;

/** A video whose frame t is a uniform gray of rampLevel(t), so decoded frames reveal their index. */
export async function rampVideo(path: string, frames: number, codec: VideoCodec = 'h264', size = 32): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const data = Array.from({ length: frames }, (_, t) => new Uint8Array(size * size * 3).fill(rampLevel(t)));
  await encodeVideo(data, size, size, path, { codec });
}

/** Mean of the first channel of a frame, rounded. */
export const frameLevel = (frame: Uint8Array) => Math.round(frame.reduce((sum, value) => sum + value, 0) / frame.length);

/** A folder of JPEG frames img_00001.jpg... (mmaction2's default naming), frame t gray rampLevel(t). */
export async function rampFrameFolder(folder: string, frames: number, size = 24): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (let t = 0; t < frames; t++) {
    const pixels = Buffer.alloc(size * size * 3, rampLevel(t));
    await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
      .jpeg({ quality: 95 })
      .toFile(join(folder, `img_${String(t + 1).padStart(5, '0')}.jpg`));
  }
}

/** Broken files next to good ones: truncated, zero bytes, text renamed .mp4. */
export async function brokenFiles(folder: string, goodVideo: string): Promise<Record<string, string>> {
  await mkdir(folder, { recursive: true });
  const bytes = await readFile(goodVideo);
  const files = {
    truncated: join(folder, 'truncated.mp4'),
    empty: join(folder, 'empty.mp4'),
    text: join(folder, 'text renamed.mp4'),
  };
  await writeFile(files.truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await writeFile(files.empty, new Uint8Array(0));
  await writeFile(files.text, 'this is not a video\n');
  return files;
}
