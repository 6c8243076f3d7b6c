// The Electron main process runs the core service as a child Node process (`vswin serve`): native
// modules (better-sqlite3, the kernel addon) stay built for Node's ABI, and a crash of the core
// cannot take the window down with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServiceProcess {
  url: string;
  origin: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface ServiceProcessOptions {
  home?: string;
  /** Node executable (the one on PATH by default; Electron's own would need native modules rebuilt). */
  node?: string;
  vswin?: string;
  timeoutMs?: number;
  extraArgs?: string[];
}

/** Parses the line `vswin serve` prints; null for any other line. */
export function parseServiceUrl(text: string): { url: string; origin: string } | null {
  const match = /Workbench: (http:\/\/127\.0\.0\.1:(\d+)\/\?token=([\w-]+))/.exec(text);
  return match ? { url: match[1], origin: `http://127.0.0.1:${match[2]}` } : null;
}

export function startServiceProcess(options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const args = [
    options.vswin ?? join(PROJECT_ROOT, 'bin', 'vswin.js'),
    'serve',
    '--port',
    '0',
    ...(options.home ? ['--home', options.home] : []),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(options.node ?? 'node', args, {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    process.stderr.write(chunk);
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(
        new Error(
          `the workbench service printed no URL within ${(options.timeoutMs ?? 120_000) / 1000} s; its errors:\n${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 120_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start the workbench service with "${options.node ?? 'node'}": ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the workbench service exited with code ${code} before it was ready; its errors:\n${stderr}`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const parsed = parseServiceUrl(stdout);
      if (!parsed) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        ...parsed,
        child,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((done) => child.once('exit', done));
          // SIGTERM lets running training save its state; SIGKILL only if it hangs.
          child.kill('SIGTERM');
          const timeout = new Promise((done) => setTimeout(done, 20_000, 'timeout'));
          if ((await Promise.race([exited, timeout])) === 'timeout') child.kill('SIGKILL');
        },
      });
    });
  });
}
