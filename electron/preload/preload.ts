// Preload: named functions only (architecture.md, convention 3). No ipcRenderer, no Node objects
// cross into the page; the main process checks every argument again.
import { contextBridge, ipcRenderer } from 'electron';

contextBridge.exposeInMainWorld('workbenchNative', {
  pickFolder: (): Promise<string | null> => ipcRenderer.invoke('pick-folder'),
  pickFile: (filters?: { name: string; extensions: string[] }[]): Promise<string | null> =>
    ipcRenderer.invoke('pick-file', filters),
  openInFileManager: (path: string): Promise<void> => ipcRenderer.invoke('open-in-file-manager', path),
});
