// One interface for every place a run can be handed to: a Slurm cluster (sbatch/squeue/scontrol/
// scancel over SSH) or one multi-GPU machine (torchrun over SSH). Both read the engine's work dir
// the same way, so only submission, state and cancellation differ.
import type {
  Bundle,
  ClusterSettings,
  EngineFlavor,
  VideoDecoder,
  JobStatus,
  PreflightCheck,
  PreflightReport,
  RemoteCheckpoint,
} from '../protocol/cluster.ts';
import {
  RemoteError,
  remotePath,
  remoteQuote,
  runRemote,
  runRemoteChecked,
  sftpBatch,
  sftpQuote,
  type SshTarget,
} from './ssh.ts';
import { isEngineLog } from './log-parser.ts';
import { BASE_CONFIG_DIR } from './bundle.ts';
import { DECODERS, bundleFileData } from './bundle-data.ts';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, renameSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface PreflightRequest {
  flavor?: EngineFlavor;
  /** `configs/recognition/swin/<file>` of the bundle, checked under the engine folder. */
  baseConfig?: string;
  dataRoot?: string | null;
  /** A few video paths of the annotations (relative to the data root), checked on the cluster. */
  samplePaths?: string[];
  /** The decoder the bundle's pipelines use (default: the cluster's). */
  decoder?: VideoDecoder;
}

export interface LogChunk {
  /** Relative to the remote run folder. */
  path: string;
  offset: number;
  bytes: Uint8Array;
}

export interface WorkDirSnapshot {
  status: JobStatus;
  /** False when the remote folder does not exist (yet). */
  exists: boolean;
  logFiles: { path: string; bytes: number }[];
  chunks: LogChunk[];
  checkpoints: RemoteCheckpoint[];
}

export interface ClusterBackend {
  readonly settings: ClusterSettings;
  preflight(request?: PreflightRequest): Promise<PreflightReport>;
  /** Creates `remoteDir` (a leading ~ is the remote home), copies the bundle, returns the absolute folder. */
  upload(bundle: Bundle, remoteDir: string): Promise<string>;
  submit(remoteDir: string): Promise<string>;
  status(jobId: string, remoteDir: string): Promise<JobStatus>;
  cancel(jobId: string, remoteDir: string): Promise<void>;
  /** Reads `maxBytes` at most of a remote file from `offset`. */
  readFrom(path: string, offset: number, maxBytes: number): Promise<Uint8Array>;
  listCheckpoints(remoteDir: string): Promise<RemoteCheckpoint[]>;
  /** Downloads a remote file to `localPath` (atomically: a partial download never has the final name). */
  pull(remotePath: string, localPath: string): Promise<void>;
  /** The last lines the job printed (Slurm's slurm-<id>.out, torchrun.out), for failure messages. */
  outputTail(jobId: string, remoteDir: string): Promise<string>;
  /** Job state, new log bytes after the given offsets and the checkpoints, in one round trip. */
  snapshot(
    jobId: string,
    remoteDir: string,
    flavor: EngineFlavor,
    offsets: ReadonlyMap<string, number>,
    maxBytes?: number,
  ): Promise<WorkDirSnapshot>;
}

export const targetOf = (settings: ClusterSettings): SshTarget => ({
  host: settings.host,
  port: settings.port,
  identityFile: settings.identityFile,
  sshConfigFile: settings.sshConfigFile,
  connectTimeoutSeconds: settings.connectTimeoutSeconds,
});

const DEFAULT_CHUNK = 4 * 1024 * 1024;

/** Classifies checkpoint file names of both flavours. */
export function checkpointKind(name: string): { kind: RemoteCheckpoint['kind']; epoch: number | null } {
  let match = /^best_.*_epoch_(\d+)\.pth$/.exec(name);
  if (match) return { kind: 'best', epoch: Number(match[1]) };
  match = /^epoch_(\d+)\.pth$/.exec(name);
  if (match) return { kind: 'epoch', epoch: Number(match[1]) };
  if (name === 'latest.pth') return { kind: 'latest', epoch: null };
  return { kind: 'other', epoch: null };
}

/** Shell lines exporting the cluster's environment and running its setup lines. */
export function environmentLines(settings: ClusterSettings): string[] {
  return [
    ...Object.entries(settings.environment).map(([name, value]) => `export ${name}=${remoteQuote(value)}`),
    ...settings.setup,
  ];
}

/**
 * Preflight lines checking that the engine's Python imports the decoder of the pipelines (the job
 * would die on its first video otherwise), run in the engine folder like the engine check.
 */
export function decoderCheck(settings: ClusterSettings, decoder: VideoDecoder): string[] {
  const { module, pip, init } = DECODERS[decoder];
  const python = settings.python.replace(/[`$"\\]/g, '');
  return [
    `out=$(cd ${remotePath(settings.engineDir)} 2>&1 && ${settings.python} -c 'import ${module}; print(getattr(${module}, "__version__", "?"))' 2>&1); code=$?`,
    `if [ $code -eq 0 ]; then echo "CHECK decoder ok ${decoder} (${module} $(echo "$out" | tail -n1)) for ${init}"; else echo "CHECK decoder fail ${python} cannot import ${module}, which the ${decoder} decoder (${init}) needs: $(echo "$out" | tail -n1); install it (pip install ${pip}) or choose another decoder (decord, pyav, opencv)"; fi`,
  ];
}

export abstract class SshBackend implements ClusterBackend {
  readonly target: SshTarget;

  constructor(readonly settings: ClusterSettings) {
    this.target = targetOf(settings);
  }

  protected get timeout(): number {
    return this.settings.commandTimeoutSeconds;
  }

  /** Lines printing the scheduler's view of the job (each line starts with a tag parsed by parseStatus). */
  protected abstract statusScript(jobId: string): string[];
  protected abstract parseStatus(jobId: string, lines: string[]): JobStatus;
  /** Lines checking the scheduler and the GPUs, printing `CHECK <name> <ok|fail> <detail>`. */
  protected abstract schedulerChecks(): string[];
  protected abstract outputFile(jobId: string): string;
  abstract submit(remoteDir: string): Promise<string>;
  abstract cancel(jobId: string, remoteDir: string): Promise<void>;

  async preflight(request: PreflightRequest = {}): Promise<PreflightReport> {
    const checks: PreflightCheck[] = [];
    const report = (): PreflightReport => ({ cluster: this.settings.name, ok: checks.every((check) => check.ok), checks });
    try {
      const answer = await runRemoteChecked(this.target, 'echo "$(whoami)@$(hostname)"', {
        timeoutSeconds: this.settings.connectTimeoutSeconds + 10,
        what: 'ssh check',
      });
      checks.push({ name: 'ssh', ok: true, detail: `logged in as ${answer.toString('utf8').trim()}` });
    } catch (error) {
      checks.push({ name: 'ssh', ok: false, detail: (error as Error).message });
      return report();
    }
    const engine = remotePath(this.settings.engineDir);
    const check = (name: string, condition: string, okDetail: string, failDetail: string) =>
      `if ${condition}; then echo "CHECK ${name} ok ${okDetail}"; else echo "CHECK ${name} fail ${failDetail}"; fi`;
    const script = [
      ...environmentLines(this.settings),
      ...this.schedulerChecks(),
      `out=$(cd ${engine} 2>&1 && ${this.settings.python} -c 'import mmaction; print(mmaction.__version__)' 2>&1); code=$?`,
      `if [ $code -eq 0 ]; then echo "CHECK engine ok mmaction2 $(echo "$out" | tail -n1) in ${this.settings.engineDir.replace(/[`$"\\]/g, '')}"; else echo "CHECK engine fail cannot import mmaction with ${this.settings.python.replace(/[`$"\\]/g, '')} in ${this.settings.engineDir.replace(/[`$"\\]/g, '')}: $(echo "$out" | tail -n1)"; fi`,
      ...decoderCheck(this.settings, request.decoder ?? this.settings.decoder),
    ];
    if (request.baseConfig) {
      const base = request.baseConfig.startsWith(BASE_CONFIG_DIR)
        ? request.baseConfig
        : `${BASE_CONFIG_DIR}/${request.baseConfig}`;
      script.push(
        check(
          'base-config',
          `[ -f ${engine}/${remoteQuote(base)} ]`,
          `${base} found`,
          `${base} is missing under the engine folder (is it a ${request.flavor ?? ''} checkout?)`,
        ),
      );
    }
    if (request.dataRoot) {
      const root = remotePath(request.dataRoot);
      script.push(
        check(
          'data-root',
          `[ -d ${root} ]`,
          `${request.dataRoot.replace(/[`$"\\]/g, '')} exists`,
          `${request.dataRoot.replace(/[`$"\\]/g, '')} is not a folder on the cluster`,
        ),
      );
      const samples = (request.samplePaths ?? []).slice(0, 5);
      if (samples.length) {
        script.push('missing=""');
        for (const sample of samples)
          script.push(`[ -e ${root}/${remoteQuote(sample)} ] || missing="$missing ${sample.replace(/[`$"\\]/g, '')}"`);
        script.push(
          `if [ -z "$missing" ]; then echo "CHECK annotations ok ${samples.length} sample videos found under the data root"; else echo "CHECK annotations fail missing under the data root:$missing"; fi`,
        );
      }
    }
    try {
      const result = await runRemote(this.target, script.join('\n'), { timeoutSeconds: this.timeout, what: 'preflight' });
      for (const line of result.stdout.toString('utf8').split('\n')) {
        const match = /^CHECK (\S+) (ok|fail) ?(.*)$/.exec(line);
        if (match) checks.push({ name: match[1] as PreflightCheck['name'], ok: match[2] === 'ok', detail: match[3] });
      }
    } catch (error) {
      checks.push({ name: 'scheduler', ok: false, detail: (error as Error).message });
    }
    return report();
  }

  async upload(bundle: Bundle, remoteDir: string): Promise<string> {
    const directories = [...new Set(bundle.files.map((file) => dirname(file.path)).filter((dir) => dir !== '.'))];
    const made = await runRemoteChecked(
      this.target,
      [
        `mkdir -p ${remotePath(remoteDir)}`,
        `cd ${remotePath(remoteDir)}`,
        ...directories.map((dir) => `mkdir -p ${remoteQuote(dir)}`),
        'pwd -P',
      ].join(' && \\\n'),
      { timeoutSeconds: this.timeout, what: `creating ${remoteDir}` },
    );
    const absolute = made.toString('utf8').trim().split('\n').pop() ?? '';
    if (!absolute.startsWith('/'))
      throw new RemoteError(
        'command-failed',
        `creating ${remoteDir} on ${this.settings.host}: expected an absolute folder, received "${absolute}"`,
      );
    const local = mkdtempSync(join(tmpdir(), 'vswin-upload-'));
    try {
      const commands: string[] = [];
      for (const file of bundle.files) {
        const path = join(local, file.path);
        mkdirSync(dirname(path), { recursive: true });
        const data = bundleFileData(file);
        writeFileSync(path, typeof data === 'string' ? data : Buffer.concat(data));
        if (file.executable) chmodSync(path, 0o755);
        commands.push(`put -p ${sftpQuote(path)} ${sftpQuote(`${absolute}/${file.path}`)}`);
      }
      await sftpBatch(this.target, commands, { timeoutSeconds: this.timeout, what: 'uploading the bundle' });
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
    return absolute;
  }

  async status(jobId: string, remoteDir: string): Promise<JobStatus> {
    const result = await runRemote(
      this.target,
      [`cd ${remotePath(remoteDir)} 2>/dev/null`, ...this.statusScript(jobId)].join('\n'),
      { timeoutSeconds: this.timeout, what: `status of job ${jobId}` },
    );
    return this.parseStatus(jobId, result.stdout.toString('utf8').split('\n'));
  }

  async outputTail(jobId: string, remoteDir: string): Promise<string> {
    const result = await runRemote(
      this.target,
      `cd ${remotePath(remoteDir)} && tail -n 3 ${remoteQuote(this.outputFile(jobId))} 2>/dev/null | cut -c1-300`,
      {
        timeoutSeconds: this.timeout,
        what: `reading ${this.outputFile(jobId)}`,
      },
    );
    return result.stdout.toString('utf8').trim().split('\n').join(' | ');
  }

  async readFrom(path: string, offset: number, maxBytes: number): Promise<Uint8Array> {
    const result = await runRemoteChecked(this.target, `tail -c +${offset + 1} ${remotePath(path)} | head -c ${maxBytes}`, {
      timeoutSeconds: this.timeout,
      what: `reading ${path}`,
    });
    return new Uint8Array(result);
  }

  async listCheckpoints(remoteDir: string): Promise<RemoteCheckpoint[]> {
    const snapshot = await this.snapshot('', remoteDir, '1.x', new Map(), 0);
    return snapshot.checkpoints;
  }

  async pull(remote: string, localPath: string): Promise<void> {
    mkdirSync(dirname(localPath), { recursive: true });
    const partial = `${localPath}.part-${process.pid}`;
    rmSync(partial, { force: true });
    try {
      // A checkpoint is hundreds of MB: allow a generous deadline beyond the command timeout.
      await sftpBatch(this.target, [`get ${sftpQuote(remote)} ${sftpQuote(partial)}`], {
        timeoutSeconds: Math.max(600, this.timeout),
        what: `downloading ${remote}`,
      });
      statSync(partial);
      renameSync(partial, localPath);
    } finally {
      rmSync(partial, { force: true });
    }
  }

  async snapshot(
    jobId: string,
    remoteDir: string,
    flavor: EngineFlavor,
    offsets: ReadonlyMap<string, number>,
    maxBytes = DEFAULT_CHUNK,
  ): Promise<WorkDirSnapshot> {
    const known = [...offsets.entries()].map(([path, offset]) => `[${remoteQuote(path)}]=${offset}`).join(' ');
    const pattern = flavor === '0.x' ? "-name '*.log.json'" : "-path '*/vis_data/scalars.json'";
    const script = [
      `if ! cd ${remotePath(remoteDir)} 2>/dev/null; then echo NODIR; fi`,
      ...(jobId ? this.statusScript(jobId) : []),
      'if [ -d work ]; then',
      "  find work -maxdepth 1 -name '*.pth' \\( -type f -o -type l \\) -printf 'K %s %T@ %y %p %l\\n'",
      '  [ -f work/last_checkpoint ] && echo "P $(head -c 4096 work/last_checkpoint)"',
      ...(maxBytes > 0
        ? [
            `  declare -A OFFSETS=(${known})`,
            `  while IFS= read -r f; do`,
            '    size=$(stat -c %s "$f"); off=${OFFSETS[$f]:-0}',
            '    echo "F $size $f"',
            `    if [ "$size" -gt "$off" ]; then echo "C $off $f"; tail -c +$((off + 1)) "$f" | head -c ${maxBytes} | base64 -w0; echo; fi`,
            `  done < <(find work -maxdepth 4 -type f ${pattern} | sort)`,
          ]
        : []),
      'fi',
    ];
    const result = await runRemote(this.target, script.join('\n'), {
      timeoutSeconds: this.timeout,
      what: `reading the work dir of ${remoteDir}`,
    });
    const lines = result.stdout.toString('utf8').split('\n');
    const snapshot: WorkDirSnapshot = {
      status: jobId
        ? this.parseStatus(jobId, lines)
        : {
            state: 'unknown',
            schedulerState: '',
            reason: null,
            exitCode: null,
            signal: null,
            nodes: null,
            elapsedSeconds: null,
            message: null,
          },
      exists: !lines.includes('NODIR'),
      logFiles: [],
      chunks: [],
      checkpoints: [],
    };
    let lastCheckpoint: string | null = null;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      let match = /^K (\d+) ([\d.]+) ([fl]) (\S+)(?: (\S*))?$/.exec(line);
      if (match) {
        const path = match[4];
        const name = path.slice(path.lastIndexOf('/') + 1);
        const { kind, epoch } = checkpointKind(name);
        const linkTarget = match[3] === 'l' ? (match[5] ?? '') : null;
        if (linkTarget !== null && kind !== 'latest') continue;
        snapshot.checkpoints.push({
          name,
          path: `${remoteDir}/${linkTarget !== null ? `work/${linkTarget.slice(linkTarget.lastIndexOf('/') + 1)}` : path}`,
          bytes: Number(match[1]),
          modifiedAt: new Date(Number(match[2]) * 1000).toISOString(),
          epoch: linkTarget !== null ? checkpointKind(linkTarget.slice(linkTarget.lastIndexOf('/') + 1)).epoch : epoch,
          kind,
        });
        continue;
      }
      match = /^P (.+)$/.exec(line);
      if (match) {
        lastCheckpoint = match[1].trim();
        continue;
      }
      match = /^F (\d+) (.+)$/.exec(line);
      if (match && isEngineLog(flavor, match[2])) {
        snapshot.logFiles.push({ path: match[2], bytes: Number(match[1]) });
        continue;
      }
      match = /^C (\d+) (.+)$/.exec(line);
      if (match) {
        const bytes = Buffer.from(lines[i + 1] ?? '', 'base64');
        snapshot.chunks.push({ path: match[2], offset: Number(match[1]), bytes: new Uint8Array(bytes) });
        i += 1;
      }
    }
    if (lastCheckpoint) {
      // 1.x: work/last_checkpoint names the newest checkpoint (the role of 0.x's latest.pth link).
      const name = lastCheckpoint.slice(lastCheckpoint.lastIndexOf('/') + 1);
      const target = snapshot.checkpoints.find((checkpoint) => checkpoint.name === name);
      if (target) snapshot.checkpoints.push({ ...target, name: 'last_checkpoint', kind: 'latest' });
    }
    snapshot.checkpoints.sort((a, b) => (a.epoch ?? Infinity) - (b.epoch ?? Infinity) || a.name.localeCompare(b.name));
    return snapshot;
  }
}
