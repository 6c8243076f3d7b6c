// Wires the bridge to the store once per page: connection state, events, and the first data.
import { bridge } from '../bridge/client.ts';
import { workbenchStore, type Theme } from '../state/store.ts';

const THEME_KEY = 'vswin.theme';
/** The config being edited: kept across reloads and service restarts (the service comes back on the same origin). */
const CONFIG_KEY = 'vswin.config';

function restoreConfig(): void {
  try {
    const saved = JSON.parse(localStorage.getItem(CONFIG_KEY) ?? 'null') as { presetName?: unknown; configText?: unknown } | null;
    // Set before the presets arrive, so the first preset does not replace it.
    if (saved && typeof saved.presetName === 'string' && typeof saved.configText === 'string' && saved.configText.trim())
      workbenchStore.setState({ presetName: saved.presetName, configText: saved.configText });
  } catch {
    localStorage.removeItem(CONFIG_KEY);
  }
}

export function connectStore(): void {
  const link = bridge();
  const store = workbenchStore.getState();
  const saved = localStorage.getItem(THEME_KEY) as Theme | null;
  const preferred: Theme = saved ?? (window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  store.setTheme(preferred);
  document.documentElement.dataset.theme = preferred;
  restoreConfig();
  workbenchStore.subscribe((state, previous) => {
    if (state.configText !== previous.configText || state.presetName !== previous.presetName)
      localStorage.setItem(CONFIG_KEY, JSON.stringify({ presetName: state.presetName, configText: state.configText }));
    if (state.theme !== previous.theme) {
      document.documentElement.dataset.theme = state.theme;
      localStorage.setItem(THEME_KEY, state.theme);
    }
  });
  let opened = false;
  link.onState((state) => {
    workbenchStore.getState().setConnection(state);
    if (state !== 'open') return;
    // A reconnect may be to a restarted service: what the page shows is read again, and a run that was
    // going when the service died shows as interrupted (Resume continues it from its last checkpoint).
    if (opened) void reload();
    opened = true;
  });
  link.onEvent((event) => workbenchStore.getState().applyEvent(event));
  const load = async () => {
    try {
      const [settings, datasets, presets] = await Promise.all([
        link.call('settings.get', {}),
        link.call('datasets.list', {}),
        link.call('config.presets', {}),
      ]);
      const state = workbenchStore.getState();
      state.setSettings(settings);
      state.setDatasets(datasets);
      state.setPresets(presets);
    } catch (error) {
      workbenchStore.getState().notify('error', (error as Error).message);
    }
  };
  const reload = async () => {
    await load();
    try {
      const runs = await link.call('runs.list', {});
      const state = workbenchStore.getState();
      state.setRuns(runs);
      const current = runs.find((run) => run.id === state.runId);
      if (current && (state.status === 'running' || state.status === 'paused' || state.status === 'starting'))
        state.setRunStatus(current.status);
    } catch (error) {
      workbenchStore.getState().notify('error', (error as Error).message);
    }
  };
  void load();
}
