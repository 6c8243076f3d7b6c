// The shell: a skip link, landmark navigation (Alt+1..8 jump between pages), a theme switch, and
// the current page. Each page has one h1; focus moves to it when the page changes.
import { useEffect, useRef } from 'react';
import { PAGES, useWorkbench, workbenchStore, type PageName } from '../state/store.ts';
import { DatasetsPage } from '../features/datasets/DatasetsPage.tsx';
import { ConfigPage } from '../features/config/ConfigPage.tsx';
import { TrainPage } from '../features/train/TrainPage.tsx';
import { RunsPage } from '../features/runs/RunsPage.tsx';
import { AttentionPage } from '../features/attention/AttentionPage.tsx';
import { TryVideoPage } from '../features/try-video/TryVideoPage.tsx';
import { SettingsPage } from '../features/settings/SettingsPage.tsx';
import { ClusterPage } from '../features/cluster/ClusterPage.tsx';

function Page({ name }: { name: PageName }) {
  switch (name) {
    case 'datasets':
      return <DatasetsPage />;
    case 'config':
      return <ConfigPage />;
    case 'train':
      return <TrainPage />;
    case 'runs':
      return <RunsPage />;
    case 'attention':
      return <AttentionPage />;
    case 'try-video':
      return <TryVideoPage />;
    case 'settings':
      return <SettingsPage />;
    case 'cluster':
      return <ClusterPage />;
    default: {
      const unknown: never = name;
      throw new Error(`unknown page ${String(unknown)}`);
    }
  }
}

function Notices() {
  const notices = useWorkbench((s) => s.notices);
  const dismiss = useWorkbench((s) => s.dismiss);
  return (
    <div className="notices" aria-live="polite">
      {notices.map((n) => (
        <div key={n.id} className={`notice ${n.level}`}>
          <span>{n.text}</span>
          <button type="button" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

export function App() {
  const page = useWorkbench((s) => s.page);
  const setPage = useWorkbench((s) => s.setPage);
  const theme = useWorkbench((s) => s.theme);
  const setTheme = useWorkbench((s) => s.setTheme);
  const connection = useWorkbench((s) => s.connection);
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (!event.altKey || event.ctrlKey || event.metaKey) return;
      const index = Number(event.key) - 1;
      if (index >= 0 && index < PAGES.length) {
        event.preventDefault();
        workbenchStore.getState().setPage(PAGES[index].name);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.querySelector('h1')?.focus();
  }, [page]);

  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Video Swin Workbench</span>
        <span className={`connection ${connection}`} role="status">
          {connection === 'open' ? 'connected' : connection === 'connecting' ? 'connecting…' : 'disconnected, retrying'}
        </span>
        <button type="button" onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')} aria-pressed={theme === 'dark'}>
          {theme === 'dark' ? 'Light theme' : 'Dark theme'}
        </button>
      </header>
      <nav aria-label="Pages" className="side">
        <ul>
          {PAGES.map((p, i) => (
            <li key={p.name}>
              <button
                type="button"
                aria-current={page === p.name ? 'page' : undefined}
                onClick={() => setPage(p.name)}
                title={`Alt+${i + 1}`}
              >
                {p.title}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main} tabIndex={-1}>
        <Page name={page} />
      </main>
      <Notices />
    </div>
  );
}
