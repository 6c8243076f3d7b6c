// The window's security settings and guards, as plain functions so they are testable without Electron.

export interface SecureWebPreferences {
  contextIsolation: true;
  sandbox: true;
  nodeIntegration: false;
  nodeIntegrationInWorker: false;
  nodeIntegrationInSubFrames: false;
  webSecurity: true;
  allowRunningInsecureContent: false;
  webviewTag: false;
  spellcheck: false;
  preload: string;
}

export function secureWebPreferences(preload: string): SecureWebPreferences {
  return {
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    spellcheck: false,
    preload,
  };
}

/** Only the service's own pages may load in the window; everything else is refused. */
export function isAllowedNavigation(target: string, origin: string): boolean {
  try {
    return new URL(target).origin === origin;
  } catch {
    return false;
  }
}

/** The subset of Electron's WebContents the guards use. */
export interface GuardedContents {
  on(event: 'will-navigate' | 'will-redirect', listener: (event: { preventDefault(): void }, url: string) => void): unknown;
  on(event: 'will-attach-webview', listener: (event: { preventDefault(): void }) => void): unknown;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
}

export function guardContents(contents: GuardedContents, origin: string, openExternally: (url: string) => void): void {
  const block = (event: { preventDefault(): void }, url: string) => {
    if (!isAllowedNavigation(url, origin)) event.preventDefault();
  };
  contents.on('will-navigate', block);
  contents.on('will-redirect', block);
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    // New windows never open inside the app; https links (docs) go to the user's browser.
    if (url.startsWith('https://')) openExternally(url);
    return { action: 'deny' };
  });
}

/** Arguments of the preload's named functions, checked in the main process (the renderer is untrusted). */
export function checkFilters(value: unknown): { name: string; extensions: string[] }[] | undefined {
  if (value === undefined) return undefined;
  if (
    !Array.isArray(value) ||
    !value.every(
      (f) =>
        f &&
        typeof f.name === 'string' &&
        Array.isArray(f.extensions) &&
        f.extensions.every((e: unknown) => typeof e === 'string' && /^[\w*]+$/.test(e)),
    )
  ) {
    throw new Error(`pick-file: filters must be [{ name: string, extensions: string[] }], received ${JSON.stringify(value)}`);
  }
  return value as { name: string; extensions: string[] }[];
}

export function checkPath(value: unknown): string {
  if (typeof value !== 'string' || (!value.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(value)) || value.includes('\0')) {
    throw new Error(`open-in-file-manager: expected an absolute path, received ${JSON.stringify(value)}`);
  }
  return value;
}
