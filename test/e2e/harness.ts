// Starts `vswin serve` on a temporary home and Debian's Chromium through playwright-core; saves
// screenshots under test-output/e2e. Processes started here are ended by their own handles.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SCREENSHOTS = join(ROOT, 'test-output', 'e2e');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface Served {
  url: string;
  home: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs the real CLI; resolves when it prints its `Workbench: URL` line. With `existingHome` it serves
 * that home (a restart) and leaves it in place when stopped.
 */
export async function serve(extraArgs: string[] = [], existingHome?: string): Promise<Served> {
  if (!existsSync(join(ROOT, 'renderer', 'dist', 'index.html')))
    throw new Error('renderer/dist is missing: run `npm run build:ui` before the end-to-end tests');
  const home = existingHome ?? mkdtempSync(join(tmpdir(), 'vswin-e2e-'));
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'vswin.js'), 'serve', '--home', home, '--port', '0', ...extraArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    // The first start of a home generates the demo dataset (400 short videos, about 30 s on 2 cores).
    const timer = setTimeout(() => reject(new Error(`vswin serve printed no URL within 180 s; stderr:\n${stderr}`)), 180_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /Workbench: (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vswin serve exited with ${code}; stderr:\n${stderr}`));
    });
  });
  return {
    url,
    home,
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      if (!existingHome) rmSync(home, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  errors: string[];
  close(): Promise<void>;
}

export async function openBrowser(url: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'vswin-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 1000 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto(url);
  await page.getByRole('status').filter({ hasText: 'connected' }).waitFor();
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export async function openPage(page: Page, title: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('button', { name: title, exact: true }).click();
  await page.getByRole('heading', { level: 1 }).waitFor();
}

/**
 * One `vswin serve` and one browser shared by the tests of a file: started before them, ended
 * after them. Read `served` and `browser` inside tests (they are set once the hook has run).
 */
export function servedBrowser(): { readonly served: Served; readonly browser: Browser } {
  const state = {} as { served: Served; browser: Browser };
  beforeAll(async () => {
    state.served = await serve();
    state.browser = await openBrowser(state.served.url);
  });
  afterAll(async () => {
    await state.browser?.close();
    await state.served?.stop();
  });
  return state;
}
