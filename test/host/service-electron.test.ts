// The Electron main process tested as plain modules (its window cannot run here): the service child
// process, the window's security settings and guards, argument checks, the preload build, and the
// browser fallback's detection of a missing Electron binary.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPreload } from '../../electron/build.ts';
import { electronBinary } from '../../electron/electron-binary.ts';
import { parseServiceUrl, startServiceProcess } from '../../electron/main/service-process.ts';
import {
  checkFilters,
  checkPath,
  guardContents,
  isAllowedNavigation,
  secureWebPreferences,
  type GuardedContents,
} from '../../electron/main/window-security.ts';

describe('window security', () => {
  it('turns on isolation and the sandbox and leaves Node out of the page', () => {
    const preferences = secureWebPreferences('/app/preload.cjs');
    expect(preferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      webviewTag: false,
      preload: '/app/preload.cjs',
    });
  });

  it('allows navigation only inside the service origin', () => {
    const origin = 'http://127.0.0.1:4567';
    expect(isAllowedNavigation('http://127.0.0.1:4567/?page=runs', origin)).toBe(true);
    expect(isAllowedNavigation('http://127.0.0.1:4568/', origin)).toBe(false);
    expect(isAllowedNavigation('http://localhost:4567/', origin)).toBe(false);
    expect(isAllowedNavigation('https://evil.example/', origin)).toBe(false);
    expect(isAllowedNavigation('file:///etc/passwd', origin)).toBe(false);
    expect(isAllowedNavigation('not a url', origin)).toBe(false);
  });

  it('blocks foreign navigation, webviews and every new window', () => {
    const listeners = new Map<string, (event: { preventDefault(): void }, url: string) => void>();
    let openHandler: ((details: { url: string }) => { action: 'deny' }) | null = null;
    const contents: GuardedContents = {
      on: ((event: string, listener: (event: { preventDefault(): void }, url: string) => void) =>
        listeners.set(event, listener)) as GuardedContents['on'],
      setWindowOpenHandler: (handler) => (openHandler = handler),
    };
    const opened: string[] = [];
    guardContents(contents, 'http://127.0.0.1:4567', (url) => opened.push(url));
    const attempt = (event: string, url: string) => {
      let prevented = false;
      listeners.get(event)?.({ preventDefault: () => (prevented = true) }, url);
      return prevented;
    };
    expect(attempt('will-navigate', 'https://evil.example/')).toBe(true);
    expect(attempt('will-redirect', 'http://127.0.0.1:9999/')).toBe(true);
    expect(attempt('will-navigate', 'http://127.0.0.1:4567/#runs')).toBe(false);
    expect(attempt('will-attach-webview', '')).toBe(true);
    expect(openHandler).not.toBeNull();
    expect(openHandler!({ url: 'https://github.com/SwinTransformer/Video-Swin-Transformer' })).toEqual({ action: 'deny' });
    expect(openHandler!({ url: 'http://127.0.0.1:4567/' })).toEqual({ action: 'deny' });
    expect(openHandler!({ url: 'javascript:alert(1)' })).toEqual({ action: 'deny' });
    expect(opened).toEqual(['https://github.com/SwinTransformer/Video-Swin-Transformer']);
  });

  it('checks the arguments of the preload functions in the main process', () => {
    expect(checkFilters(undefined)).toBeUndefined();
    expect(checkFilters([{ name: 'Videos', extensions: ['mp4', 'webm'] }])).toEqual([
      { name: 'Videos', extensions: ['mp4', 'webm'] },
    ]);
    expect(() => checkFilters([{ name: 'x', extensions: ['../../etc'] }])).toThrow(/filters must be/);
    expect(() => checkFilters('mp4')).toThrow(/received "mp4"/);
    expect(checkPath('/home/user/.vswin')).toBe('/home/user/.vswin');
    expect(() => checkPath('relative/path')).toThrow(/expected an absolute path, received "relative\/path"/);
    expect(() => checkPath(42)).toThrow(/received 42/);
  });
});

describe('preload', () => {
  it('builds to one CommonJS file that exposes named functions only', async () => {
    const out = await buildPreload();
    const code = readFileSync(out, 'utf8');
    expect(code).toContain('require("electron")');
    expect(code.match(/require\(/g)).toHaveLength(1);
    expect(code).toContain('exposeInMainWorld("workbenchNative"');
    for (const name of ['pickFolder', 'pickFile', 'openInFileManager']) expect(code).toContain(name);
    // The raw IPC object must never be handed to the page.
    expect(code).not.toMatch(/exposeInMainWorld\([^)]*ipcRenderer\s*\)/);
  });
});

describe('service child process', () => {
  it('parses the URL line of vswin serve and nothing else', () => {
    expect(parseServiceUrl('home: /x\nWorkbench: http://127.0.0.1:41234/?token=ab_C-9\n')).toEqual({
      url: 'http://127.0.0.1:41234/?token=ab_C-9',
      origin: 'http://127.0.0.1:41234',
    });
    expect(parseServiceUrl('Workbench: http://0.0.0.0:1/?token=x')).toBeNull();
    expect(parseServiceUrl('backend: wasm')).toBeNull();
  });

  it('starts vswin serve, answers with the token, and stops on request', async () => {
    const home = mkdtempSync(join(tmpdir(), 'vswin-electron-'));
    try {
      const service = await startServiceProcess({ home, node: process.execPath, extraArgs: ['--no-demo'], timeoutMs: 90_000 });
      const withToken = await fetch(service.url);
      expect(withToken.status).toBe(200);
      const without = await fetch(`${service.origin}/`);
      expect(without.status).toBe(401);
      await service.stop();
      expect(service.child.exitCode !== null || service.child.signalCode !== null).toBe(true);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('reports a clear error when node cannot be started', async () => {
    await expect(startServiceProcess({ node: '/nonexistent/node', timeoutMs: 5000 })).rejects.toThrow(
      /could not start the workbench service with "\/nonexistent\/node"/,
    );
  });
});

describe('npm start fallback', () => {
  it('detects that the Electron binary is missing here instead of failing', () => {
    const found = electronBinary();
    if ('path' in found) expect(found.path.length).toBeGreaterThan(0);
    else expect(found.missing).toMatch(/Electron|electron/);
  });
});
