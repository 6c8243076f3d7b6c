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
import { currentBackend } from '../../engine/backend.ts';
import { fastKernelStatus } from '../../engine/kernels/index.ts';
import { complexity } from '../../model/complexity.ts';
import { parseModelConfig, type ModelConfig } from '../../model/config.ts';
import { Registry, toCsv } from '../../registry/registry.ts';
import {
  checkConfigFiles,
  modelConfigOf,
  parseRunConfig,
  presetJson,
  presetNames,
  resolveRunConfig,
} from '../../train/run-config.ts';
import type {
  ClusterCommandNameOfWorkbench,
  CommandName,
  CommandResult,
  ConfigIssue,
  DatasetRef,
  RunSummary,
  WorkbenchEvent,
} from '../../protocol/workbench.ts';
import { WORKBENCH_CLUSTER_COMMAND_NAMES } from '../../protocol/workbench.ts';
import { ClusterService } from './cluster.ts';
import { demoDataset, demoRunConfig } from './demo.ts';
import { measureGflops, TIMED_STEP_LIMIT } from './estimate.ts';
import { runCompute, stopModelCallWorker } from './compute-pool.ts';
import type { AttentionView, AttentionWindow, Comparison, Prediction } from '../../protocol/workbench.ts';
import type { JobContext } from './jobs.ts';
import { TrainingSessions } from './training.ts';

type Context = JobContext & { emit: (event: WorkbenchEvent) => void };
type Handlers = {
  [N in Exclude<CommandName, ClusterCommandNameOfWorkbench>]: (args: unknown, context: Context) => Promise<CommandResult<N>>;
};

const absolutePath = (field: string) =>
  z
    .string({ error: `${field}: expected a path` })
    .min(1, `${field}: expected a path, received ""`)
    .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), { message: `${field}: expected an absolute path` });

function parseArgs<T>(command: string, schema: z.ZodType<T>, args: unknown): T {
  const result = schema.safeParse(args);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => {
    const path = issue.path.join('.') || '(arguments)';
    let received: unknown = args;
    for (const key of issue.path)
      received = received && typeof received === 'object' ? (received as Record<PropertyKey, unknown>)[key] : undefined;
    return `${path}: ${issue.message} (received ${JSON.stringify(received) ?? 'nothing'})`;
  });
  throw new Error(`${command}: ${details.join('; ')}`);
}

/** Splits the trainer's multi-line config error ("  path: message (received ...)") into issues. */
export function configIssues(error: unknown): ConfigIssue[] {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text
    .split('\n')
    .slice(1)
    .filter((line) => line.startsWith('  '));
  if (lines.length === 0) return [{ path: '(root)', message: text }];
  return lines.map((line) => {
    const trimmed = line.trim();
    const colon = trimmed.indexOf(': ');
    // The whole config as the "received" value of a root-level issue helps nobody in a form.
    const message = (colon > 0 ? trimmed.slice(colon + 2) : trimmed).replace(/ \(received [\s\S]{120,}\)$/, '');
    return { path: colon > 0 ? trimmed.slice(0, colon) : '(root)', message };
  });
}

function flatten(value: unknown, prefix = '', into: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, into);
  } else {
    into[prefix] = JSON.stringify(value);
  }
  return into;
}

function lineCount(file: string): number | null {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim().length > 0).length;
  } catch {
    return null;
  }
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
      version: options.version,
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

  dispatch = async (command: string, args: unknown, context: Context): Promise<unknown> => {
    if (ClusterService.handles(command)) return this.cluster.dispatch(command, args);
    const handler = (this.handlers as Record<string, ((args: unknown, context: Context) => Promise<unknown>) | undefined>)[
      command
    ];
    if (!handler)
      throw new Error(
        `unknown command "${command}"; expected one of ${[...Object.keys(this.handlers), ...WORKBENCH_CLUSTER_COMMAND_NAMES].join(', ')}`,
      );
    return handler(args, context);
  };

  private readonly handlers: Handlers = {
    'settings.get': async () => {
      const backend = currentBackend();
      return {
        version: this.options.version,
        backend: backend?.name ?? 'not started',
        backendReason: backend?.reason ?? '',
        home: this.options.home,
        ffmpeg: describeTools(),
        demoDataset: demoDataset(this.options.home),
        kernels: backend ? fastKernelStatus() : null,
      };
    },

    'fs.list': async (raw) => {
      const args = parseArgs('fs.list', z.object({ path: z.string().optional() }), raw);
      const path = resolve(args.path || this.options.home);
      if (!existsSync(path) || !statSync(path).isDirectory()) throw new Error(`fs.list: "${path}" is not a folder`);
      const entries = readdirSync(path, { withFileTypes: true })
        .filter((entry) => !entry.name.startsWith('.'))
        .map((entry) => ({ name: entry.name, kind: entry.isDirectory() ? ('folder' as const) : ('file' as const) }))
        .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'folder' ? -1 : 1));
      return { path, parent: dirname(path) === path ? null : dirname(path), entries };
    },

    'datasets.list': async () => this.datasets(),

    'datasets.scan': async (raw, context) => {
      const { root } = parseArgs('datasets.scan', z.object({ root: absolutePath('root') }), raw);
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

    'datasets.write': async (raw) => {
      const args = parseArgs(
        'datasets.write',
        z.object({
          root: absolutePath('root'),
          outDir: absolutePath('outDir'),
          val: z.number().min(0).max(0.9),
          test: z.number().min(0).max(0.9),
          seed: z.number().int().min(0),
        }),
        raw,
      );
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

    'datasets.check': async (raw) => {
      const args = parseArgs('datasets.check', z.object({ annFile: absolutePath('annFile'), root: absolutePath('root') }), raw);
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

    'datasets.videos': async (raw) => {
      const args = parseArgs('datasets.videos', z.object({ annFile: absolutePath('annFile'), root: absolutePath('root') }), raw);
      const loaded = await loadAnnotations(args.annFile, args.root);
      return loaded.entries.map((entry) => ({
        path: entry.path.startsWith('/') ? entry.path : join(args.root, entry.path),
        label: entry.labels[0] ?? 0,
      }));
    },

    'datasets.preview': async (raw) => {
      const args = parseArgs(
        'datasets.preview',
        z.object({
          annFile: absolutePath('annFile'),
          root: absolutePath('root'),
          preset: z.enum(['k400', 'ssv2', 'small']),
          mode: z.enum(['train', 'val', 'test']),
          index: z.number().int().min(0),
          seed: z.number().int().min(0),
        }),
        raw,
      );
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
      if (demo) list.push({ name: 'demo-micro', config: demoRunConfig(demo) });
      for (const dataset of this.datasets().filter((d) => d !== demo && !d.name.startsWith('demo'))) {
        list.push({ name: `micro on ${dataset.name}`, config: demoRunConfig(dataset) });
      }
      for (const name of presetNames()) list.push({ name, config: presetJson(name) });
      return list;
    },

    'config.validate': async (raw) => {
      const args = parseArgs(
        'config.validate',
        z.object({ config: z.unknown(), trainSize: z.number().int().min(0).optional() }),
        raw,
      );
      let resolved;
      try {
        resolved = resolveRunConfig(args.config, this.options.home, 'run config');
      } catch (error) {
        return { ok: false, issues: configIssues(error), estimate: null };
      }
      // The cost does not depend on the data: a preset whose videos are not downloaded yet still gets it.
      let fileIssues: ConfigIssue[] = [];
      try {
        checkConfigFiles(resolved);
      } catch (error) {
        fileIssues = configIssues(error);
      }
      const modelConfig = parseModelConfig(modelConfigOf(resolved));
      const p = resolved.data.pipeline;
      const spec = presetPipeline(p.preset, 'train', {
        clipLen: p.clip_len,
        frameInterval: p.frame_interval,
        cropSize: p.crop_size,
        shortSide: p.short_side,
      });
      const clip = { frames: spec.sampling.clipLen, height: spec.crop.size, width: spec.crop.size };
      const cost = complexity(modelConfig, clip, resolved.batch_size);
      const gflops = await measureGflops();
      const trainSize = args.trainSize ?? lineCount(resolved.data.train_ann);
      const iterations =
        trainSize === null
          ? null
          : Math.min(Math.ceil(trainSize / resolved.batch_size), resolved.max_iterations_per_epoch ?? Infinity);
      // Small models: a timed step. Big ones: forward + backward is about 3x the forward multiply-adds, 2 FLOPs each (a lower bound).
      const timed = cost.flopsPerView * resolved.batch_size < TIMED_STEP_LIMIT;
      const secondsPerStep = timed
        ? await this.timedStep(modelConfig, clip, resolved.batch_size)
        : (cost.flopsPerView * resolved.batch_size * 2 * 3) / (gflops * 1e9);
      return {
        ok: fileIssues.length === 0,
        issues: fileIssues,
        estimate: {
          parameters: cost.parameters,
          gflopsPerClip: cost.flopsPerView / 1e9,
          activationBytes: cost.trainingActivationBytes,
          parameterBytes: cost.parameters * 4 * 4,
          secondsPerEpoch: iterations === null ? null : iterations * secondsPerStep,
          timeMethod: timed ? 'timed' : 'flop-bound',
          backend: currentBackend()?.name ?? 'unknown',
          measuredGflops: gflops,
          clip: [clip.frames, clip.height, clip.width],
        },
      };
    },

    'train.start': async (raw) => {
      const args = parseArgs('train.start', z.object({ config: z.unknown(), name: z.string() }), raw);
      return { runId: await this.training.start(args.config, args.name) };
    },

    'train.control': async (raw) => {
      const args = parseArgs(
        'train.control',
        z.object({ runId: z.string().min(1), command: z.enum(['pause', 'resume', 'stop']) }),
        raw,
      );
      this.training.control(args.runId, args.command);
      return { ok: true as const };
    },

    'train.resume': async (raw) => {
      const args = parseArgs('train.resume', z.object({ runId: z.string().min(1) }), raw);
      return { runId: await this.training.resume(args.runId) };
    },

    'runs.list': async () => {
      return this.registry.listRuns().map((run): RunSummary => {
        const config = run.config as { evaluation?: { metric?: string } } | null;
        const metricName = config?.evaluation?.metric ?? 'top1';
        const best = this.registry
          .checkpoints(run.id, true)
          .filter((c) => c.metricValue !== null)
          .sort((a, b) => (b.metricValue ?? 0) - (a.metricValue ?? 0))[0];
        const valValues = this.registry
          .metrics(run.id)
          .filter((m) => m.scope === 'epoch' && m.split === 'val' && m.name === metricName && m.value !== null);
        const bestValue = best?.metricValue ?? (valValues.length ? Math.max(...valValues.map((m) => m.value as number)) : null);
        return {
          id: run.id,
          name: run.name,
          status: this.training.isActive(run.id) && run.status === 'interrupted' ? 'running' : run.status,
          backend: run.backend,
          epochs: run.epochs,
          epochsDone: run.epochsDone,
          createdAt: run.createdAt,
          bestMetric: bestValue === null ? null : { name: metricName, value: bestValue },
          flatConfig: flatten(run.config),
        };
      });
    },

    'runs.curves': async (raw) => {
      const args = parseArgs('runs.curves', z.object({ runIds: z.array(z.string()).max(50) }), raw);
      return args.runIds.map((runId) => {
        const series: Record<string, { step: number; value: number }[]> = {};
        for (const row of this.registry.metrics(runId)) {
          if (row.value === null) continue;
          const key = `${row.scope === 'iteration' ? 'iter' : 'epoch'}:${row.split}:${row.name}`;
          (series[key] ??= []).push({ step: row.step, value: row.value });
        }
        return { runId, series };
      });
    },

    'runs.csv': async (raw) => {
      const args = parseArgs('runs.csv', z.object({ runIds: z.array(z.string()).min(1) }), raw);
      const rows: unknown[][] = [];
      for (const runId of args.runIds) {
        const run = this.registry.requireRun(runId);
        for (const m of this.registry.metrics(runId))
          rows.push([run.id, run.name, m.scope, m.split, m.step, m.epoch, m.name, m.value]);
      }
      return { csv: toCsv(['run_id', 'run_name', 'scope', 'split', 'step', 'epoch', 'metric', 'value'], rows) };
    },

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

    'compare.checkpoints': async (raw, context) => {
      const args = parseArgs(
        'compare.checkpoints',
        z.object({
          checkpoints: z.array(absolutePath('checkpoints[]')).min(2).max(4),
          annFile: absolutePath('annFile'),
          root: absolutePath('root'),
          views: z.object({ clips: z.number().int().min(1).max(10), crops: z.union([z.literal(1), z.literal(3)]) }).optional(),
        }),
        raw,
      );
      const comparison = await runCompute<Comparison>({ type: 'compare', ...args }, { onProgress: context.progress }).done;
      // Registry names read better than file names: "run-name epoch 3".
      const names = new Map<string, string>();
      for (const run of this.registry.listRuns())
        for (const c of this.registry.checkpoints(run.id, true)) names.set(c.path, `${run.name} epoch ${c.epoch}`);
      for (const evaluation of comparison.checkpoints) evaluation.label = names.get(evaluation.checkpoint) ?? evaluation.label;
      comparison.weightChange.labels = comparison.checkpoints.slice(0, 2).map((c) => c.label);
      return comparison;
    },

    'attention.view': async (raw) => {
      const args = parseArgs(
        'attention.view',
        z.object({
          checkpoint: absolutePath('checkpoint'),
          video: absolutePath('video'),
          stage: z.number().int().min(0),
          block: z.number().int().min(0),
        }),
        raw,
      );
      return runCompute<AttentionView>({ type: 'attention', ...args }).done;
    },

    'attention.window': async (raw) => {
      const args = parseArgs(
        'attention.window',
        z.object({
          checkpoint: absolutePath('checkpoint'),
          video: absolutePath('video'),
          stage: z.number().int().min(0),
          block: z.number().int().min(0),
          window: z.number().int().min(0),
        }),
        raw,
      );
      return runCompute<AttentionWindow>({ type: 'attention-window', ...args }).done;
    },

    'video.predict': async (raw, context) => {
      const args = parseArgs(
        'video.predict',
        z.object({ checkpoint: absolutePath('checkpoint'), video: absolutePath('video') }),
        raw,
      );
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

/** Blocks per stage of a run's model, for the attention page's block list (null when the stored config does not parse). */
function runDepths(config: unknown): number[] | null {
  try {
    return [...parseModelConfig(modelConfigOf(parseRunConfig(config))).backbone.depths];
  } catch {
    return null;
  }
}
