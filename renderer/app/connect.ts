// Wires the bridge to the store once per page: connection state, events, and the first data.
import { bridge } from '../bridge/client.ts';
import { workbenchStore, type Theme } from '../state/store.ts';

const THEME_KEY = 'vswin.theme';

export function connectStore(): void {
  const link = bridge();
  const store = workbenchStore.getState();
  const saved = localStorage.getItem(THEME_KEY) as Theme | null;
  const preferred: Theme = saved ?? (window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  store.setTheme(preferred);
  document.documentElement.dataset.theme = preferred;
  workbenchStore.subscribe((state, previous) => {
    if (state.theme !== previous.theme) {
      document.documentElement.dataset.theme = state.theme;
      localStorage.setItem(THEME_KEY, state.theme);
    }
  });
  link.onState((state) => workbenchStore.getState().setConnection(state));
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
  void load();
}
