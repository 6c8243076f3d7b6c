// Starts the whole workbench service: backend, demo dataset, command handlers, HTTP/WebSocket server.
// `vswin serve` and the Electron main process both call this.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, type BackendChoice } from '../../engine/backend.ts';
import { Workbench } from './commands.ts';
import { ensureDemoDataset, type DemoOptions } from '../../app/demo.ts';
import { sweepStaleTemporaries } from '../../files/atomic.ts';
import { guardServiceProcess } from './fault-guard.ts';
import { startService, type RunningService } from './server.ts';

export const UI_DIR = fileURLToPath(new URL('../../../renderer/dist/', import.meta.url));

export interface LaunchOptions {
  home: string;
  port?: number;
  backend?: string;
  staticDir?: string;
  /** Generate the demo dataset into the home when it is missing (default true). */
  demo?: boolean | DemoOptions;
  log?: (line: string) => void;
  /** Seconds between polls of unfinished cluster jobs (default: VSWIN_CLUSTER_POLL_SECONDS, else 5). */
  clusterPollSeconds?: number;
}

function clusterPollSeconds(option: number | undefined): number {
  if (option !== undefined) return option;
  const text = process.env.VSWIN_CLUSTER_POLL_SECONDS;
  if (text === undefined || text === '') return 5;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0.2 || value > 3600)
    throw new Error(`VSWIN_CLUSTER_POLL_SECONDS: expected seconds between 0.2 and 3600, received "${text}"`);
  return value;
}

export interface LaunchedWorkbench {
  service: RunningService;
  workbench: Workbench;
  backend: BackendChoice;
  url: string;
  close(): Promise<void>;
}

export async function launchWorkbench(options: LaunchOptions): Promise<LaunchedWorkbench> {
  const home = resolve(options.home);
  mkdirSync(home, { recursive: true });
  const log = options.log ?? (() => undefined);
  const backend = await initBackend(options.backend);
  log(`backend: ${backend.name} (${backend.reason})`);
  for (const file of sweepStaleTemporaries(home)) log(`removed ${file}, left by an interrupted write`);
  if (options.demo !== false) {
    const demo = await ensureDemoDataset(home, typeof options.demo === 'object' ? options.demo : {}, log);
    log(`demo dataset: ${demo.trainAnn}`);
  }
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const workbench = new Workbench({ home, version: pkg.version, mediaUrl: (path) => `/media?path=${encodeURIComponent(path)}` });
  const serviceOptions = {
    staticDir: options.staticDir ?? UI_DIR,
    mediaRoots: () => workbench.mediaRoots(),
    uploadDir: join(home, 'uploads'),
    dispatch: workbench.dispatch,
    log,
  };
  // Without a chosen port, the last session's port and token come back when the port is free, so a tab
  // left open (after a crash, a kill, a reboot) reconnects to the restarted service on its own.
  const previous = options.port ? null : readSession(home);
  let service: RunningService | null = null;
  if (previous) {
    try {
      service = await startService({ ...serviceOptions, port: previous.port, token: previous.token });
      log(`service: port ${previous.port} and token of the last session (open tabs reconnect)`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      log(`service: port ${previous.port} of the last session is taken; using another one (reload open tabs from the new URL)`);
    }
  }
  service ??= await startService({ ...serviceOptions, port: options.port });
  writeSession(home, { port: service.port, token: service.token });
  workbench.setEmitter(service.emit);
  // Unfinished cluster jobs of earlier sessions are re-attached here; their polls stream to every client.
  workbench.cluster.startWatcher(clusterPollSeconds(options.clusterPollSeconds));
  // A stray error inside one job or socket (a decoder, a loader, a client) must not end the process and
  // every other job with it: it is reported to the clients and the log instead (fault-guard.ts says why).
  const guard = guardServiceProcess((message) => {
    log(message);
    service.emit({ kind: 'log', level: 'error', message });
  });
  return {
    service,
    workbench,
    backend,
    url: service.url,
    close: async () => {
      guard.release();
      await workbench.close();
      await service.close();
    },
  };
}

/** The last service's port and token, kept in the home (readable by its owner only, like Jupyter's runtime files). */
const SESSION_FILE = 'service-session.json';

function readSession(home: string): { port: number; token: string } | null {
  const path = join(home, SESSION_FILE);
  if (!existsSync(path)) return null;
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as { port?: unknown; token?: unknown };
    if (typeof value.port === 'number' && Number.isInteger(value.port) && value.port > 0 && typeof value.token === 'string')
      return { port: value.port, token: value.token };
  } catch {
    // A damaged file only costs the reconnect: a new port and token are chosen.
  }
  return null;
}

function writeSession(home: string, session: { port: number; token: string }): void {
  writeFileSync(join(home, SESSION_FILE), `${JSON.stringify(session)}\n`, { mode: 0o600 });
}
