// npm run bench:data — clips/s through the K400 train pipeline (32 frames, interval 2, 224x224 crops)
// from 340p H.264 videos, for 1, 2 and 4 decode workers, with peak RSS.
//
// Each worker count runs in its own process so that peak RSS (getrusage maxrss) belongs to that run.
// Usage: npm run bench:data [-- --clips 24 --videos 8 --seconds 10 --workers 1,2,4 --threads 0,1 --pipeline k400|ssv2]
// --pipeline ssv2 runs the SSv2 train pipeline instead (uniform sampling, RandAugment, erasing).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeAnnotationFile } from '../core/data/annotations.ts';
import { describeTools, resolveTools, runProcess } from '../core/data/decode.ts';
import { createLoader } from '../core/data/loader.ts';
import { k400Train, ssv2Train } from '../core/data/pipeline.ts';

const pipelines = {
  k400: {
    spec: k400Train,
    text: 'K400 train pipeline: SampleFrames(32, 2, 1) -> short side 256 -> RandomResizedCrop -> 224x224 -> flip -> normalize -> NCTHW',
  },
  ssv2: {
    spec: ssv2Train,
    text: 'SSv2 train pipeline: uniform SampleFrames(32) -> short side 256 -> RandomResizedCrop -> 224x224 -> RandAugment(n=4, m=7) -> normalize -> RandomErasing(0.25) -> NCTHW',
  },
};
type PipelineName = keyof typeof pipelines;

function pipelineName(value: string): PipelineName {
  if (value in pipelines) return value as PipelineName;
  throw new Error(`--pipeline: expected k400 or ssv2, received "${value}"`);
}

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1] : fallback;
}

interface RunResult {
  workers: number;
  threads: number;
  clips: number;
  seconds: number;
  clipsPerSecond: number;
  peakRssMb: number;
  decodeMsPerClip: number;
  transformMsPerClip: number;
  waitMsPerClip: number;
  skipped: number;
  /** CPU milliseconds per clip: this process (all threads) and its finished ffmpeg children. */
  cpuMsPerClip: number;
  childCpuMsPerClip: number;
}

/** User + system CPU of waited-for children, from /proc (Linux); 0 elsewhere. */
async function childCpuMs(): Promise<number> {
  try {
    const fields = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1].split(' ');
    // Fields after the command: state is index 0, so cutime and cstime (fields 16 and 17) are 13 and 14.
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return 0;
  }
}

async function runOnce(
  annFile: string,
  root: string,
  workers: number,
  threads: number,
  clips: number,
  pipeline: PipelineName,
): Promise<RunResult> {
  const loader = await createLoader({
    annFile,
    root,
    pipeline: pipelines[pipeline].spec(),
    batchSize: 1,
    shuffle: true,
    seed: 0,
    workers,
    transformThreads: threads,
    prefetchBatches: Math.max(2, workers),
  });
  // Warm-up: one clip, so process start and JIT are not counted.
  for await (const _batch of loader.epoch(100)) break;
  const base = { ...loader.stats };
  const cpuBefore = process.cpuUsage();
  const childBefore = await childCpuMs();
  const started = performance.now();
  let produced = 0;
  for (let epoch = 0; produced < clips; epoch++) {
    for await (const batch of loader.epoch(epoch)) {
      if (batch.shape.join('x') !== '1x3x32x224x224') throw new Error(`unexpected batch shape ${batch.shape.join('x')}`);
      if (++produced >= clips) break;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const childCpu = (await childCpuMs()) - childBefore;
  await loader.close();
  const perClip = (value: number) => Math.round(value / produced);
  return {
    workers,
    threads,
    clips: produced,
    seconds: Math.round(seconds * 100) / 100,
    clipsPerSecond: Math.round((produced / seconds) * 100) / 100,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    decodeMsPerClip: perClip(loader.stats.decodeMs - base.decodeMs),
    transformMsPerClip: perClip(loader.stats.transformMs - base.transformMs),
    waitMsPerClip: perClip(loader.stats.waitMs - base.waitMs),
    skipped: loader.stats.skipped,
    cpuMsPerClip: perClip((cpu.user + cpu.system) / 1000),
    childCpuMsPerClip: perClip(childCpu),
  };
}

async function makeVideos(folder: string, count: number, seconds: number): Promise<string> {
  const ffmpeg = resolveTools().ffmpeg.path;
  const entries = [];
  for (let k = 0; k < count; k++) {
    // K400 clips are mostly 340 pixels high, 4:3 or 16:9, around 0.5-1 Mbit/s: light noise keeps the
    // content from being trivially compressible and the bit rate is held near 800 kbit/s.
    const width = k % 2 === 0 ? 454 : 604;
    const name = `clip ${k}.mp4`;
    const source = k % 2 === 0 ? 'testsrc2' : 'mandelbrot';
    const result = await runProcess(ffmpeg, [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `${source}=size=${width}x340:rate=30`,
      '-t',
      String(seconds),
      '-vf',
      'noise=alls=6:allf=t',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-b:v',
      '800k',
      '-maxrate',
      '1200k',
      '-bufsize',
      '2M',
      '-pix_fmt',
      'yuv420p',
      '-g',
      '250',
      join(folder, name),
    ]);
    if (result.code !== 0) throw new Error(`cannot generate ${name}: ${result.stderr}`);
    entries.push({ path: name, labels: [k % 4] });
  }
  const annFile = join(folder, 'list.txt');
  await writeAnnotationFile(annFile, entries, 'video');
  return annFile;
}

async function main(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  if (process.argv.includes('--child')) {
    const result = await runOnce(
      argument('ann', ''),
      argument('root', ''),
      Number(argument('workers', '1')),
      Number(argument('threads', '0')),
      Number(argument('clips', '24')),
      pipelineName(argument('pipeline', 'k400')),
    );
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const clips = Number(argument('clips', '24'));
  const videoCount = Number(argument('videos', '8'));
  const seconds = Number(argument('seconds', '10'));
  const workerCounts = argument('workers', '1,2,4').split(',').map(Number);
  const threadCounts = argument('threads', '0,1').split(',').map(Number);
  const pipeline = pipelineName(argument('pipeline', 'k400'));
  const folder = await mkdtemp(join(tmpdir(), 'vswin-bench-data-'));
  try {
    process.stdout.write(`${describeTools()}\n`);
    const generateStart = performance.now();
    const annFile = await makeVideos(folder, videoCount, seconds);
    process.stdout.write(
      `generated ${videoCount} H.264 videos (~800 kbit/s) of ${seconds} s, 30 fps, 454x340 / 604x340 in ${((performance.now() - generateStart) / 1000).toFixed(1)} s\n`,
    );
    process.stdout.write(`${pipelines[pipeline].text}\n`);
    process.stdout.write(
      `machine: ${cpus().length} cores, load average ${loadavg()
        .map((value) => value.toFixed(1))
        .join(' ')} before the runs\n`,
    );
    process.stdout.write(
      'workers  threads  clips/s  peak RSS  decode ms  transform ms  wait ms  CPU ms: loader + ffmpeg = total  -> idle-machine ceiling\n',
    );
    for (const threads of threadCounts) {
      for (const workers of workerCounts) {
        const output = await new Promise<string>((resolve, reject) => {
          execFile(
            process.execPath,
            [
              '--import',
              'tsx',
              script,
              '--child',
              '--ann',
              annFile,
              '--root',
              folder,
              '--workers',
              String(workers),
              '--threads',
              String(threads),
              '--clips',
              String(clips),
              '--pipeline',
              pipeline,
            ],
            { encoding: 'utf8', maxBuffer: 1 << 20 },
            (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
          );
        });
        const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as RunResult;
        const total = result.cpuMsPerClip + result.childCpuMsPerClip;
        const ceiling = total > 0 ? (cpus().length * 1000) / total : 0;
        process.stdout.write(
          `${String(result.workers).padStart(7)}  ${String(result.threads).padStart(7)}  ${result.clipsPerSecond.toFixed(2).padStart(7)}  ${`${result.peakRssMb} MB`.padStart(8)}  ${String(result.decodeMsPerClip).padStart(9)}  ${String(result.transformMsPerClip).padStart(12)}  ${String(result.waitMsPerClip).padStart(7)}  ${`${result.cpuMsPerClip} + ${result.childCpuMsPerClip} = ${total}`.padStart(31)}  -> ${ceiling.toFixed(1)} clips/s\n`,
        );
      }
    }
    process.stdout.write(
      `load average after: ${loadavg()
        .map((value) => value.toFixed(1))
        .join(' ')}\n`,
    );
    process.stdout.write(
      'Per clip: decode = wall time of one ffmpeg process (they overlap); transform = on the loader thread (0 threads) or wall time\n' +
        'including the queue (threads); wait = consumer waiting for data. CPU ms are load-independent; the ceiling is cores / CPU per clip,\n' +
        'what an otherwise idle machine would reach. Peak RSS is the loader process (ffmpeg children excluded).\n',
    );
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

await main();
