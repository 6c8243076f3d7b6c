// Electron main process: starts the core service, opens one locked-down window on it, and answers
// the preload's named functions (folder and file pickers, open in the file manager).
import { app, BrowserWindow, dialog, ipcMain, Menu, session, shell } from 'electron';
import { fileURLToPath } from 'node:url';
import { startServiceProcess, type ServiceProcess } from './service-process.ts';
import { checkFilters, checkPath, guardContents, secureWebPreferences } from './window-security.ts';

const preload = fileURLToPath(new URL('../../dist/electron/preload.cjs', import.meta.url));
let service: ServiceProcess | null = null;

async function openWindow(): Promise<void> {
  service = await startServiceProcess({ home: process.env.VSWIN_HOME });
  const origin = service.origin;
  // No permission (camera, notifications, ...) is ever needed.
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  const window = new BrowserWindow({
    width: 1400,
    height: 900,
    title: 'Video Swin Workbench',
    show: false,
    webPreferences: secureWebPreferences(preload),
  });
  guardContents(window.webContents, origin, (url) => void shell.openExternal(url));
  window.once('ready-to-show', () => window.show());
  await window.loadURL(service.url);
}

ipcMain.handle('pick-folder', async (event) => {
  const window = BrowserWindow.fromWebContents(event.sender);
  const options = { properties: ['openDirectory' as const] };
  const result = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
  return result.canceled ? null : (result.filePaths[0] ?? null);
});

ipcMain.handle('pick-file', async (event, filters: unknown) => {
  const window = BrowserWindow.fromWebContents(event.sender);
  const options = { properties: ['openFile' as const], filters: checkFilters(filters) };
  const result = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
  return result.canceled ? null : (result.filePaths[0] ?? null);
});

ipcMain.handle('open-in-file-manager', async (_event, path: unknown) => {
  const error = await shell.openPath(checkPath(path));
  if (error) throw new Error(error);
});

Menu.setApplicationMenu(
  Menu.buildFromTemplate([
    { role: 'fileMenu' },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        { role: 'toggleDevTools' },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
  ]),
);

app.on('web-contents-created', (_event, contents) => {
  contents.on('will-attach-webview', (event) => event.preventDefault());
});

app.whenReady().then(
  () =>
    openWindow().catch((error: Error) => {
      dialog.showErrorBox('Video Swin Workbench could not start', error.message);
      app.quit();
    }),
  () => app.quit(),
);

app.on('window-all-closed', () => app.quit());
app.on('will-quit', (event) => {
  if (!service) return;
  event.preventDefault();
  const running = service;
  service = null;
  void running.stop().finally(() => app.quit());
});
