// One multi-GPU machine over SSH: the bundle's torchrun script runs detached (setsid + nohup) so the
// SSH session can end; the launcher's process id is the job id; its status file gives the exit code.
import type { JobStatus } from '../protocol/cluster.ts';
import { SshBackend } from './backend.ts';
import { RemoteError, remotePath, runRemote, runRemoteChecked } from './ssh.ts';

const digits = (jobId: string): string => {
  if (!/^\d+$/.test(jobId)) throw new Error(`torchrun job ids are process ids, received "${jobId}"`);
  return jobId;
};

export function parseTorchrunStatus(jobId: string, lines: string[]): JobStatus {
  const base = { reason: null, signal: null, nodes: null, elapsedSeconds: null };
  const cancelled = lines.includes('K');
  const file =
    lines
      .find((line) => line.startsWith('X '))
      ?.slice(2)
      .trim() ?? '';
  if (lines.includes('R')) return { ...base, state: 'running', schedulerState: 'RUNNING', exitCode: null, message: null };
  let code: number | null = null;
  try {
    const parsed = file ? (JSON.parse(file) as { exit_code?: unknown }) : null;
    code = parsed && typeof parsed.exit_code === 'number' ? parsed.exit_code : null;
  } catch {
    code = null;
  }
  if (cancelled) return { ...base, state: 'cancelled', schedulerState: 'CANCELLED', exitCode: code, message: 'cancelled' };
  if (code === 0) return { ...base, state: 'completed', schedulerState: 'COMPLETED', exitCode: 0, message: null };
  if (code !== null)
    return {
      ...base,
      state: 'failed',
      schedulerState: 'FAILED',
      exitCode: code,
      message: `the launcher exited with code ${code}`,
    };
  return {
    ...base,
    state: 'failed',
    schedulerState: 'GONE',
    exitCode: null,
    message: `process ${jobId} is gone and wrote no status file (killed, or the machine restarted)`,
  };
}

export class TorchrunBackend extends SshBackend {
  protected statusScript(jobId: string): string[] {
    const pid = digits(jobId);
    return [
      `kill -0 ${pid} 2>/dev/null && echo R`,
      `[ -e .vswin/cancelled-${pid} ] && echo K`,
      `echo "X $(head -c 1000 .vswin/status-${pid}.json 2>/dev/null)"`,
    ];
  }

  protected outputFile(_jobId: string): string {
    return 'torchrun.out';
  }

  protected parseStatus(jobId: string, lines: string[]): JobStatus {
    return parseTorchrunStatus(jobId, lines);
  }

  protected schedulerChecks(): string[] {
    const torchrun = this.settings.torchrun.replace(/[`"\\]/g, '');
    // The default launcher is `$PYTHON -m torch.distributed.run` (the bundle's torchrun script).
    const launcher =
      torchrun === 'torchrun'
        ? `if ${this.settings.python} -c 'import torch.distributed.run' >/dev/null 2>&1; then echo "CHECK scheduler ok torch.distributed.run imports in ${this.settings.python.replace(/[`$"\\]/g, '')}"; else echo "CHECK scheduler fail ${this.settings.python.replace(/[`$"\\]/g, '')} cannot import torch.distributed.run (torchrun)"; fi`
        : `if command -v ${torchrun.split(' ')[0]} >/dev/null 2>&1; then echo "CHECK scheduler ok ${torchrun} found"; else echo "CHECK scheduler fail ${torchrun} is not on the PATH"; fi`;
    return [
      launcher,
      'count=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU")',
      `if [ "$count" -ge ${this.settings.gpusPerNode} ] 2>/dev/null; then echo "CHECK gpus ok $count GPU(s) visible"; else echo "CHECK gpus fail nvidia-smi lists \${count:-0} GPU(s); ${this.settings.gpusPerNode} configured"; fi`,
    ];
  }

  async submit(remoteDir: string): Promise<string> {
    const result = await runRemote(
      this.target,
      [
        `cd ${remotePath(remoteDir)} || exit 3`,
        'setsid nohup bash launch-torchrun.sh >> torchrun.out 2>&1 < /dev/null &',
        'echo "PID $!"',
      ].join('\n'),
      { timeoutSeconds: this.timeout, what: 'starting torchrun' },
    );
    const match = /PID (\d+)/.exec(result.stdout.toString('utf8'));
    if (result.code !== 0 || !match)
      throw new RemoteError(
        'submit-refused',
        `starting the torchrun launcher on ${this.settings.host} failed: ${result.stderr.trim() || `exit code ${result.code}`}`,
        result.stderr,
      );
    return match[1];
  }

  async cancel(jobId: string, remoteDir: string): Promise<void> {
    const pid = digits(jobId);
    // The marker tells a cancel from a crash; the launcher is a session leader, so its group goes too.
    await runRemoteChecked(
      this.target,
      [
        `cd ${remotePath(remoteDir)} && mkdir -p .vswin && touch .vswin/cancelled-${pid}`,
        `kill -TERM -- -${pid} 2>/dev/null || kill -TERM ${pid} 2>/dev/null || true`,
      ].join('\n'),
      {
        timeoutSeconds: this.timeout,
        what: `stopping process ${pid}`,
      },
    );
  }
}
