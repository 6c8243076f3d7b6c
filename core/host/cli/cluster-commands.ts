// CLI of "beyond one machine": export a bundle, configure clusters, submit runs, follow jobs.
import type { Command } from 'commander';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildBundle, writeBundle } from '../../cluster/bundle.ts';
import { parseDecoder } from '../../cluster/bundle-data.ts';
import { ClusterStore } from '../../cluster/store.ts';
import {
  cancelJob,
  checkCluster,
  cloneSubmission,
  createBackend,
  prepareSubmission,
  pullCheckpoint,
  resumeJob,
  submitRun,
  syncActiveJobs,
  syncJob,
} from '../../cluster/tracking.ts';
import type { LogRecord } from '../../cluster/log-parser.ts';
import type { ClusterJob, ClusterSettingsInput, EngineFlavor, PreflightReport } from '../../protocol/cluster.ts';
import { finishedJobStates } from '../../protocol/cluster.ts';
import { Registry, workbenchHome } from '../../registry/registry.ts';
import { loadRunConfig, parseRunConfig, type RunConfig } from '../../app/config.ts';
import { intOption } from './shared.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const homeOption = ['--home <dir>', 'workbench home holding the registry (default $VSWIN_HOME or ~/.vswin)'] as const;

function flavorOption(value: string): EngineFlavor {
  if (value !== '0.x' && value !== '1.x')
    throw new Error(`--flavor: expected "0.x" (official Video Swin repo) or "1.x" (mmaction2 1.x), received "${value}"`);
  return value;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function withRegistry<T>(home: string | undefined, action: (registry: Registry) => Promise<T> | T): Promise<T> {
  const registry = Registry.open(workbenchHome(home));
  return Promise.resolve()
    .then(() => action(registry))
    .finally(() => registry.close());
}

/** A run config file, or the config of a run in the registry. */
function configOf(
  source: string,
  home: string | undefined,
): { config: RunConfig; configPath: string | null; runId: string | null } {
  if (existsSync(source)) return { config: loadRunConfig(source), configPath: resolve(source), runId: null };
  const registry = Registry.open(workbenchHome(home));
  try {
    const run = registry.getRun(source);
    if (!run) throw new Error(`"${source}" is neither a run config file nor a run id in ${registry.file}`);
    return { config: parseRunConfig(run.config, `config of run ${run.id}`), configPath: run.configPath, runId: run.id };
  } finally {
    registry.close();
  }
}

function printReport(report: PreflightReport): void {
  for (const check of report.checks) out(`  ${check.ok ? 'ok  ' : 'FAIL'} ${check.name.padEnd(12)} ${check.detail}`);
  out(report.ok ? `${report.cluster}: ready` : `${report.cluster}: not ready (fix the FAIL lines above)`);
}

function describeJob(job: ClusterJob): string {
  const state = job.state === 'pending' && job.reason ? `pending (${job.reason})` : job.state;
  return `${job.runId}  ${job.cluster}#${job.jobId}  ${state}${job.exitCode !== null && job.state !== 'completed' ? ` exit ${job.exitCode}` : ''}  ${job.gpus}x${job.nodes} GPU  ${job.flavor}  attempt ${job.attempt}${job.message ? `  ${job.message}` : ''}`;
}

function describeRecord(record: LogRecord): string {
  const values = Object.entries(record.values)
    .filter(([key]) =>
      ['loss', 'lr', 'top1_acc', 'top5_acc', 'acc/top1', 'acc/top5', 'mean_class_accuracy', 'acc/mean1'].includes(key),
    )
    .map(([key, value]) => `${key} ${Number.isFinite(value) ? Number(value.toPrecision(5)) : value}`)
    .join('  ');
  return record.kind === 'train'
    ? `train epoch ${record.epoch} iter ${record.iteration}  ${values}`
    : `val   epoch ${record.epoch}  ${values}`;
}

export function registerClusterCommands(program: Command): void {
  program
    .command('export')
    .description(
      'write an mmaction2 run bundle (config.py over the official config, annotations, sbatch and torchrun scripts, manifest)',
    )
    .argument('<run-or-config>', 'a run config JSON file or a run id of the registry')
    // Not a requiredOption: commander checks those on every subcommand too (`vswin export onnx` has no --out).
    .option('--out <dir>', 'bundle folder to write (required)')
    .option(
      '--flavor <flavor>',
      'mmaction2 generation: 0.x (official Video Swin repo) or 1.x',
      flavorOption,
      '1.x' as EngineFlavor,
    )
    .option('--gpus <n>', 'GPUs per node', intOption('--gpus', 1), 8)
    .option('--nodes <n>', 'nodes', intOption('--nodes', 1), 1)
    .option('--data-root <dir>', "dataset folder on the cluster (default: the config's data.root)")
    .option(
      '--engine-dir <dir>',
      'engine checkout on the cluster (default ~/Video-Swin-Transformer for 0.x, ~/mmaction2 for 1.x)',
    )
    .option('--python <path>', 'python of the engine environment on the cluster', 'python')
    .option('--partition <name>', 'Slurm partition')
    .option('--cpus-per-task <n>', 'CPUs per GPU process', intOption('--cpus-per-task', 1), 4)
    .option('--time <limit>', 'Slurm time limit, e.g. 2-00:00:00')
    .option('--log-interval <n>', "log every N iterations (default: the official config's)", intOption('--log-interval', 1))
    .option('--decoder <name>', 'video decoder of the pipelines: decord, pyav or opencv', 'decord')
    .option('--no-amp', 'train without mixed precision (CPUs, GPUs without fp16)')
    .option(...homeOption)
    .action(
      (
        source: string,
        options: {
          out?: string;
          flavor: EngineFlavor;
          gpus: number;
          nodes: number;
          dataRoot?: string;
          engineDir?: string;
          python: string;
          partition?: string;
          cpusPerTask: number;
          time?: string;
          logInterval?: number;
          decoder: string;
          amp: boolean;
          home?: string;
        },
      ) => {
        if (!options.out) throw new Error('export: --out <dir> is required (the bundle folder to write)');
        const { config, runId } = configOf(source, options.home);
        const bundle = buildBundle(config, {
          flavor: options.flavor,
          gpus: options.gpus,
          nodes: options.nodes,
          runId,
          dataRoot: options.dataRoot ?? null,
          engineDir: options.engineDir,
          python: options.python,
          partition: options.partition ?? null,
          cpusPerTask: options.cpusPerTask,
          timeLimit: options.time ?? null,
          logInterval: options.logInterval ?? null,
          decoder: parseDecoder(options.decoder, '--decoder'),
          amp: options.amp,
        });
        const dir = resolve(options.out);
        writeBundle(bundle, dir);
        const m = bundle.manifest;
        out(`wrote ${bundle.files.length} files to ${dir}`);
        out(
          `  base config ${m.baseConfig} (${m.flavor}); ${m.worldSize} GPU process(es), global batch ${m.globalBatch}; LR ${m.baseLr} at batch ${m.referenceBatch} -> ${m.scaledLr}`,
        );
        out(`  ${m.trainVideos} training videos, ${m.itersPerEpoch} iterations per epoch, ${m.epochs} epochs`);
        for (const note of m.notes) out(`  note: ${note}`);
        out(`  submit on the cluster: cd <this folder> && sbatch job.sbatch   (or: bash launch-torchrun.sh on one machine)`);
      },
    );

  const cluster = program.command('cluster').description('clusters and GPU machines runs can be handed to (mmaction2 over SSH)');
  cluster
    .command('add')
    .description('add or replace a cluster (SSH uses your OpenSSH config and keys)')
    .argument('<name>', 'a short name, e.g. "lab"')
    .requiredOption('--host <destination>', 'SSH destination: user@host or a Host alias of ~/.ssh/config')
    .option('--kind <kind>', 'slurm (sbatch/squeue/scancel) or torchrun (one multi-GPU machine)', 'slurm')
    .option('--port <n>', 'SSH port', intOption('--port', 1))
    .option('--identity <file>', 'SSH private key')
    .option('--ssh-config <file>', 'an OpenSSH config file other than ~/.ssh/config')
    .option('--partition <name>', "Slurm partition (default: the cluster's default)")
    .option('--engine-dir <dir>', 'mmaction2 / Video-Swin-Transformer checkout on the cluster', '~/mmaction2')
    .option('--python <path>', 'python of the engine environment', 'python')
    .option('--remote-root <dir>', 'folder on the cluster for run folders', '~/vswin-runs')
    .option('--data-root <dir>', 'dataset folder on the cluster')
    .option('--flavor <flavor>', 'mmaction2 generation: 0.x or 1.x', flavorOption, '1.x' as EngineFlavor)
    .option('--gpus-per-node <n>', 'GPUs per node', intOption('--gpus-per-node', 1), 8)
    .option('--cpus-per-task <n>', 'CPUs per GPU process', intOption('--cpus-per-task', 1), 4)
    .option('--time <limit>', 'Slurm time limit')
    .option('--setup <line>', 'shell line run before training, e.g. "conda activate mm" (repeatable)', collect, [] as string[])
    .option('--env <name=value>', 'environment variable for jobs (repeatable)', collect, [] as string[])
    .option('--torchrun <command>', 'torchrun command (kind torchrun)', 'torchrun')
    .option('--timeout <seconds>', 'deadline of each remote command', intOption('--timeout', 1), 60)
    .option('--decoder <name>', "video decoder of the bundles' pipelines: decord, pyav or opencv", 'decord')
    .option('--no-amp', 'train without mixed precision (CPUs, GPUs without fp16)')
    .option(...homeOption)
    .action((name: string, options: Record<string, unknown>) =>
      withRegistry(options.home as string | undefined, (registry) => {
        const environment: Record<string, string> = {};
        for (const pair of options.env as string[]) {
          const at = pair.indexOf('=');
          if (at <= 0) throw new Error(`--env: expected NAME=value, received "${pair}"`);
          environment[pair.slice(0, at)] = pair.slice(at + 1);
        }
        const input: ClusterSettingsInput = {
          name,
          kind: options.kind as ClusterSettingsInput['kind'],
          host: options.host as string,
          port: (options.port as number | undefined) ?? null,
          identityFile: (options.identity as string | undefined) ?? null,
          sshConfigFile: (options.sshConfig as string | undefined) ?? null,
          partition: (options.partition as string | undefined) ?? null,
          engineDir: options.engineDir as string,
          python: options.python as string,
          remoteRoot: options.remoteRoot as string,
          dataRoot: (options.dataRoot as string | undefined) ?? null,
          flavor: options.flavor as EngineFlavor,
          gpusPerNode: options.gpusPerNode as number,
          cpusPerTask: options.cpusPerTask as number,
          timeLimit: (options.time as string | undefined) ?? null,
          setup: options.setup as string[],
          environment,
          torchrun: options.torchrun as string,
          decoder: parseDecoder(options.decoder, '--decoder'),
          amp: options.amp as boolean,
          commandTimeoutSeconds: options.timeout as number,
        };
        const saved = new ClusterStore(registry).saveCluster(input);
        out(
          `saved cluster ${saved.name} (${saved.kind} via ssh ${saved.host}); check it with: vswin cluster check ${saved.name}`,
        );
      }),
    );
  cluster
    .command('list')
    .description('list the configured clusters')
    .option(...homeOption)
    .action((options: { home?: string }) =>
      withRegistry(options.home, (registry) => {
        const clusters = new ClusterStore(registry).listClusters();
        if (clusters.length === 0) out('no clusters; add one with: vswin cluster add NAME --host HOST');
        for (const c of clusters)
          out(
            `${c.name}  ${c.kind}  ssh ${c.host}${c.port ? `:${c.port}` : ''}  ${c.partition ? `partition ${c.partition}  ` : ''}${c.gpusPerNode} GPU/node  engine ${c.engineDir} (${c.flavor})  runs in ${c.remoteRoot}`,
          );
      }),
    );
  cluster
    .command('remove')
    .description('forget a cluster (its jobs stay in the registry)')
    .argument('<name>')
    .option(...homeOption)
    .action((name: string, options: { home?: string }) =>
      withRegistry(options.home, (registry) => {
        if (!new ClusterStore(registry).removeCluster(name)) throw new Error(`no cluster "${name}"`);
        out(`removed cluster ${name}`);
      }),
    );
  cluster
    .command('check')
    .description(
      'preflight: SSH, scheduler, partition, GPUs, mmaction2 import (and with --config: base config, data root, videos)',
    )
    .argument('<name>')
    .option('--config <file>', 'also check what this run config needs on the cluster')
    .option(...homeOption)
    .action((name: string, options: { config?: string; home?: string }) =>
      withRegistry(options.home, async (registry) => {
        const store = new ClusterStore(registry);
        const prepared = options.config
          ? prepareSubmission(store, {
              config: loadRunConfig(options.config),
              configPath: resolve(options.config),
              cluster: name,
              gpus: 1,
            })
          : null;
        const report = await checkCluster(store, name, prepared);
        printReport(report);
        if (!report.ok) process.exitCode = 1;
      }),
    );

  program
    .command('submit')
    .description(
      'hand a run to mmaction2 on a cluster: preflight, upload the bundle, sbatch (or torchrun), track it in the registry',
    )
    .argument('<config>', 'run config JSON file')
    .requiredOption('--cluster <name>', 'a cluster added with `vswin cluster add`')
    .option('--gpus <n>', "GPUs per node (default: the cluster's)", intOption('--gpus', 1))
    .option('--nodes <n>', 'nodes', intOption('--nodes', 1), 1)
    .option('--flavor <flavor>', "mmaction2 generation (default: the cluster's)", flavorOption)
    .option('--name <name>', 'run name')
    .option('--data-root <dir>', "dataset folder on the cluster (default: the cluster's, else the config's)")
    .option('--log-interval <n>', 'log every N iterations', intOption('--log-interval', 1))
    .option('--decoder <name>', "video decoder: decord, pyav or opencv (default: the cluster's)")
    .option('--no-amp', "train without mixed precision (default: the cluster's setting)")
    .option('--dry-run', 'print the generated files and stop')
    .option('--no-check', 'skip the preflight checks')
    .option(...homeOption)
    .action(
      (
        file: string,
        options: {
          cluster: string;
          gpus?: number;
          nodes: number;
          flavor?: EngineFlavor;
          name?: string;
          dataRoot?: string;
          logInterval?: number;
          dryRun?: boolean;
          decoder?: string;
          amp: boolean;
          check: boolean;
          home?: string;
        },
      ) =>
        withRegistry(options.home, async (registry) => {
          const store = new ClusterStore(registry);
          const prepared = prepareSubmission(store, {
            config: loadRunConfig(file),
            configPath: resolve(file),
            cluster: options.cluster,
            gpus: options.gpus,
            nodes: options.nodes,
            flavor: options.flavor,
            name: options.name,
            dataRoot: options.dataRoot ?? null,
            logInterval: options.logInterval ?? null,
            decoder: options.decoder === undefined ? undefined : parseDecoder(options.decoder, '--decoder'),
            // commander gives true unless --no-amp: only the flag overrides the cluster's setting.
            amp: options.amp === false ? false : undefined,
          });
          if (options.dryRun) {
            for (const bundleFile of prepared.bundle.files) {
              if (bundleFile.path.startsWith('annotations/')) {
                out(`==> ${bundleFile.path} (${bundleFile.content.split('\n').filter(Boolean).length} lines)`);
                continue;
              }
              out(`==> ${bundleFile.path}`);
              if (bundleFile.localFile) out(`(written from ${bundleFile.localFile.path} when the bundle is uploaded)`);
              else out(bundleFile.content.trimEnd());
            }
            return;
          }
          if (options.check) {
            const report = await checkCluster(store, options.cluster, prepared);
            if (!report.ok) {
              printReport(report);
              throw new Error(`cluster ${options.cluster} is not ready; fix the checks above or pass --no-check`);
            }
          }
          const job = await submitRun(registry, prepared);
          out(
            `submitted run ${job.runId} to ${job.cluster} as job ${job.jobId} (${job.gpus} GPU x ${job.nodes} node, mmaction2 ${job.flavor}) in ${job.remoteDir}`,
          );
          out(`follow it with: vswin jobs log ${job.runId} --follow`);
        }),
    );

  const jobs = program.command('jobs').description('runs handed to clusters: state, log, cancel, resume, checkpoints');
  jobs
    .command('list')
    .description('list cluster runs (re-attaches and refreshes unfinished ones unless --offline)')
    .option('--offline', 'show the last known states without contacting the clusters')
    .option(...homeOption)
    .action((options: { offline?: boolean; home?: string }) =>
      withRegistry(options.home, async (registry) => {
        if (!options.offline)
          for (const result of await syncActiveJobs(registry))
            if (result.error) process.stderr.write(`vswin: ${result.runId}: ${result.error}\n`);
        const list = new ClusterStore(registry).listJobs();
        if (list.length === 0) out('no cluster jobs; submit one with: vswin submit CONFIG.json --cluster NAME');
        for (const job of list) out(describeJob(job));
      }),
    );
  jobs
    .command('log')
    .description('print the new lines of the engine log (and merge them into the registry)')
    .argument('<run>', 'run id or job id')
    .option('--follow', 'keep polling until the job ends')
    .option('--interval <seconds>', 'polling interval with --follow', intOption('--interval', 1), 5)
    .option('--output', "print the job's stdout/stderr file (slurm-<id>.out) tail instead")
    .option(...homeOption)
    .action((run: string, options: { follow?: boolean; interval: number; output?: boolean; home?: string }) =>
      withRegistry(options.home, async (registry) => {
        if (options.output) {
          const store = new ClusterStore(registry);
          const job = store.requireJob(run);
          out(await createBackend(store.requireCluster(job.cluster)).outputTail(job.jobId, job.remoteDir));
          return;
        }
        let lastState = '';
        for (;;) {
          const result = await syncJob(registry, run);
          for (const record of result.records) out(describeRecord(record));
          for (const problem of result.problems)
            process.stderr.write(`vswin: ${problem.file}:${problem.line}: ${problem.problem}\n`);
          const state = `${result.status.state}${result.status.message ? `: ${result.status.message}` : ''}`;
          if (state !== lastState) out(`-- job ${result.job.jobId} ${state}`);
          lastState = state;
          if (!options.follow || finishedJobStates.includes(result.status.state)) break;
          await new Promise((resolveWait) => setTimeout(resolveWait, options.interval * 1000));
        }
      }),
    );
  jobs
    .command('cancel')
    .description('cancel a job (scancel, or stop the torchrun launcher)')
    .argument('<run>', 'run id or job id')
    .option(...homeOption)
    .action((run: string, options: { home?: string }) =>
      withRegistry(options.home, async (registry) => {
        const result = await cancelJob(registry, run);
        out(`job ${result.job.jobId} of run ${result.job.runId}: ${result.status.state}`);
      }),
    );
  jobs
    .command('resume')
    .description('resubmit an ended run in its folder; the engine resumes from its last checkpoint')
    .argument('<run>', 'run id or job id')
    .option(...homeOption)
    .action((run: string, options: { home?: string }) =>
      withRegistry(options.home, async (registry) => {
        const job = await resumeJob(registry, run);
        out(`resubmitted run ${job.runId} as job ${job.jobId} (attempt ${job.attempt})`);
      }),
    );
  jobs
    .command('clone')
    .description('write the config of a cluster run to edit, and print the command that submits it again')
    .argument('<run>', 'run id or job id')
    .requiredOption('--out <file>', 'run config JSON to write')
    .option(...homeOption)
    .action((run: string, options: { out: string; home?: string }) =>
      withRegistry(options.home, (registry) => {
        const clone = cloneSubmission(registry, new ClusterStore(registry).requireJob(run).runId);
        const file = resolve(options.out);
        const temporary = `${file}.tmp-${process.pid}`;
        writeFileSync(temporary, `${JSON.stringify(clone.config, null, 2)}\n`);
        renameSync(temporary, file);
        out(
          `wrote ${file}; edit it, then: vswin submit ${file} --cluster ${clone.cluster} --gpus ${clone.gpus} --nodes ${clone.nodes} --flavor ${clone.flavor}`,
        );
      }),
    );
  jobs
    .command('pull')
    .description('download a checkpoint of a cluster run and register it (then compare it or explore attention like a local one)')
    .argument('<run>', 'run id or job id')
    .argument('[which]', 'file name, epoch number, "latest" or "best"', 'latest')
    .option('--list', 'only list the checkpoints on the cluster')
    .option(...homeOption)
    .action((run: string, which: string, options: { list?: boolean; home?: string }) =>
      withRegistry(options.home, async (registry) => {
        if (options.list) {
          const result = await syncJob(registry, run);
          if (result.checkpoints.length === 0) out('no checkpoint yet');
          for (const c of result.checkpoints)
            out(
              `${c.name}  ${c.kind}${c.epoch !== null ? ` epoch ${c.epoch}` : ''}  ${(c.bytes / 1e6).toFixed(1)} MB  ${c.modifiedAt}`,
            );
          return;
        }
        const pulled = await pullCheckpoint(registry, run, which);
        out(`pulled ${pulled.remote.path} -> ${pulled.localPath} (registered as checkpoint ${pulled.checkpointId})`);
        for (const note of pulled.notes) out(`  note: ${note}`);
      }),
    );
}
