// Settings: the backend and why it was chosen, the workbench home, the ffmpeg in use, the theme.
import { PAGES, useWorkbench } from '../../state/store.ts';
import { bridge } from '../../bridge/client.ts';

export function SettingsPage() {
  const settings = useWorkbench((s) => s.settings);
  const theme = useWorkbench((s) => s.theme);
  const setTheme = useWorkbench((s) => s.setTheme);
  const native = bridge().native;
  return (
    <>
      <h1 tabIndex={-1}>Settings</h1>
      <section className="panel" aria-labelledby="engine-heading">
        <h2 id="engine-heading">Engine</h2>
        {settings ? (
          <table aria-label="Engine settings">
            <tbody>
              <tr>
                <th>Backend</th>
                <td>{settings.backend}</td>
              </tr>
              <tr>
                <th>Why</th>
                <td>{settings.backendReason}</td>
              </tr>
              <tr>
                <th>GPU (WebGPU)</th>
                <td>{settings.gpu}</td>
              </tr>
              <tr>
                <th>Workbench home</th>
                <td>
                  <code>{settings.home}</code>
                  {native && (
                    <button type="button" onClick={() => void native.openInFileManager(settings.home)}>
                      Open
                    </button>
                  )}
                </td>
              </tr>
              <tr>
                <th>Video tools</th>
                <td>{settings.ffmpeg}</td>
              </tr>
              <tr>
                <th>Version</th>
                <td>{settings.version}</td>
              </tr>
              <tr>
                <th>Demo dataset</th>
                <td>{settings.demoDataset ? <code>{settings.demoDataset.trainAnn}</code> : 'not generated'}</td>
              </tr>
            </tbody>
          </table>
        ) : (
          <p className="muted">Loading…</p>
        )}
        <p className="muted">
          The backend is chosen when the service starts: <code>vswin --backend webgpu|wasm|cpu|tensorflow serve</code> or the{' '}
          <code>VSWIN_BACKEND</code> variable.
        </p>
      </section>
      <section className="panel" aria-labelledby="look-heading">
        <h2 id="look-heading">Appearance</h2>
        <fieldset>
          <legend>Theme</legend>
          {(['light', 'dark'] as const).map((t) => (
            <div key={t}>
              <input type="radio" id={`theme-${t}`} name="theme" checked={theme === t} onChange={() => setTheme(t)} />
              <label htmlFor={`theme-${t}`}>{t === 'light' ? 'Light' : 'Dark'}</label>
            </div>
          ))}
        </fieldset>
        <p className="muted">
          Keyboard: Alt+1 … Alt+{PAGES.length} open the pages in the order of the menu; Tab moves through every control.
        </p>
      </section>
    </>
  );
}
