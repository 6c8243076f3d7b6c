// Video probing and decoding through ffmpeg/ffprobe child processes, and frame folders through sharp.
//
// Which binaries run: VSWIN_FFMPEG / VSWIN_FFPROBE when set (a path, or "system" for the one on PATH),
// otherwise the static build shipped by @ffmpeg-installer / @ffprobe-installer (it starts about four
// times faster than Debian's), otherwise ffmpeg/ffprobe from PATH. `describeTools()` says which.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { imageExtensions } from './files.ts';
import type { Clip } from './transforms.ts';

export interface Tool {
  path: string;
  source: 'environment' | 'bundled' | 'system';
}

export interface Tools {
  ffmpeg: Tool;
  ffprobe: Tool;
}

const require = createRequire(import.meta.url);

function onPath(name: string): string | undefined {
  const result = spawnSync(name, ['-version'], { stdio: 'ignore' });
  return result.error ? undefined : name;
}

function resolveTool(name: 'ffmpeg' | 'ffprobe'): Tool {
  const variable = name === 'ffmpeg' ? 'VSWIN_FFMPEG' : 'VSWIN_FFPROBE';
  const requested = process.env[variable];
  if (requested && requested !== 'system' && requested !== 'bundled') {
    if (!existsSync(requested) && !onPath(requested))
      throw new Error(`${variable}: "${requested}" is neither a file nor a command on PATH`);
    return { path: requested, source: 'environment' };
  }
  if (requested !== 'system') {
    try {
      const installer = require(name === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe') as {
        path: string;
      };
      if (existsSync(installer.path)) return { path: installer.path, source: 'bundled' };
    } catch {
      // No prebuilt for this platform: fall through to the system binary.
    }
  }
  const system = onPath(name);
  if (system) return { path: system, source: 'system' };
  throw new Error(
    `${name} not found: the bundled @${name}-installer package has no binary for this platform and none is on PATH; install ${name} or set ${variable}`,
  );
}

let cachedTools: Tools | undefined;
let cachedKey = '';

export function resolveTools(): Tools {
  const key = `${process.env.VSWIN_FFMPEG ?? ''}|${process.env.VSWIN_FFPROBE ?? ''}`;
  if (!cachedTools || key !== cachedKey) {
    cachedTools = { ffmpeg: resolveTool('ffmpeg'), ffprobe: resolveTool('ffprobe') };
    cachedKey = key;
  }
  return cachedTools;
}

export function describeTools(): string {
  const tools = resolveTools();
  return `ffmpeg: ${tools.ffmpeg.source} (${tools.ffmpeg.path}); ffprobe: ${tools.ffprobe.source} (${tools.ffprobe.path})`;
}

interface ProcessResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export function runProcess(
  command: string,
  args: string[],
  options: { input?: Uint8Array; timeoutMs?: number; expectedBytes?: number } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    // When the output size is known, chunks go straight into one buffer (no concatenation copy).
    const target = options.expectedBytes ? Buffer.allocUnsafe(options.expectedBytes) : undefined;
    let written = 0;
    let stderr = '';
    const timer = options.timeoutMs
      ? setTimeout(() => {
          stderr += `\ntimed out after ${options.timeoutMs} ms`;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      if (target && written + chunk.length <= target.length) {
        chunk.copy(target, written);
        written += chunk.length;
      } else {
        if (target && written > 0 && chunks.length === 0) chunks.push(target.subarray(0, written));
        chunks.push(chunk);
        written += chunk.length;
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 8192) stderr += chunk.toString('utf8');
    });
    child.on('error', (error) => {
      if (timer) clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      const stdout = target && chunks.length === 0 ? target.subarray(0, written) : Buffer.concat(chunks);
      resolve({ code, stdout, stderr });
    });
    // The child may exit before reading all input (bad arguments); its error is in stderr then.
    child.stdin.on('error', () => undefined);
    if (options.input) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

function firstErrorLine(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, '').trim())
    .filter((line) => line !== '');
  return lines[0] ?? 'unknown error';
}

export interface VideoInfo {
  kind: 'video';
  codec: string;
  container: string;
  width: number;
  height: number;
  /** Frames decord would index: the container's count, or the packets read when it has none. */
  totalFrames: number;
  fps: number;
  durationSeconds: number;
}

export type ProbeResult = VideoInfo | { kind: 'error'; reason: string };

function parseRate(rate: string | undefined): number {
  if (!rate) return 0;
  const [numerator, denominator] = rate.split('/').map(Number);
  return denominator ? numerator / denominator : numerator || 0;
}

/**
 * Reads the header and, with `verify` (the default), counts packets too (a demux pass, no decoding)
 * to catch truncated files. Without it only containers lacking a frame count are demuxed; the
 * loader uses that and lets a short decode reveal truncation.
 */
export async function probeVideo(path: string, options: { verify?: boolean } = {}): Promise<ProbeResult> {
  const verify = options.verify ?? true;
  const first = await runProbe(path, verify);
  if (first.kind === 'video' && !verify && first.totalFrames === 0) return runProbe(path, true);
  return first;
}

async function runProbe(path: string, countPackets: boolean): Promise<ProbeResult> {
  const tools = resolveTools();
  const args = [
    '-v',
    'error',
    ...(countPackets ? ['-count_packets'] : []),
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=codec_name,width,height,r_frame_rate,avg_frame_rate,nb_frames,nb_read_packets,duration:format=duration,format_name',
    '-of',
    'json',
    path,
  ];
  let result: ProcessResult;
  try {
    result = await runProcess(tools.ffprobe.path, args, { timeoutMs: 60_000 });
  } catch (error) {
    return { kind: 'error', reason: `cannot run ffprobe (${tools.ffprobe.path}): ${(error as Error).message}` };
  }
  if (result.code !== 0) return { kind: 'error', reason: `unreadable: ${firstErrorLine(result.stderr)}` };
  let data: { streams?: Record<string, string | number>[]; format?: Record<string, string> };
  try {
    data = JSON.parse(result.stdout.toString('utf8'));
  } catch {
    return { kind: 'error', reason: 'unreadable: ffprobe gave no parsable answer' };
  }
  const stream = data.streams?.[0];
  if (!stream) return { kind: 'error', reason: 'no video stream' };
  const container = String(data.format?.format_name ?? 'unknown');
  const codec = String(stream.codec_name ?? 'unknown');
  // A still image probes as a one-frame "video" (image2 / *_pipe demuxers).
  if (/image2|_pipe$/.test(container)) return { kind: 'error', reason: `not a video: a still image (${codec})` };
  if (result.stderr.trim() !== '') {
    const truncation = result.stderr.split(/\r?\n/).find((line) => /partial file|ended prematurely|truncat/i.test(line));
    return {
      kind: 'error',
      reason: truncation ? `truncated: ${firstErrorLine(truncation)}` : `corrupt: ${firstErrorLine(result.stderr)}`,
    };
  }
  const declared = Number(stream.nb_frames ?? 0);
  const read = countPackets ? Number(stream.nb_read_packets ?? 0) : declared;
  // Without a count (no packet pass, no nb_frames in the header) the caller probes again with one.
  if (!countPackets && declared === 0)
    return { kind: 'video', codec, container, width: 0, height: 0, totalFrames: 0, fps: 0, durationSeconds: 0 };
  if (read === 0) return { kind: 'error', reason: 'empty: the video stream has no frames' };
  if (declared > 0 && read < declared)
    return { kind: 'error', reason: `truncated: the header declares ${declared} frames, only ${read} are in the file` };
  const width = Number(stream.width ?? 0);
  const height = Number(stream.height ?? 0);
  if (!(width > 0 && height > 0))
    return { kind: 'error', reason: `no frame size in the stream (width ${width}, height ${height})` };
  const fps = parseRate(String(stream.avg_frame_rate ?? '')) || parseRate(String(stream.r_frame_rate ?? ''));
  const duration = Number(stream.duration ?? data.format?.duration ?? 0) || (fps > 0 ? read / fps : 0);
  return {
    kind: 'video',
    codec,
    container,
    width,
    height,
    totalFrames: declared > 0 ? declared : read,
    fps,
    durationSeconds: duration,
  };
}

/**
 * Frames ffmpeg actually decodes (ffprobe -count_frames: a full decode, so slow). Used when a
 * container's declared count turns out to be wrong.
 */
export async function countDecodedFrames(path: string): Promise<number> {
  const tools = resolveTools();
  const result = await runProcess(
    tools.ffprobe.path,
    ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', path],
    { timeoutMs: 300_000 },
  );
  const count = Number(result.stdout.toString('utf8').trim().split(/\r?\n/)[0]);
  return Number.isInteger(count) && count >= 0 ? count : 0;
}

/**
 * Presentation times of every frame of a video (a demux pass, no decoding) and which frames are
 * keyframes: what seeking needs to land exactly on a frame number.
 */
export interface FrameIndex {
  /** Seconds from the file's start time, one per frame in presentation order. */
  times: Float64Array;
  /** Frame numbers (presentation order) of the keyframes. */
  keyframes: number[];
}

export async function indexFrames(path: string): Promise<FrameIndex | undefined> {
  const tools = resolveTools();
  const result = await runProcess(
    tools.ffprobe.path,
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'packet=pts,flags:stream=time_base:format=start_time',
      '-of',
      'json',
      path,
    ],
    { timeoutMs: 120_000 },
  );
  if (result.code !== 0) return undefined;
  let data: {
    packets?: { pts?: number; flags?: string }[];
    streams?: { time_base?: string }[];
    format?: { start_time?: string };
  };
  try {
    data = JSON.parse(result.stdout.toString('utf8'));
  } catch {
    return undefined;
  }
  const packets = data.packets ?? [];
  const [numerator, denominator] = String(data.streams?.[0]?.time_base ?? '')
    .split('/')
    .map(Number);
  const start = Number(data.format?.start_time ?? 0);
  // Without a timestamp on every packet there is no exact time for a frame number: no seeking.
  if (!(numerator > 0 && denominator > 0) || packets.length === 0 || packets.some((packet) => typeof packet.pts !== 'number'))
    return undefined;
  const order = packets
    .map((packet, position) => ({ pts: packet.pts as number, key: (packet.flags ?? '').startsWith('K'), position }))
    .sort((a, b) => a.pts - b.pts);
  const times = Float64Array.from(order, (frame) => (frame.pts * numerator) / denominator - start);
  const keyframes = order.flatMap((frame, index) => (frame.key ? [index] : []));
  return { times, keyframes };
}

/** Frames before the first wanted one that a seek would skip; below this, seeking is not worth a second process argument. */
const seekGain = 48;

/**
 * Where to seek for a decode starting at frame `first`: midway between its time and the previous
 * frame's, when a keyframe at least `seekGain` frames into the video precedes it; otherwise none.
 */
export function planSeek(frameIndex: FrameIndex, first: number): { time: number; base: number } | undefined {
  if (first <= 0 || first >= frameIndex.times.length) return undefined;
  const keyframe = frameIndex.keyframes.filter((frame) => frame <= first).pop() ?? 0;
  if (keyframe < seekGain) return undefined;
  return { time: (frameIndex.times[first - 1] + frameIndex.times[first]) / 2, base: first };
}

/**
 * Decodes only the requested frames (0-based, any order, repeats allowed) to RGB. ffmpeg's `select`
 * keeps the wanted frame numbers and `-frames:v` stops decoding after the last of them. With a
 * frame index, ffmpeg first seeks (accurately) to midway between the frame before the first wanted
 * one and that frame, so decoding starts at the nearest keyframe instead of the file's start; frame
 * numbers in `select` then count from the first wanted frame.
 */
export async function decodeVideoFrames(
  path: string,
  indices: number[],
  size: { width: number; height: number },
  timeoutMs = 120_000,
  frameIndex?: FrameIndex,
): Promise<Clip> {
  const tools = resolveTools();
  const wanted = [...new Set(indices)].sort((a, b) => a - b);
  if (wanted.length === 0) throw new Error(`decode ${path}: expected at least one frame index, received none`);
  const plan = frameIndex ? planSeek(frameIndex, wanted[0]) : undefined;
  const base = plan?.base ?? 0;
  const seek = plan ? ['-ss', plan.time.toFixed(6)] : [];
  const expression = wanted.map((index) => `eq(n\\,${index - base})`).join('+');
  const args = [
    '-v',
    'error',
    '-nostdin',
    '-threads',
    '1',
    '-noautorotate',
    ...seek,
    '-i',
    path,
    '-vf',
    `select=${expression}`,
    '-vsync',
    '0',
    '-frames:v',
    String(wanted.length),
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
  const frameBytes = size.width * size.height * 3;
  const result = await runProcess(tools.ffmpeg.path, args, { timeoutMs, expectedBytes: frameBytes * wanted.length });
  const decoded = Math.floor(result.stdout.length / frameBytes);
  if (result.code !== 0) throw new DecodeError(`ffmpeg failed (exit ${result.code}): ${firstErrorLine(result.stderr)}`);
  if (decoded < wanted.length || result.stdout.length % frameBytes !== 0) {
    throw new DecodeError(
      `truncated or corrupt: decoded ${decoded} of ${wanted.length} requested frames (last wanted index ${wanted[wanted.length - 1]}) at ${size.width}x${size.height}`,
    );
  }
  const byIndex = new Map<number, Uint8Array>();
  wanted.forEach((index, position) => {
    byIndex.set(index, new Uint8Array(result.stdout.buffer, result.stdout.byteOffset + position * frameBytes, frameBytes));
  });
  return { width: size.width, height: size.height, frames: indices.map((index) => byIndex.get(index)!) };
}

/** An expected failure of one sample (corrupt file, missing frames): the loader skips and counts it. */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

/** Image files of a frame folder in natural order (img_2 before img_10). */
export async function listFrameFiles(folder: string): Promise<string[]> {
  const names = (await readdir(folder)).filter(
    (name) => !name.startsWith('.') && imageExtensions.has(extname(name).toLowerCase()),
  );
  const collator = new Intl.Collator('en', { numeric: true });
  return names.sort(collator.compare);
}

/**
 * Reads frames of a rawframe folder. `indices` already include the start index (mmaction2 numbers
 * frames from `start_index`, 1 by default), so index i is the (i - startIndex)-th file.
 */
export async function readFrameFolder(folder: string, indices: number[], startIndex: number, files?: string[]): Promise<Clip> {
  const names = files ?? (await listFrameFiles(folder));
  const cache = new Map<number, Promise<{ data: Buffer; width: number; height: number }>>();
  const load = (index: number) => {
    let pending = cache.get(index);
    if (!pending) {
      const name = names[index - startIndex];
      if (name === undefined)
        throw new DecodeError(`frame ${index} is outside the folder (${names.length} frames, start index ${startIndex})`);
      pending = sharp(join(folder, name))
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true })
        .then(({ data, info }) => {
          if (info.channels !== 3)
            throw new DecodeError(`${name}: expected 3 channels after conversion, received ${info.channels}`);
          return { data, width: info.width, height: info.height };
        });
      cache.set(index, pending);
    }
    return pending;
  };
  let images: { data: Buffer; width: number; height: number }[];
  try {
    images = await Promise.all(indices.map(load));
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    throw new DecodeError(`cannot read a frame of ${folder}: ${(error as Error).message}`);
  }
  const { width, height } = images[0];
  const odd = images.find((image) => image.width !== width || image.height !== height);
  if (odd) throw new DecodeError(`frames of ${folder} differ in size: ${width}x${height} and ${odd.width}x${odd.height}`);
  return {
    width,
    height,
    frames: images.map((image) => new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.length)),
  };
}
