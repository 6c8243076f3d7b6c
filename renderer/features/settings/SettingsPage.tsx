// Settings: the backend and why it was chosen, the kernel tier as `vswin doctor` names it, the workbench home, the ffmpeg in use, the theme.
import { PAGES, useWorkbench } from '../../state/store.ts';
import { bridge } from '../../bridge/client.ts';
import type { SettingsInfo } from '../../../core/protocol/workbench.ts';

/** The tier in `vswin doctor`'s words: "native tier, avx512 code on 2 threads". */
function describeTier(kernels: NonNullable<SettingsInfo['kernels']>): string {
  if (kernels.tier === 'stock') return 'stock TensorFlow.js kernels';
  return `${kernels.tier} tier, ${kernels.isa ?? 'portable'} code on ${kernels.threads} thread${kernels.threads === 1 ? '' : 's'}`;
}

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
                <th>Kernels</th>
                <td data-testid="kernel-tier">
                  {settings.kernels ? describeTier(settings.kernels) : 'not chosen yet (the backend has not started)'}
                </td>
              </tr>
              {settings.kernels && (
                <>
                  <tr>
                    <th>Instruction set</th>
                    <td>{settings.kernels.isa ?? 'none (stock kernels)'}</td>
                  </tr>
                  <tr>
                    <th>Threads</th>
                    <td>{settings.kernels.threads}</td>
                  </tr>
                  <tr>
                    <th>Why this tier</th>
                    <td>
                      {settings.kernels.reason}
                      {settings.kernels.kernels.length > 0 && (
                        <span className="muted"> Replaces {settings.kernels.kernels.join(', ')}.</span>
                      )}
                    </td>
                  </tr>
                </>
              )}
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
