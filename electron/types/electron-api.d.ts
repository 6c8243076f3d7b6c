// The part of Electron's API that electron/main and electron/preload use, for type-checking them when
// the optional electron package is not installed. electron/tsconfig.json prefers the package's own
// types when they exist, so a call that does not match the real API still fails there.

type Listener = (...args: any[]) => void;
interface PreventableEvent {
  preventDefault(): void;
}

export interface WebContents {
  on(event: 'will-navigate' | 'will-redirect', listener: (event: PreventableEvent, url: string) => void): this;
  on(event: 'will-attach-webview', listener: (event: PreventableEvent) => void): this;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' | 'allow' }): void;
}

export interface WebPreferences {
  contextIsolation?: boolean;
  sandbox?: boolean;
  nodeIntegration?: boolean;
  nodeIntegrationInWorker?: boolean;
  nodeIntegrationInSubFrames?: boolean;
  webSecurity?: boolean;
  allowRunningInsecureContent?: boolean;
  webviewTag?: boolean;
  spellcheck?: boolean;
  preload?: string;
}

export interface BrowserWindowConstructorOptions {
  width?: number;
  height?: number;
  title?: string;
  show?: boolean;
  webPreferences?: WebPreferences;
}

export declare class BrowserWindow {
  constructor(options?: BrowserWindowConstructorOptions);
  static fromWebContents(webContents: WebContents): BrowserWindow | null;
  readonly webContents: WebContents;
  once(event: 'ready-to-show', listener: () => void): this;
  show(): void;
  loadURL(url: string): Promise<void>;
}

export interface OpenDialogOptions {
  properties?: Array<'openFile' | 'openDirectory' | 'multiSelections' | 'showHiddenFiles'>;
  filters?: { name: string; extensions: string[] }[];
}
export interface OpenDialogReturnValue {
  canceled: boolean;
  filePaths: string[];
}
export declare const dialog: {
  showOpenDialog(window: BrowserWindow, options: OpenDialogOptions): Promise<OpenDialogReturnValue>;
  showOpenDialog(options: OpenDialogOptions): Promise<OpenDialogReturnValue>;
  showErrorBox(title: string, content: string): void;
};

export interface IpcMainInvokeEvent {
  sender: WebContents;
}
export declare const ipcMain: {
  handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: any[]) => Promise<unknown> | unknown): void;
};
export declare const ipcRenderer: {
  invoke(channel: string, ...args: any[]): Promise<any>;
};
export declare const contextBridge: {
  exposeInMainWorld(apiKey: string, api: unknown): void;
};

export interface MenuItemConstructorOptions {
  role?: string;
  label?: string;
  type?: 'normal' | 'separator' | 'submenu' | 'checkbox' | 'radio';
  submenu?: MenuItemConstructorOptions[];
}
export declare class Menu {
  static setApplicationMenu(menu: Menu | null): void;
  static buildFromTemplate(template: MenuItemConstructorOptions[]): Menu;
}

export declare const session: {
  defaultSession: {
    setPermissionRequestHandler(
      handler: ((webContents: WebContents, permission: string, callback: (granted: boolean) => void) => void) | null,
    ): void;
  };
};

export declare const shell: {
  openExternal(url: string): Promise<void>;
  openPath(path: string): Promise<string>;
};

export declare const app: {
  whenReady(): Promise<void>;
  quit(): void;
  on(event: 'web-contents-created', listener: (event: PreventableEvent, contents: WebContents) => void): typeof app;
  on(event: 'will-quit', listener: (event: PreventableEvent) => void): typeof app;
  on(event: 'window-all-closed', listener: Listener): typeof app;
};
