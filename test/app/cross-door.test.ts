// The two doors on the same checkpoints: one trained with `vswin train`, one from the workbench's
// Training page (service command train.start), both with a non-default clip length and size.
// Each is evaluated through the CLI (`vswin eval`, a real process) and through the service
// (compare.checkpoints, video.predict, attention.view): equal top-1, equal class names, equal
// per-video predictions. `vswin eval` needs no --config for the service's checkpoint, and files of
// both earlier metadata shapes give the same results as the current one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset, type SyntheticDataset } from '../../core/data/synth.ts';
import { initBackend } from '../../core/engine/backend.ts';
import { Workbench } from '../../core/host/service/commands.ts';
import { loadCheckpoint, saveCheckpoint } from '../../core/model/weights/checkpoint.ts';
import { writeSafetensors } from '../../core/model/weights/safetensors.ts';
import type { EvaluationReport, VideoPrediction } from '../../core/protocol/train.ts';
import type { AttentionView, Comparison, Prediction, WorkbenchEvent } from '../../core/protocol/workbench.ts';
import { Registry } from '../../core/registry/registry.ts';

const BIN = fileURLToPath(new URL('../../bin/vswin.js', import.meta.url));
/** Each test spawns `vswin` processes (several seconds each on a loaded 2-core machine). */
const SLOW = 600_000;
let dir: string;
let home: string;
let data: SyntheticDataset;
let workbench: Workbench;
const context = { jobId: 'test', progress: () => undefined, emit: (_event: WorkbenchEvent) => undefined };
const call = <T>(command: string, args: unknown) => workbench.dispatch(command, args, context) as Promise<T>;

function vswin(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, '--backend', 'wasm', ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The run config both doors train: 6 frames every 2, short side 28, 24-px crops (the small preset's defaults are 8, 4, 64, 64). */
function runConfig(): Record<string, unknown> {
  return {
    model: { variant: 'micro', num_classes: 3, drop_path_rate: 0, head_dropout: 0 },
    data: {
      train_ann: data.annotations.train,
      val_ann: data.annotations.val,
      root: data.root,
      classes: data.annotations.labelMap,
      pipeline: { preset: 'small', clip_len: 6, frame_interval: 2, short_side: 28, crop_size: 24 },
      workers: 1,
    },
    optimizer: { lr: 2e-3, weight_decay: 0.02, paramwise: 'none' },
    schedule: { warmup_epochs: 0.5 },
    epochs: 2,
    batch_size: 4,
    seed: 5,
    checkpoint: { keep_last: 2, save_best: false },
  };
}

type CliEvaluation = { report: EvaluationReport; predictions: VideoPrediction[] };
const cliEvaluations = new Map<string, CliEvaluation>();

/** The CLI door's evaluation of a checkpoint on the validation list, single clip (run once per file). */
function cliEval(checkpoint: string): CliEvaluation {
  const known = cliEvaluations.get(checkpoint);
  if (known) return known;
  const result = vswin([
    'eval',
    '--checkpoint',
    checkpoint,
    '--ann',
    data.annotations.val,
    '--root',
    data.root,
    '--views',
    '1x1',
    '--home',
    home,
    '--json',
  ]);
  expect(result.code, result.stderr).toBe(0);
  const parsed = JSON.parse(result.stdout) as CliEvaluation[];
  expect(parsed).toHaveLength(1);
  cliEvaluations.set(checkpoint, parsed[0]);
  return parsed[0];
}

let cliCheckpoint: string;
let serviceCheckpoint: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'vswin-doors-'));
  home = join(dir, 'home');
  data = await generateSyntheticDataset({
    outDir: join(dir, 'data'),
    classes: 3,
    perClass: 6,
    seed: 11,
    frames: 16,
    size: 32,
    speed: 1,
    square: 'solid',
    valFraction: 0.5,
  });
  const configFile = join(dir, 'run.json');
  writeFileSync(configFile, JSON.stringify(runConfig()));
  const trained = vswin(['train', configFile, '--home', home, '--name', 'from-cli']);
  expect(trained.code, trained.stderr).toBe(0);
  workbench = new Workbench({ home, version: 'test', mediaUrl: (path) => `/media?path=${encodeURIComponent(path)}` });
  const { runId } = await call<{ runId: string }>('train.start', { config: runConfig(), name: 'from-service' });
  expect((await workbench.training.wait(runId))?.status).toBe('completed');
  const registry = Registry.open(home);
  try {
    const lastOf = (name: string) => {
      const run = registry.listRuns().find((r) => r.name === name);
      if (!run) throw new Error(`no run ${name}`);
      return registry.checkpoints(run.id).at(-1)!.path;
    };
    cliCheckpoint = lastOf('from-cli');
    serviceCheckpoint = lastOf('from-service');
  } finally {
    registry.close();
  }
}, 600_000);

afterAll(async () => {
  await workbench?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('one training entry behind both doors', () => {
  it('gives bit-identical weights and the same registry rows for the same config, seed and backend', () => {
    const registry = Registry.open(home);
    try {
      const runs = ['from-cli', 'from-service'].map((name) => registry.listRuns().find((r) => r.name === name)!);
      const [cli, service] = runs;
      // Everything but identity, times, process and the config's source file (the service's came from a form).
      const row = (run: (typeof runs)[number]) => {
        const {
          id: _id,
          name: _name,
          runDir: _dir,
          configPath: _path,
          createdAt: _c,
          startedAt: _s,
          finishedAt: _f,
          heartbeatAt: _h,
          pid: _p,
          ...rest
        } = run;
        return rest;
      };
      expect(row(service)).toEqual(row(cli));
      expect(cli.datasetId).not.toBeNull();
      expect(cli.gitCommit).not.toBeNull();
      expect(cli).toMatchObject({ status: 'completed', backend: 'wasm', seed: 5, epochsDone: 2 });
      expect(registry.metrics(service.id)).toEqual(registry.metrics(cli.id));
      expect(registry.metrics(cli.id).length).toBeGreaterThan(0);
      const checkpointRows = (runId: string) =>
        registry.checkpoints(runId).map(({ epoch, iteration, reasons, metricName, metricValue }) => ({
          epoch,
          iteration,
          reasons,
          metricName,
          metricValue,
        }));
      expect(checkpointRows(service.id)).toEqual(checkpointRows(cli.id));
      // config.json in both run folders, the same resolved config.
      for (const run of runs) expect(JSON.parse(readFileSync(join(run.runDir, 'config.json'), 'utf8'))).toEqual(cli.config);
      // The weights, tensor by tensor, bit for bit.
      const weights = [cliCheckpoint, serviceCheckpoint].map((file) => loadCheckpoint(file).stateDict);
      expect([...weights[1].keys()]).toEqual([...weights[0].keys()]);
      for (const [key, tensor] of weights[0]) {
        const other = weights[1].get(key)!;
        expect(
          Buffer.from(other.data.buffer, other.data.byteOffset, other.data.byteLength).equals(
            Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
          ),
          key,
        ).toBe(true);
      }
    } finally {
      registry.close();
    }
  });
});

describe('the CLI and the service on the same checkpoints', () => {
  it(
    'give equal top-1, equal class names and equal per-video predictions',
    async () => {
      const comparison = await call<Comparison>('compare.checkpoints', {
        checkpoints: [cliCheckpoint, serviceCheckpoint],
        annFile: data.annotations.val,
        root: data.root,
      });
      expect(comparison.classNames).toEqual(data.classes);
      // Both checkpoints through the CLI door, the service's one without --config.
      for (const [k, checkpoint] of [cliCheckpoint, serviceCheckpoint].entries()) {
        const cli = cliEval(checkpoint);
        const service = comparison.checkpoints[k];
        expect(cli.report.classNames, checkpoint).toEqual(data.classes);
        expect(service.top1, checkpoint).toBe(cli.report.metrics.top1);
        expect(service.top5, checkpoint).toBe(cli.report.metrics.top5);
        expect(service.meanClassAccuracy, checkpoint).toBe(cli.report.metrics.meanClassAccuracy);
        expect(service.confusion, checkpoint).toEqual(cli.report.confusion);
        expect(cli.predictions.map((p) => p.index)).toEqual(cli.predictions.map((_, i) => i));
        expect(service.predictions, checkpoint).toEqual(cli.predictions.map((p) => p.topClasses[0]));
        expect(comparison.videos.map((v) => v.label)).toEqual(cli.predictions.map((p) => p.label));
      }
    },
    SLOW,
  );

  it(
    'name the predicted classes of one video alike in Try a video, the attention view and vswin eval',
    async () => {
      const cli = cliEval(serviceCheckpoint);
      for (const index of [0, cli.predictions.length - 1]) {
        const video = join(data.root, cli.predictions[index].video);
        const expected = cli.predictions[index].topClasses.map((c) => data.classes[c]);
        const prediction = await call<Prediction>('video.predict', { checkpoint: serviceCheckpoint, video });
        expect(prediction.top5.map((p) => p.label)).toEqual(expected);
        expect(prediction.top5.map((p) => p.score)).toEqual(cli.predictions[index].topScores.map((s) => expect.closeTo(s, 5)));
        const view = await call<AttentionView>('attention.view', { checkpoint: serviceCheckpoint, video, stage: 0, block: 0 });
        // The clip the model saw: the checkpoint's 6 frames at 24 px, not a default pipeline's.
        expect(view.clip).toEqual([6, 24, 24]);
        expect(view.top5.map((p) => p.label)).toEqual(expected);
      }
    },
    SLOW,
  );

  it(
    'read both earlier metadata shapes of the same weights as the current one',
    async () => {
      const loaded = loadCheckpoint(serviceCheckpoint);
      const current = loaded.metadata as Record<string, unknown> & { pipeline: Record<string, unknown> };
      const pipeline = current.pipeline;
      const shapes = {
        // `vswin train` before the versioned schema.
        'cli-v1': {
          config: current.config,
          class_names: current.class_names,
          pipeline,
          project_version: '0.1.0',
          backend: 'wasm',
          run_id: current.run_id,
          epoch: current.epoch,
          step: current.step,
          metrics: current.metrics,
        },
        // The Training page (and the cluster pull) before the versioned schema.
        'service-v1': {
          config: current.config,
          classes: current.class_names,
          pipeline: {
            preset: pipeline.preset,
            clipLen: pipeline.clip_len,
            frameInterval: pipeline.frame_interval,
            cropSize: pipeline.crop_size,
            shortSide: pipeline.short_side,
          },
          runId: current.run_id,
          run_id: current.run_id,
          epoch: current.epoch,
          step: current.step,
          metrics: current.metrics,
        },
      };
      const reference = cliEval(serviceCheckpoint);
      const files: string[] = [];
      for (const [shape, metadata] of Object.entries(shapes)) {
        const file = join(dir, `${shape}.safetensors`);
        saveCheckpoint(file, loaded.stateDict, metadata as Record<string, unknown>, { keepInt64: true });
        files.push(file);
        const cli = cliEval(file);
        expect(cli.report.classNames, shape).toEqual(data.classes);
        expect(cli.report.metrics, shape).toEqual(reference.report.metrics);
        expect(
          cli.predictions.map((p) => p.topClasses),
          shape,
        ).toEqual(reference.predictions.map((p) => p.topClasses));
      }
      const comparison = await call<Comparison>('compare.checkpoints', {
        checkpoints: files,
        annFile: data.annotations.val,
        root: data.root,
      });
      expect(comparison.classNames).toEqual(data.classes);
      for (const evaluation of comparison.checkpoints) {
        expect(evaluation.top1).toBe(reference.report.metrics.top1);
        expect(evaluation.predictions).toEqual(reference.predictions.map((p) => p.topClasses[0]));
      }
    },
    SLOW,
  );

  it(
    'keeps the message naming --config for weights without workbench metadata',
    () => {
      const bare = join(dir, 'bare.safetensors');
      // A foreign safetensors file: the same tensors, no `format: vswin` metadata.
      writeSafetensors(bare, loadCheckpoint(serviceCheckpoint).stateDict, {}, { keepInt64: true });
      const result = vswin(['eval', '--checkpoint', bare, '--ann', data.annotations.val, '--root', data.root, '--home', home]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        'does not say which model it holds (no "config" metadata); pass --config with the run config',
      );
      const configFile = join(dir, 'run.json');
      const withConfig = vswin([
        'eval',
        '--checkpoint',
        bare,
        '--config',
        configFile,
        '--ann',
        data.annotations.val,
        '--root',
        data.root,
        '--views',
        '1x1',
        '--home',
        home,
        '--json',
      ]);
      expect(withConfig.code, withConfig.stderr).toBe(0);
      const reference = cliEval(serviceCheckpoint);
      const [evaluation] = JSON.parse(withConfig.stdout) as { report: EvaluationReport }[];
      expect(evaluation.report.metrics).toEqual(reference.report.metrics);
      expect(evaluation.report.classNames).toEqual(data.classes);
    },
    SLOW,
  );
});
