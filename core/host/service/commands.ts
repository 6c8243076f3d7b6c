// The workbench's command handlers: each validates its arguments (errors name the field, the value
// received and what was expected) and calls the core modules. One instance per service and home.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { checkAnnotationFile } from '../../data/dataset.ts';
import { decodeVideoFrames, describeTools, listFrameFiles } from '../../data/decode.ts';
import { createLoader } from '../../data/loader.ts';
import { loadAnnotations } from '../../data/dataset.ts';
import { presetPipeline } from '../../data/pipeline.ts';
import { contactSheet } from '../../data/preview.ts';
import { scanDataset, splitDataset, writeScanOutputs, type ScanResult } from '../../data/scan.ts';
import { writeFileAtomic } from '../../data/files.ts';
import { currentBackend, webGpuStatus } from '../../engine/backend.ts';
import { fastKernelStatus } from '../../engine/kernels/index.ts';
import type { ModelConfig } from '../../model/config.ts';
import { Registry, toCsv } from '../../registry/registry.ts';
import { presetJson, presetNames, runDepths } from '../../app/config.ts';
import type {
  ClusterCommandNameOfWorkbench,
  CommandName,
  CommandResult,
  DatasetRef,
  RunSummary,
  WorkbenchEvent,
} from '../../protocol/workbench.ts';
import {
  commandArgs,
  checkArgumentBounds,
  COMMAND_NAMES,
  type ArgsOutput,
  type CommandNameOfMap,
} from '../../protocol/commands.ts';
import { IssuesError, issuesOf } from '../../protocol/issues.ts';
import { ClusterService } from './cluster.ts';
import { demoDataset, demoRunConfig, microRunConfig } from '../../app/demo.ts';
import { measureGflops } from './estimate.ts';
import { validateConfig } from '../../app/config.ts';
import { runCompute, stopModelCallWorker } from './compute-pool.ts';
import type { AttentionView, AttentionWindow, Comparison, Prediction } from '../../protocol/workbench.ts';
import type { JobContext } from './jobs.ts';
import { TrainingSessions } from './training.ts';
import { nameCheckpoints } from '../../app/evaluate.ts';
import { METRICS_CSV_HEADER, metricsCsvRows, runCurves } from '../../app/runs.ts';

type Context = JobContext & { emit: (event: WorkbenchEvent) => void };
type Handlers = {
  [N in Exclude<CommandName, ClusterCommandNameOfWorkbench>]: (
    args: ArgsOutput<N>,
    context: Context,
  ) => Promise<CommandResult<N>>;
};
type Route = (args: unknown, context: Context) => Promise<unknown>;

/** Validates a command's arguments with its schema from the protocol; the error names each field and value. */
function parseArgs<N extends CommandNameOfMap>(command: N, raw: unknown): ArgsOutput<N> {
  const schema = commandArgs[command] as z.ZodType<ArgsOutput<N>>;
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw new IssuesError(command, issuesOf(result.error, raw), { style: 'line' });
}

function flatten(value: unknown, prefix = '', into: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, into);
  } else {
    into[prefix] = JSON.stringify(value);
  }
  return into;
}

export interface WorkbenchOptions {
  home: string;
  version: string;
  mediaUrl: (path: string) => string;
}

export class Workbench {
  readonly registry: Registry;
  readonly training: TrainingSessions;
  /** cluster.* and jobs.* commands, and the watcher of remote jobs. */
  readonly cluster: ClusterService;
  private readonly scans = new Map<string, ScanResult>();
  private readonly datasetsFile: string;
  private emitter: (event: WorkbenchEvent) => void = () => undefined;

  constructor(private readonly options: WorkbenchOptions) {
    this.registry = Registry.open(options.home);
    this.datasetsFile = join(options.home, 'datasets.json');
    this.training = new TrainingSessions({
      home: options.home,
      registry: this.registry,
      onEvent: (event) => this.emitter({ kind: 'train', event, sentAt: Date.now() }),
    });
    this.cluster = new ClusterService({ registry: this.registry, home: options.home });
    this.cluster.setEmitter((event) => this.emitter(event));
  }

  setEmitter(emit: (event: WorkbenchEvent) => void): void {
    this.emitter = emit;
  }

  /** Folders the UI may read files from: the home and every known dataset root. */
  mediaRoots(): string[] {
    return [this.options.home, ...this.datasets().map((d) => d.root)];
  }

  datasets(): DatasetRef[] {
    const list: DatasetRef[] = [];
    const demo = demoDataset(this.options.home);
    if (demo) list.push(demo);
    if (existsSync(this.datasetsFile)) {
      try {
        list.push(...(JSON.parse(readFileSync(this.datasetsFile, 'utf8')) as DatasetRef[]));
      } catch (error) {
        this.emitter({
          kind: 'log',
          level: 'warn',
          message: `${this.datasetsFile}: not valid JSON (${(error as Error).message}); the dataset list starts empty`,
        });
      }
    }
    return list;
  }

  private async remember(dataset: DatasetRef): Promise<void> {
    const others = this.datasets().filter(
      (d) => d.name !== dataset.name && d.trainAnn !== dataset.trainAnn && !d.name.startsWith('demo'),
    );
    await writeFileAtomic(this.datasetsFile, `${JSON.stringify([...others, dataset], null, 2)}\n`);
  }

  private readonly stepTimes = new Map<string, Promise<number>>();

  /** One training step timed in a compute worker (kept per model, clip and batch: the config form asks often). */
  private timedStep(
    config: ModelConfig,
    clip: { frames: number; height: number; width: number },
    batch: number,
  ): Promise<number> {
    const key = JSON.stringify([config, clip, batch]);
    let time = this.stepTimes.get(key);
    if (!time) {
      time = runCompute<number>({ type: 'time-step', config, clip, batch }).done;
      time.catch(() => this.stepTimes.delete(key));
      this.stepTimes.set(key, time);
    }
    return time;
  }

  async close(): Promise<void> {
    await this.cluster.stop();
    await this.training.stopAll();
    await stopModelCallWorker();
    this.registry.close();
  }

  /** Name -> route, built from the protocol's command map: a name that is not a command finds nothing, whatever it is. */
  private readonly routes = new Map<string, Route>(
    COMMAND_NAMES.map((name): [string, Route] => [
      name,
      ClusterService.handles(name)
        ? (args) => this.cluster.dispatch(name, args)
        : (args, context) =>
            (this.handlers[name as keyof Handlers] as Route)(parseArgs(name as keyof Handlers, args ?? {}), context),
    ]),
  );

  dispatch = async (command: string, args: unknown, context: Context): Promise<unknown> => {
    const route = typeof command === 'string' ? this.routes.get(command) : undefined;
    if (!route) throw new Error(`unknown command ${JSON.stringify(command)}; expected one of ${COMMAND_NAMES.join(', ')}`);
    checkArgumentBounds(command, args);
    return route(args, context);
  };

  private readonly handlers: Handlers = {
    'settings.get': async () => {
      const backend = currentBackend();
      const gpu = await webGpuStatus();
      return {
        version: this.options.version,
        backend: backend?.name ?? 'not started',
        backendReason: backend?.reason ?? '',
        gpu: `${gpu.description}; ${backend?.name === 'webgpu' ? 'in use' : gpu.verdict}`,
        home: this.options.home,
        ffmpeg: describeTools(),
        demoDataset: demoDataset(this.options.home),
        kernels: backend ? fastKernelStatus() : null,
      };
    },

    'fs.list': async (args) => {
      const path = resolve(args.path || this.options.home);
      if (!existsSync(path) || !statSync(path).isDirectory()) throw new Error(`fs.list: "${path}" is not a folder`);
      const entries = readdirSync(path, { withFileTypes: true })
        .filter((entry) => !entry.name.startsWith('.'))
        .map((entry) => ({ name: entry.name, kind: entry.isDirectory() ? ('folder' as const) : ('file' as const) }))
        .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'folder' ? -1 : 1));
      return { path, parent: dirname(path) === path ? null : dirname(path), entries };
    },

    'datasets.list': async () => this.datasets(),

    'datasets.scan': async ({ root }, context) => {
      const scan = await scanDataset(root, { onProgress: (done, total) => context.progress(done, total, 'probing videos') });
      this.scans.set(root, scan);
      const classes = await Promise.all(
        scan.classes.map(async (name, index) => {
          const members = scan.items.filter((item) => item.label === index);
          const timed = members.filter((item) => item.durationSeconds > 0);
          return {
            index,
            name,
            count: members.length,
            meanSeconds: timed.length ? timed.reduce((s, item) => s + item.durationSeconds, 0) / timed.length : null,
            meanFrames: members.length ? members.reduce((s, item) => s + item.totalFrames, 0) / members.length : 0,
            thumbnail: members[0] ? await thumbnail(join(root, members[0].path), members[0]) : null,
          };
        }),
      );
      return { root, format: scan.format, items: scan.items.length, classes, problems: scan.skipped, tools: scan.tools };
    },

    'datasets.write': async (args) => {
      const scan = this.scans.get(args.root) ?? (await scanDataset(args.root));
      if (scan.items.length === 0)
        throw new Error(`datasets.write: "${args.root}" has no usable videos (${scan.skipped.length} skipped)`);
      const options = { val: args.val, test: args.test, seed: args.seed };
      const split = splitDataset(scan.items, scan.classes.length, options);
      const report = await writeScanOutputs(scan, split, options, args.outDir);
      const dataset: DatasetRef = {
        name: args.outDir.split('/').filter(Boolean).pop() ?? args.outDir,
        root: args.root,
        trainAnn: report.files.train,
        valAnn: report.files.val,
        labelMap: report.files.labelMap,
        classes: scan.classes,
      };
      await this.remember(dataset);
      return {
        dataset,
        files: report.files,
        splits: report.splits,
        classes: report.classes.map((c) => ({ name: c.name, train: c.train, val: c.val, test: c.test })),
        warnings: report.warnings,
      };
    },

    'datasets.check': async (args) => {
      const labelMap = join(dirname(args.annFile), 'classes.txt');
      const report = await checkAnnotationFile(args.annFile, {
        root: args.root,
        labelMap: existsSync(labelMap) ? labelMap : undefined,
      });
      return {
        annFile: args.annFile,
        entries: report.entries,
        classes: report.classes ?? 0,
        problems: report.problems.map((p) => ({ line: p.line || null, message: `${p.severity}: ${p.message}` })),
        ok: report.errors === 0,
      };
    },

    'datasets.videos': async (args) => {
      const loaded = await loadAnnotations(args.annFile, args.root);
      return loaded.entries.map((entry) => ({
        path: entry.path.startsWith('/') ? entry.path : join(args.root, entry.path),
        label: entry.labels[0] ?? 0,
      }));
    },

    'datasets.preview': async (args) => {
      const loaded = await loadAnnotations(args.annFile, args.root);
      const entry = loaded.entries[args.index];
      if (!entry)
        throw new Error(
          `datasets.preview: index must be 0..${loaded.entries.length - 1} (${loaded.entries.length} usable entries in ${args.annFile}), received ${args.index}`,
        );
      const spec = presetPipeline(
        args.preset,
        args.mode,
        args.preset === 'small' ? { cropSize: 32, shortSide: 32, clipLen: 8, frameInterval: 1 } : {},
      );
      const loader = await createLoader({
        samples: [entry],
        format: loaded.format,
        root: args.root,
        pipeline: spec,
        batchSize: 1,
        shuffle: false,
        seed: args.seed,
        workers: 1,
      });
      for await (const batch of loader.epoch(0)) {
        const shape = [batch.views, ...batch.shape.slice(1)];
        const sheet = contactSheet(batch.input, shape, spec.mean, spec.std);
        const png = await sharp(sheet.pixels, { raw: { width: sheet.width, height: sheet.height, channels: 3 } })
          .png()
          .toBuffer();
        const steps = [
          `sample ${spec.sampling.clipLen} frames every ${spec.sampling.frameInterval} (${spec.sampling.numClips} clip(s), ${spec.sampling.testMode ? 'test mode' : 'random start'})`,
          `resize short side to ${spec.shortSide}`,
          `crop ${spec.crop.kind} ${spec.crop.size}x${spec.crop.size}`,
          spec.flipRatio > 0 ? `horizontal flip with probability ${spec.flipRatio}` : 'no flip',
          ...(spec.randAugment
            ? [
                `RandAugment (imgaug) n=${spec.randAugment.n} m=${spec.randAugment.m}, one draw per clip; its first step flips with probability ${spec.randAugment.flipRatio}`,
              ]
            : []),
          ...(spec.randomErasing
            ? [`random erasing with probability ${spec.randomErasing.probability} (after normalisation)`]
            : []),
          ...(spec.omissions ?? []).map((o) => `note: ${o}`),
        ];
        return { image: `data:image/png;base64,${png.toString('base64')}`, shape, frames: [], steps };
      }
      throw new Error(
        `${args.annFile}:${entry.line}: "${entry.path}" could not be read: ${loader.stats.skips[0]?.reason ?? 'unknown reason'}`,
      );
    },

    'config.presets': async () => {
      const list: { name: string; config: Record<string, unknown> }[] = [];
      const demo = demoDataset(this.options.home);
      if (demo) {
        list.push({ name: 'demo-micro', config: demoRunConfig(demo) });
        // A three-epoch run on the same data: for trying a page (or a cluster hand-off) in seconds.
        list.push({ name: 'micro on demo', config: microRunConfig(demo) });
      }
      for (const dataset of this.datasets().filter((d) => d !== demo && !d.name.startsWith('demo'))) {
        list.push({ name: `micro on ${dataset.name}`, config: microRunConfig(dataset) });
      }
      for (const name of presetNames()) list.push({ name, config: presetJson(name) });
      return list;
    },

    'config.validate': async (args) => {
      return validateConfig(
        args.config,
        this.options.home,
        { gflops: measureGflops, timedStep: (config, clip, batch) => this.timedStep(config, clip, batch) },
        args.trainSize,
      );
    },

    'train.start': async (args) => {
      return { runId: await this.training.start(args.config, args.name) };
    },

    'train.control': async (args) => {
      this.training.control(args.runId, args.command);
      return { ok: true as const };
    },

    'train.resume': async (args) => {
      return { runId: await this.training.resume(args.runId) };
    },

    'runs.list': async () => {
      // Indexed aggregates only: a run's iteration rows (millions for a K400 run) are never read here.
      const metricOf = (run: { config: unknown }) =>
        (run.config as { evaluation?: { metric?: string } } | null)?.evaluation?.metric ?? 'top1';
      return this.registry.runSummaries(metricOf).map(({ run, best }): RunSummary => ({
        id: run.id,
        name: run.name,
        status: this.training.isActive(run.id) && run.status === 'interrupted' ? 'running' : run.status,
        backend: run.backend,
        epochs: run.epochs,
        epochsDone: run.epochsDone,
        createdAt: run.createdAt,
        bestMetric: best,
        flatConfig: flatten(run.config),
      }));
    },

    'runs.curves': async (args) => args.runIds.map((runId) => runCurves(this.registry, runId, args.maxPoints)),

    'runs.csv': async (args) => ({ csv: toCsv(METRICS_CSV_HEADER, metricsCsvRows(this.registry, args.runIds)) }),

    'runs.checkpoints': async () => {
      const list = [];
      for (const run of this.registry.listRuns()) {
        for (const c of this.registry.checkpoints(run.id)) {
          if (existsSync(c.path))
            list.push({
              runId: run.id,
              runName: run.name,
              epoch: c.epoch,
              path: c.path,
              reasons: c.reasons,
              metric: c.metricValue,
              depths: runDepths(run.config),
            });
        }
      }
      return list;
    },

    'compare.checkpoints': async (args, context) => {
      const comparison = await runCompute<Comparison>({ type: 'compare', ...args }, { onProgress: context.progress }).done;
      return nameCheckpoints(this.registry, comparison);
    },

    'attention.view': async (args) => {
      return runCompute<AttentionView>({ type: 'attention', ...args }).done;
    },

    'attention.window': async (args) => {
      return runCompute<AttentionWindow>({ type: 'attention-window', ...args }).done;
    },

    'video.predict': async (args, context) => {
      const prediction = await runCompute<Prediction>({ type: 'predict', ...args }, { onProgress: context.progress }).done;
      return { ...prediction, url: this.options.mediaUrl(args.video) };
    },
  };
}

async function thumbnail(
  path: string,
  item: { kind: 'video' | 'rawframes'; width: number; height: number },
): Promise<string | null> {
  try {
    let image: ReturnType<typeof sharp>;
    if (item.kind === 'rawframes') {
      const files = await listFrameFiles(path);
      if (files.length === 0) return null;
      image = sharp(await readFile(join(path, files[0])));
    } else {
      const clip = await decodeVideoFrames(path, [0], { width: item.width, height: item.height }, 20_000);
      image = sharp(clip.frames[0], { raw: { width: clip.width, height: clip.height, channels: 3 } });
    }
    const png = await image.resize(64, 64, { fit: 'cover' }).png().toBuffer();
    return `data:image/png;base64,${png.toString('base64')}`;
  } catch {
    return null;
  }
}
