// CLI subcommands of the train area: train, eval, runs list|show|export, demo. Thin: parsing,
// progress display and printing; the work happens in core/app (and the registry it reads).
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { join, resolve } from 'node:path';
import { evaluateCheckpoint, type ProtocolResult } from '../../app/evaluate.ts';
import type { TrainEvent } from '../../protocol/train.ts';
import { Registry, workbenchHome, type RunRecord } from '../../registry/registry.ts';
import { loadRunConfig, parseViews, resolveConfig, type RunConfig } from '../../app/config.ts';
import { createRun, prepareResume, runTraining, TrainControl, type PreparedRun, type TrainResult } from '../../app/training.ts';
import { ensureDemoDataset, demoRunConfig } from '../../app/demo.ts';
import { sweepStaleTemporaries } from '../../files/atomic.ts';
import { startBackend } from './shared.ts';

const out = (line = '') => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);
const pct = (value: number | null | undefined) => (value === null || value === undefined ? '-' : `${(value * 100).toFixed(1)}%`);

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Renders the event stream: a progress bar on a terminal, periodic lines otherwise; epoch summaries always. */
function progressPrinter(): { onEvent: (event: TrainEvent) => void; stop: () => void } {
  const tty = Boolean(process.stderr.isTTY);
  let bar: cliProgress.SingleBar | null = null;
  let lastLine = 0;
  const stopBar = () => {
    bar?.stop();
    bar = null;
  };
  const onEvent = (event: TrainEvent) => {
    switch (event.kind) {
      case 'run-started':
        err(
          `run ${event.runId}: ${event.epochs} epochs x ${event.iterationsPerEpoch} iterations on ${event.backend}${event.resumed ? `, resumed at epoch ${event.startEpoch + 1} (iteration ${event.startIteration})` : ''}`,
        );
        break;
      case 'iteration': {
        const fields = {
          epoch: `${event.epoch + 1}`,
          loss: event.loss.toFixed(4),
          lr: event.lr.toExponential(2),
          speed: event.clipsPerSecond.toFixed(1),
          eta: duration(event.etaSeconds),
        };
        if (tty) {
          if (!bar) {
            bar = new cliProgress.SingleBar(
              {
                format: 'epoch {epoch} |{bar}| {value}/{total} loss {loss} lr {lr} {speed} clips/s ETA {eta}',
                stream: process.stderr,
                hideCursor: true,
                clearOnComplete: true,
              },
              cliProgress.Presets.shades_classic,
            );
            bar.start(event.iterationsPerEpoch, 0, fields);
          }
          bar.update(event.epochIteration + 1, fields);
        } else if (Date.now() - lastLine > 10_000 || event.epochIteration === 0) {
          lastLine = Date.now();
          err(
            `  epoch ${fields.epoch} iteration ${event.epochIteration + 1}/${event.iterationsPerEpoch} loss ${fields.loss} lr ${fields.lr} ${fields.speed} clips/s ETA ${fields.eta}`,
          );
        }
        break;
      }
      case 'epoch': {
        stopBar();
        const val = event.val
          ? ` | val loss ${event.val.loss.toFixed(4)} top1 ${pct(event.val.top1)} top5 ${pct(event.val.top5)} mean class ${pct(event.val.meanClassAccuracy)}`
          : '';
        out(
          `epoch ${event.epoch + 1}/${event.epochs}: train loss ${event.train.loss.toFixed(4)} top1 ${pct(event.train.top1)}${val} (${duration(event.seconds)}, ETA ${duration(event.etaSeconds)})`,
        );
        break;
      }
      case 'checkpoint':
        if (event.reasons.includes('best')) err(`  new best checkpoint: ${event.path}`);
        break;
      case 'paused':
        stopBar();
        err(`paused at iteration ${event.iteration}`);
        break;
      case 'resumed':
        err(`resumed at iteration ${event.iteration}`);
        break;
      case 'run-finished':
        stopBar();
        break;
      default: {
        const unknown: never = event;
        throw new Error(`unhandled event ${JSON.stringify(unknown)}`);
      }
    }
  };
  return { onEvent, stop: stopBar };
}

/** Ctrl-C / SIGTERM stop the run cleanly at the next iteration; a second Ctrl-C exits at once. */
function installStopHandlers(control: TrainControl): () => void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count += 1;
    if (count > 1) process.exit(130);
    err(`\n${signal}: stopping after the current iteration (again to quit at once)`);
    control.send({ kind: 'stop', reason: `stopped by ${signal}` });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

interface SessionResult {
  run: RunRecord;
  result: TrainResult;
  config: RunConfig;
}

/** Creates (or resumes) the run and trains it here, through the application layer the service uses too. */
async function trainWithProgress(options: {
  config: RunConfig | null;
  configPath: string | null;
  home: string;
  name?: string;
  resume?: string;
  backend: string;
}): Promise<SessionResult> {
  for (const file of sweepStaleTemporaries(options.home)) err(`removed ${file}, left by an interrupted write`);
  const registry = Registry.open(options.home);
  const control = new TrainControl();
  const removeHandlers = installStopHandlers(control);
  const printer = progressPrinter();
  try {
    let prepared: PreparedRun;
    if (options.resume) prepared = prepareResume(registry, options.resume);
    else {
      if (!options.config) throw new Error('a run config is needed to start a run');
      prepared = createRun(registry, {
        home: options.home,
        config: options.config,
        configPath: options.configPath,
        name: options.name,
        backend: options.backend,
      });
    }
    prepared.notes.forEach(err);
    const result = await runTraining({
      registry,
      prepared,
      backend: options.backend,
      control,
      onEvent: printer.onEvent,
      onNote: err,
    });
    return { run: registry.requireRun(prepared.run.id), result, config: prepared.config };
  } finally {
    printer.stop();
    removeHandlers();
    registry.close();
  }
}

function printTrainResult(session: SessionResult, home: string): void {
  const { run, result } = session;
  out('');
  out(`run ${run.id} ${result.status} after ${result.epochsDone}/${run.epochs} epochs in ${duration(result.seconds)}`);
  if (result.message) out(`  ${result.message}`);
  if (result.lastVal)
    out(
      `  last validation: top1 ${pct(result.lastVal.top1)}, top5 ${pct(result.lastVal.top5)}, mean class accuracy ${pct(result.lastVal.meanClassAccuracy)}`,
    );
  if (result.bestCheckpoint)
    out(`  best checkpoint (${session.config.evaluation.metric} ${pct(result.bestMetric)}): ${result.bestCheckpoint}`);
  if (result.lastCheckpoint) out(`  last checkpoint: ${result.lastCheckpoint}`);
  if (result.skipped > 0) out(`  skipped samples: ${result.skipped} (unreadable or unusable videos; listed by vswin runs show)`);
  out(
    `  registry: ${join(home, 'registry.sqlite')}; details: vswin runs show ${run.id}${home === workbenchHome() ? '' : ` --home ${home}`}`,
  );
  if (result.status !== 'completed') process.exitCode = result.status === 'failed' ? 1 : 130;
}

function printEvaluations(results: ProtocolResult[]): void {
  out('protocol          top1     top5     mean class   videos');
  for (const { report } of results) {
    const name = `${report.views.clips} clip${report.views.clips > 1 ? 's' : ''} x ${report.views.crops} crop${report.views.crops > 1 ? 's' : ''}`;
    out(
      `${name.padEnd(16)}  ${pct(report.metrics.top1).padStart(6)}   ${pct(report.metrics.top5).padStart(6)}   ${pct(report.metrics.meanClassAccuracy).padStart(10)}   ${report.metrics.count}`,
    );
  }
  const last = results.at(-1);
  if (last && last.report.classNames.length <= 20) {
    out('per class (last protocol): precision / recall / videos');
    last.report.classNames.forEach((name, c) =>
      out(
        `  ${name.padEnd(20)} ${pct(last.report.perClass.precision[c]).padStart(6)} / ${pct(last.report.perClass.recall[c]).padStart(6)} / ${last.report.perClass.support[c]}`,
      ),
    );
  }
}

function describeRun(run: RunRecord): string {
  return `${run.id}  ${run.status.padEnd(11)} ${`${run.epochsDone}/${run.epochs}`.padStart(7)}  ${run.backend.padEnd(10)} ${run.createdAt.slice(0, 19).replace('T', ' ')}  ${run.name}`;
}

export function registerTrainCommands(program: Command): void {
  program
    .command('train')
    .description('train a Video Swin from a run config (JSON; may "extends" a preset such as k400-swin-t)')
    .argument('<config>', 'run config JSON file')
    .option('--home <dir>', 'workbench home holding the registry and runs (default $VSWIN_HOME or ~/.vswin)')
    .option('--name <name>', 'name of the run (default: the config file name)')
    .option('--resume <runId>', 'continue an interrupted or stopped run from its last checkpoint')
    .action(async (configPath: string, options: { home?: string; name?: string; resume?: string }, command: Command) => {
      const home = workbenchHome(options.home);
      const config = options.resume ? null : loadRunConfig(configPath);
      if (options.resume) err(`resuming ${options.resume} with its stored config (${configPath} is not re-read)`);
      const backend = await startBackend(command);
      const session = await trainWithProgress({
        config,
        configPath: resolve(configPath),
        home,
        name: options.name,
        resume: options.resume,
        backend: backend.name,
      });
      printTrainResult(session, home);
    });

  program
    .command('eval')
    .description(
      'evaluate a checkpoint: single clip and multi-view (softmax averaged), metrics and per-video predictions stored in the registry',
    )
    .requiredOption('--checkpoint <file>', 'weights (.safetensors from vswin train or the workbench, or an official .pth)')
    .option(
      '--config <file>',
      'run config giving the model, pipeline and class names (needed for checkpoints that do not record them, e.g. official .pth)',
    )
    .requiredOption('--ann <file>', 'annotation file (path label per line)')
    .requiredOption('--root <dir>', 'folder the annotation paths are relative to')
    .option(
      '--views <CLIPSxCROPS>',
      "multi-view protocol, e.g. 4x3 (K400) or 1x3 (SSv2); default the run's test views (pipeline test_clips x test_crops), else 1x1",
    )
    .option('--home <dir>', 'workbench home (default $VSWIN_HOME or ~/.vswin)')
    .option('--json', 'print the reports and per-video predictions as JSON')
    .action(
      async (
        options: {
          checkpoint: string;
          config?: string;
          ann: string;
          root: string;
          views?: string;
          home?: string;
          json?: boolean;
        },
        command: Command,
      ) => {
        const config = options.config ? loadRunConfig(options.config) : null;
        const views = options.views ? parseViews(options.views) : null;
        await startBackend(command, options.json);
        const results = await evaluateCheckpoint({
          checkpoint: resolve(options.checkpoint),
          config,
          annFile: resolve(options.ann),
          root: resolve(options.root),
          views,
          home: workbenchHome(options.home),
          onProgress: (protocol, videos, total) => {
            if (process.stderr.isTTY) process.stderr.write(`\r  ${protocol.clips}x${protocol.crops}: ${videos}/${total} videos`);
          },
        });
        if (process.stderr.isTTY) err('');
        if (options.json) {
          out(JSON.stringify(results, null, 2));
          return;
        }
        printEvaluations(results);
        out(`stored as evaluation${results.length > 1 ? 's' : ''} ${results.map((r) => r.evaluationId).join(', ')}`);
      },
    );

  const runs = program.command('runs').description('the run registry: list, show, export');
  runs
    .command('list')
    .description('every run, newest first')
    .option('--home <dir>', 'workbench home (default $VSWIN_HOME or ~/.vswin)')
    .option('--json', 'print JSON')
    .action((options: { home?: string; json?: boolean }) => {
      const registry = Registry.open(workbenchHome(options.home));
      try {
        const list = registry.listRuns();
        if (options.json) {
          out(JSON.stringify(list, null, 2));
          return;
        }
        if (list.length === 0) {
          out(`no runs yet in ${registry.file}`);
          return;
        }
        out('id                    status      epochs  backend    created              name');
        list.forEach((run) => out(describeRun(run)));
      } finally {
        registry.close();
      }
    });
  runs
    .command('show')
    .description('a run: config, status, epoch metrics, checkpoints, evaluations')
    .argument('<runId>')
    .option('--home <dir>', 'workbench home (default $VSWIN_HOME or ~/.vswin)')
    .option('--json', 'print JSON')
    .action((runId: string, options: { home?: string; json?: boolean }) => {
      const registry = Registry.open(workbenchHome(options.home));
      try {
        const run = registry.requireRun(runId);
        const metrics = registry.epochMetrics(runId);
        const checkpoints = registry.checkpoints(runId);
        const evaluations = registry.evaluations(runId);
        const skipped = registry.skippedSamples(runId);
        if (options.json) {
          out(JSON.stringify({ run, epochMetrics: metrics, checkpoints, evaluations, skippedSamples: skipped }, null, 2));
          return;
        }
        out(`run ${run.id} "${run.name}": ${run.status}${run.message ? ` (${run.message})` : ''}`);
        out(
          `  epochs ${run.epochsDone}/${run.epochs}, iteration ${run.iteration}; backend ${run.backend}; version ${run.projectVersion}${run.gitCommit ? ` (${run.gitCommit})` : ''}; seed ${run.seed}`,
        );
        out(`  created ${run.createdAt}; started ${run.startedAt ?? '-'}; finished ${run.finishedAt ?? '-'}`);
        out(`  folder ${run.runDir}`);
        if (skipped.length) {
          const epochs = new Set(skipped.map((sample) => sample.epoch)).size;
          out(`  skipped samples: ${skipped.length} over ${epochs} epoch${epochs === 1 ? '' : 's'}`);
          for (const sample of skipped.slice(0, 10))
            out(`    epoch ${sample.epoch} ${sample.split}: ${sample.path}: ${sample.reason}`);
          if (skipped.length > 10) out(`    ... ${skipped.length - 10} more (--json lists all)`);
        }
        const byEpoch = new Map<number, Record<string, number | null>>();
        for (const m of metrics) byEpoch.set(m.step, { ...(byEpoch.get(m.step) ?? {}), [`${m.split}_${m.name}`]: m.value });
        if (byEpoch.size) {
          out('  epoch  train loss  train top1  val loss  val top1  val top5  val mean class');
          for (const [epoch, row] of byEpoch) {
            const f = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(4));
            out(
              `  ${String(epoch).padStart(5)}  ${f(row.train_loss).padStart(10)}  ${pct(row.train_top1).padStart(10)}  ${f(row.val_loss).padStart(8)}  ${pct(row.val_top1).padStart(8)}  ${pct(row.val_top5).padStart(8)}  ${pct(row.val_mean_class_accuracy).padStart(14)}`,
            );
          }
        }
        for (const c of checkpoints)
          out(
            `  checkpoint epoch ${c.epoch} [${c.reasons.join(', ')}]${c.metricValue !== null ? ` ${c.metricName} ${pct(c.metricValue)}` : ''}: ${c.path}`,
          );
        for (const e of evaluations)
          out(
            `  evaluation ${e.id} ${e.clips}x${e.crops} views on ${e.annFile}: top1 ${pct(e.top1)} top5 ${pct(e.top5)} mean class ${pct(e.meanClassAccuracy)} (${e.count} videos)`,
          );
        out('  config:');
        out(JSON.stringify(run.config, null, 2).replace(/^/gm, '    '));
      } finally {
        registry.close();
      }
    });
  runs
    .command('export')
    .description('write runs, metrics and evaluations as CSV (OUT, OUT-metrics.csv, OUT-evaluations.csv)')
    .requiredOption('--csv <out>', 'CSV file for the runs; metrics and evaluations go beside it')
    .option('--home <dir>', 'workbench home (default $VSWIN_HOME or ~/.vswin)')
    .action((options: { csv: string; home?: string }) => {
      const registry = Registry.open(workbenchHome(options.home));
      try {
        for (const file of registry.exportCsv(resolve(options.csv))) out(`wrote ${file}`);
      } finally {
        registry.close();
      }
    });

  program
    .command('demo')
    .description('generate a synthetic motion dataset, train a small Video Swin on it, evaluate it and print the results')
    .option('--home <dir>', 'workbench home (default $VSWIN_HOME or ~/.vswin)')
    .action(async (options: { home?: string }, command: Command) => {
      await runDemo(workbenchHome(options.home), command);
    });
}

/** `vswin demo`: the demo recipe of core/app/demo.ts (the workbench's first run is the same), then its evaluation. */
async function runDemo(home: string, command: Command): Promise<void> {
  const started = Date.now();
  const dataset = await ensureDemoDataset(home, {}, err);
  err(`demo dataset: ${dataset.trainAnn}`);
  const config = resolveConfig(demoRunConfig(dataset), home, 'demo run config');
  const backend = await startBackend(command);
  const session = await trainWithProgress({ config, configPath: null, home, name: 'demo', backend: backend.name });
  printTrainResult(session, home);
  if (session.result.status !== 'completed' || !session.result.bestCheckpoint) return;
  out('');
  out('evaluating the best checkpoint on the validation videos:');
  const results = await evaluateCheckpoint({
    checkpoint: session.result.bestCheckpoint,
    config: null,
    annFile: dataset.valAnn as string,
    root: dataset.root,
    views: null,
    home,
  });
  printEvaluations(results);
  out('');
  out(
    `demo finished in ${duration((Date.now() - started) / 1000)}: run ${session.run.id}, val top-1 ${pct(session.result.lastVal?.top1)} ` +
      `at the last epoch (${pct(results.at(-1)!.report.metrics.top1)} for the best checkpoint over ${results.at(-1)!.report.views.clips} clips)`,
  );
  out(`next: vswin runs show ${session.run.id}${home === workbenchHome() ? '' : ` --home ${home}`}`);
}
