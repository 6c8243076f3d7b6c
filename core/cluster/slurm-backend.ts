// Slurm over SSH: sbatch to submit (the srun line inside the script blocks, sbatch does not, so an
// SSH drop never kills the run), scontrol/squeue for the state and pending reason, scancel, and the
// job's own status file once Slurm has forgotten the job (no accounting needed).
import type { JobState, JobStatus } from '../protocol/cluster.ts';
import { SshBackend } from './backend.ts';
import { RemoteError, remotePath, remoteQuote, runRemote, runRemoteChecked } from './ssh.ts';

const stateMap: Record<string, JobState> = {
  PENDING: 'pending',
  CONFIGURING: 'pending',
  REQUEUED: 'pending',
  REQUEUE_HOLD: 'pending',
  REQUEUE_FED: 'pending',
  RESV_DEL_HOLD: 'pending',
  RUNNING: 'running',
  COMPLETING: 'running',
  SUSPENDED: 'running',
  STOPPED: 'running',
  SIGNALING: 'running',
  STAGE_OUT: 'running',
  RESIZING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  NODE_FAIL: 'failed',
  BOOT_FAIL: 'failed',
  OUT_OF_MEMORY: 'failed',
  DEADLINE: 'failed',
  PREEMPTED: 'failed',
  SPECIAL_EXIT: 'failed',
  REVOKED: 'cancelled',
  CANCELLED: 'cancelled',
  TIMEOUT: 'timeout',
};

/** Seconds of a Slurm duration ([D-]HH:MM:SS, MM:SS). */
export function slurmSeconds(text: string | undefined): number | null {
  if (!text || text === 'INVALID' || text === 'UNLIMITED') return null;
  const match = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(text);
  if (!match) return null;
  const [, days, hours, minutes, seconds] = match;
  return Number(days ?? 0) * 86400 + Number(hours ?? 0) * 3600 + Number(minutes) * 60 + Number(seconds);
}

/** `Key=Value` fields of `scontrol show job -o` (values without spaces, which are the ones we read). */
export function scontrolFields(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of line.matchAll(/(?:^|\s)([A-Za-z:/]+)=(\S*)/g)) fields[match[1]] = match[2];
  return fields;
}

/**
 * The job's state from the tagged lines of the status script: J = scontrol, Q = squeue,
 * X = the status file the job wrote on exit.
 */
export function parseSlurmStatus(jobId: string, lines: string[]): JobStatus {
  const tagged = (tag: string) =>
    lines
      .find((line) => line.startsWith(`${tag} `))
      ?.slice(2)
      .trim() ?? '';
  const scontrol = tagged('J');
  const squeue = tagged('Q');
  const statusFile = tagged('X');
  if (scontrol.includes('JobState=')) {
    const fields = scontrolFields(scontrol);
    const raw = fields.JobState ?? 'UNKNOWN';
    const state = stateMap[raw] ?? 'unknown';
    const [code, signal] = (fields.ExitCode ?? '')
      .split(':')
      .map((part) => (part === undefined || part === '' ? null : Number(part)));
    const finished = state === 'completed' || state === 'failed' || state === 'cancelled' || state === 'timeout';
    const reason = fields.Reason && fields.Reason !== 'None' ? fields.Reason : null;
    let message: string | null = null;
    if (state === 'pending') message = `pending${reason ? `: ${reason}` : ''}`;
    else if (state === 'failed') {
      const killed =
        code === 143
          ? ' (a task ended by SIGTERM: with several ranks, srun stops the others when one fails, so the log holds the first failure)'
          : '';
      message = `${raw}${code !== null ? ` with exit code ${code}` : ''}${signal ? ` (signal ${signal})` : ''}${reason ? `: ${reason}` : ''}${killed}`;
    } else if (state === 'timeout') message = `reached its time limit (${fields.TimeLimit ?? '?'})`;
    else if (state === 'cancelled') message = 'cancelled';
    return {
      state,
      schedulerState: raw,
      reason,
      exitCode: finished ? code : null,
      signal: finished ? signal : null,
      nodes: fields.NodeList && fields.NodeList !== '(null)' ? fields.NodeList : null,
      elapsedSeconds: slurmSeconds(fields.RunTime),
      message,
    };
  }
  if (squeue) {
    const [raw, reason, time, nodes] = squeue.split('|');
    const state = stateMap[raw] ?? 'unknown';
    return {
      state,
      schedulerState: raw,
      reason: reason && reason !== 'None' ? reason : null,
      exitCode: null,
      signal: null,
      nodes: nodes || null,
      elapsedSeconds: slurmSeconds(time),
      message: state === 'pending' && reason ? `pending: ${reason}` : null,
    };
  }
  if (statusFile) {
    try {
      const parsed = JSON.parse(statusFile) as { exit_code?: unknown; terminated?: unknown };
      const code = typeof parsed.exit_code === 'number' ? parsed.exit_code : null;
      // Bundles that predate "terminated" only have the code: 143 was then taken for a cancel.
      const terminated = typeof parsed.terminated === 'number' ? parsed.terminated === 1 : code === 143;
      const state: JobState = code === 0 ? 'completed' : terminated ? 'cancelled' : 'failed';
      const hint =
        state === 'failed' && code === 143
          ? ' (a task ended by SIGTERM: with several ranks, srun stops the others when one fails, so the log holds the first failure)'
          : '';
      return {
        state,
        schedulerState: 'GONE',
        reason: null,
        exitCode: code,
        signal: null,
        nodes: null,
        elapsedSeconds: null,
        message: `Slurm no longer lists job ${jobId}; its status file says exit code ${code}${hint}`,
      };
    } catch {
      // fall through: a damaged status file says nothing reliable
    }
  }
  return {
    state: 'unknown',
    schedulerState: 'GONE',
    reason: null,
    exitCode: null,
    signal: null,
    nodes: null,
    elapsedSeconds: null,
    message: `Slurm does not know job ${jobId} and the job wrote no status file (it was purged from the controller, or never started)`,
  };
}

export class SlurmBackend extends SshBackend {
  protected statusScript(jobId: string): string[] {
    const id = remoteQuote(jobId);
    return [
      `echo "J $(scontrol show job -o ${id} 2>/dev/null | head -n1)"`,
      `echo "Q $(squeue -h -j ${id} -o '%T|%r|%M|%N' 2>/dev/null | head -n1)"`,
      `echo "X $(head -c 1000 .vswin/status-${jobId.replace(/[^0-9_]/g, '')}.json 2>/dev/null)"`,
    ];
  }

  protected outputFile(jobId: string): string {
    return `slurm-${jobId}.out`;
  }

  protected parseStatus(jobId: string, lines: string[]): JobStatus {
    return parseSlurmStatus(jobId, lines);
  }

  protected schedulerChecks(): string[] {
    const partition = this.settings.partition;
    return [
      'if out=$(sinfo -h -o "%P|%a|%G|%D" 2>&1); then echo "CHECK scheduler ok $(sinfo --version 2>/dev/null) answers"; else echo "CHECK scheduler fail sinfo failed: $(echo "$out" | tail -n1)"; out=""; fi',
      partition
        ? `line=$(echo "$out" | awk -F'|' -v p=${remoteQuote(partition)} '{q=$1; sub(/\\*$/, "", q)} q==p {print; exit}')`
        : `line=$(echo "$out" | awk -F'|' '$1 ~ /\\*$/ {print; exit}')`,
      `if [ -n "$line" ]; then echo "CHECK partition ok $(echo "$line" | cut -d'|' -f1) is $(echo "$line" | cut -d'|' -f2) with $(echo "$line" | cut -d'|' -f4) node(s)"; else echo "CHECK partition fail ${partition ? `no partition ${partition.replace(/[`$"\\]/g, '')}` : 'no default partition'}; partitions: $(echo "$out" | cut -d'|' -f1 | tr '\\n' ' ')"; fi`,
      `gres=$(echo "$line" | cut -d'|' -f3)`,
      `gpus=$(echo "$gres" | grep -o 'gpu[^,(]*' | head -n1 | awk -F: '{print $NF}')`,
      `if [ -n "$gpus" ] && [ "$gpus" -ge ${this.settings.gpusPerNode} ] 2>/dev/null; then echo "CHECK gpus ok $gpus GPU(s) per node (gres $gres)"; else echo "CHECK gpus fail ${this.settings.gpusPerNode} GPU(s) per node configured, the partition's nodes offer gres \\"$gres\\""; fi`,
    ];
  }

  async submit(remoteDir: string): Promise<string> {
    const result = await runRemote(this.target, [`cd ${remotePath(remoteDir)}`, 'sbatch --parsable job.sbatch'].join(' && '), {
      timeoutSeconds: this.timeout,
      what: 'sbatch',
    });
    const out = result.stdout.toString('utf8').trim();
    if (result.code !== 0 || !/^\d+/.test(out)) {
      const said = (result.stderr.trim() || out).split('\n').slice(-2).join(' | ');
      const kind = /invalid partition/i.test(said) ? 'missing-partition' : 'submit-refused';
      const hint =
        kind === 'missing-partition'
          ? ` (the cluster's partitions are listed by \`vswin cluster check ${this.settings.name}\`)`
          : '';
      throw new RemoteError(
        kind,
        `sbatch on ${this.settings.host} refused the job: ${said || `exit code ${result.code}`}${hint}`,
        result.stderr,
      );
    }
    // --parsable prints "jobid" or "jobid;cluster".
    return out.split(';')[0].split('\n').pop()!.trim();
  }

  async cancel(jobId: string): Promise<void> {
    await runRemoteChecked(this.target, `scancel ${remoteQuote(jobId)}`, {
      timeoutSeconds: this.timeout,
      what: `scancel ${jobId}`,
    });
  }
}
