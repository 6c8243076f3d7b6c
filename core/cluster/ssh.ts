// Remote commands and file transfers through the system OpenSSH client, so the user's own
// ~/.ssh/config, keys, agent and jump hosts apply unchanged. BatchMode forbids password prompts
// (a prompt would hang); every call has a deadline after which the client is killed; ssh's own
// failures (exit 255) are classified from its message so the UI can say what to fix.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RemoteErrorKind } from '../protocol/cluster.ts';

export interface SshTarget {
  host: string;
  port: number | null;
  identityFile: string | null;
  sshConfigFile: string | null;
  connectTimeoutSeconds: number;
}

export class RemoteError extends Error {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    readonly stderr = '',
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

export interface RemoteResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

const patterns: [RegExp, RemoteErrorKind, string][] = [
  [
    /Could not resolve hostname|Name or service not known|nodename nor servname/i,
    'unknown-host',
    'the host name does not resolve (check the host or the Host alias in your SSH config)',
  ],
  [/Connection refused/i, 'refused-connection', 'the connection was refused (no SSH server on that address and port)'],
  [
    /Permission denied \((publickey|password|keyboard)/i,
    'refused-key',
    'the server refused the key (add your public key to ~/.ssh/authorized_keys on the cluster, or set the identity file)',
  ],
  [
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i,
    'host-key',
    'the host key is unknown or changed (connect once with ssh to accept it, or fix known_hosts)',
  ],
  [
    /timed out|Connection timed out|Operation timed out|No route to host|Network is unreachable/i,
    'timeout',
    'the host did not answer in time',
  ],
];

/** Names the cause of an ssh/sftp failure from its stderr. */
export function classifySshFailure(stderr: string): { kind: RemoteErrorKind; explanation: string } {
  for (const [pattern, kind, explanation] of patterns) if (pattern.test(stderr)) return { kind, explanation };
  return { kind: 'ssh-failed', explanation: 'ssh failed' };
}

function commonOptions(target: SshTarget): string[] {
  const options = [
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${target.connectTimeoutSeconds}`,
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=3',
  ];
  if (target.sshConfigFile) options.unshift('-F', target.sshConfigFile);
  if (target.identityFile) options.push('-i', target.identityFile);
  return options;
}

function runProcess(
  program: string,
  args: string[],
  input: Buffer | string | null,
  timeoutSeconds: number,
  what: string,
): Promise<RemoteResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutSeconds * 1000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(
        new RemoteError('ssh-failed', `${what}: cannot start ${program} (${error.message}); is the OpenSSH client installed?`),
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(
          new RemoteError('timeout', `${what}: no answer within ${timeoutSeconds} s (killed the ${program} client)`, stderr),
        );
        return;
      }
      resolvePromise({ code: code ?? 255, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => undefined); // the client may exit before reading its input
    child.stdin.end(input ?? undefined);
  });
}

function sshFailure(target: SshTarget, what: string, result: RemoteResult): RemoteError {
  const { kind, explanation } = classifySshFailure(result.stderr);
  const message = result.stderr.trim().split('\n').slice(-2).join(' | ');
  return new RemoteError(
    kind,
    `${what} on ${target.host}: ${explanation}${message ? ` (ssh said: ${message})` : ''}`,
    result.stderr,
  );
}

/**
 * Runs a bash script on the host (sent on stdin, so nothing needs quoting twice). Resolves with the
 * script's exit code; rejects with a RemoteError when ssh itself fails or the deadline passes.
 */
export async function runRemote(
  target: SshTarget,
  script: string,
  options: { timeoutSeconds: number; what: string },
): Promise<RemoteResult> {
  const args = [...commonOptions(target), ...(target.port ? ['-p', String(target.port)] : []), '-T', target.host, 'bash', '-s'];
  const result = await runProcess('ssh', args, script, options.timeoutSeconds, options.what);
  if (result.code === 255) throw sshFailure(target, options.what, result);
  return result;
}

/** Like runRemote, but a non-zero exit of the script is an error naming its output. */
export async function runRemoteChecked(
  target: SshTarget,
  script: string,
  options: { timeoutSeconds: number; what: string },
): Promise<Buffer> {
  const result = await runRemote(target, script, options);
  if (result.code !== 0) {
    const detail = (result.stderr.trim() || result.stdout.toString('utf8').trim()).split('\n').slice(-3).join(' | ');
    throw new RemoteError(
      'command-failed',
      `${options.what} on ${target.host} failed with exit code ${result.code}${detail ? `: ${detail}` : ''}`,
      result.stderr,
    );
  }
  return result.stdout;
}

/** Quotes a path for an sftp batch file. */
export function sftpQuote(path: string): string {
  return `"${path.replace(/(["\\])/g, '\\$1')}"`;
}

/** Runs sftp batch commands (put/get/chmod); any failing command fails the whole transfer. */
export async function sftpBatch(
  target: SshTarget,
  lines: string[],
  options: { timeoutSeconds: number; what: string },
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vswin-sftp-'));
  try {
    const batch = join(dir, 'batch');
    writeFileSync(batch, `${lines.join('\n')}\n`);
    const args = [...commonOptions(target), ...(target.port ? ['-P', String(target.port)] : []), '-b', batch, target.host];
    const result = await runProcess('sftp', args, null, options.timeoutSeconds, options.what);
    if (result.code === 0) return;
    const { kind } = classifySshFailure(result.stderr);
    if (kind !== 'ssh-failed') throw sshFailure(target, options.what, result);
    const said = result.stderr.trim().split('\n').slice(-2).join(' | ');
    throw new RemoteError('transfer-failed', `${options.what} on ${target.host} failed${said ? `: ${said}` : ''}`, result.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Single-quotes a word for the remote bash. */
export function remoteQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A path for the remote bash where a leading ~ must still expand to the remote home. */
export function remotePath(path: string): string {
  if (path === '~') return '"$HOME"';
  if (path.startsWith('~/')) return `"$HOME"/${remoteQuote(path.slice(2))}`;
  return remoteQuote(path);
}
