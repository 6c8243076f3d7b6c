// Config editor: preset picker, a form for the common fields, the full JSON with inline schema
// errors, the diff against the preset, and a live estimate of cost on the service's backend.
import { useEffect, useMemo, useRef, useState } from 'react';
import { ErrorText } from '../../app/components.tsx';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench } from '../../state/store.ts';
import { diffConfigs, getField, parseConfigText, setField } from './config-edit.ts';

const FIELDS: { path: string; label: string; kind: 'number' | 'text' }[] = [
  { path: 'model.variant', label: 'Model variant', kind: 'text' },
  { path: 'model.num_classes', label: 'Classes', kind: 'number' },
  { path: 'data.train_ann', label: 'Train annotations', kind: 'text' },
  { path: 'data.val_ann', label: 'Val annotations', kind: 'text' },
  { path: 'data.root', label: 'Data root', kind: 'text' },
  { path: 'data.pipeline.clip_len', label: 'Frames per clip', kind: 'number' },
  { path: 'data.pipeline.crop_size', label: 'Crop size (px)', kind: 'number' },
  { path: 'epochs', label: 'Epochs', kind: 'number' },
  { path: 'batch_size', label: 'Batch size', kind: 'number' },
  { path: 'update_interval', label: 'Gradient accumulation', kind: 'number' },
  { path: 'optimizer.lr', label: 'Learning rate', kind: 'number' },
  { path: 'optimizer.weight_decay', label: 'Weight decay', kind: 'number' },
];

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(0)} kB`;
}

function formatSeconds(seconds: number): string {
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(1)} h`;
  if (seconds >= 60) return `${(seconds / 60).toFixed(1)} min`;
  return `${seconds.toFixed(1)} s`;
}

export function ConfigPage() {
  const presets = useWorkbench((s) => s.presets);
  const presetName = useWorkbench((s) => s.presetName);
  const choosePreset = useWorkbench((s) => s.choosePreset);
  const text = useWorkbench((s) => s.configText);
  const setText = useWorkbench((s) => s.setConfigText);
  const validation = useWorkbench((s) => s.validation);
  const setValidation = useWorkbench((s) => s.setValidation);
  const setPage = useWorkbench((s) => s.setPage);
  const parsed = useMemo(() => parseConfigText(text), [text]);
  const preset = presets.find((p) => p.name === presetName);
  const diff = useMemo(() => (parsed.ok && preset ? diffConfigs(preset.config, parsed.value) : []), [parsed, preset]);
  const generation = useRef(0);
  // The text the shown validation belongs to: while a newer one is being checked, the numbers are marked as updating.
  const [validatedText, setValidatedText] = useState<string | null>(null);
  const updating = parsed.ok && validatedText !== text;

  useEffect(() => {
    if (!parsed.ok) return;
    const mine = ++generation.current;
    // Validation waits for a pause in typing; answers to older texts are dropped.
    const timer = setTimeout(() => {
      bridge()
        .call('config.validate', { config: parsed.value })
        .then((result) => {
          if (mine !== generation.current) return;
          setValidation(result);
          setValidatedText(text);
        })
        .catch((error: Error) => {
          if (mine !== generation.current) return;
          setValidation({ ok: false, issues: [{ path: '(service)', message: error.message, received: null }], estimate: null });
          setValidatedText(text);
        });
    }, 300);
    return () => clearTimeout(timer);
  }, [parsed, text, setValidation]);

  const update = (path: string, raw: string, kind: 'number' | 'text') => {
    if (!parsed.ok) return;
    const value = kind === 'number' ? (raw === '' ? null : Number(raw)) : raw === '' ? null : raw;
    setText(JSON.stringify(setField(parsed.value, path, value), null, 2));
  };

  const issuesFor = (path: string) => validation?.issues.filter((i) => i.path === path || i.path.startsWith(`${path}.`)) ?? [];
  const estimate = validation?.estimate;

  return (
    <>
      <h1 tabIndex={-1}>Config</h1>
      <section className="panel" aria-labelledby="preset-heading">
        <h2 id="preset-heading">Preset</h2>
        <div className="row">
          <label htmlFor="preset">Start from</label>
          <select id="preset" value={presetName} onChange={(e) => choosePreset(e.target.value)}>
            {presets.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
          <button type="button" className="primary" disabled={!validation?.ok} onClick={() => setPage('train')}>
            Use this config for training
          </button>
        </div>
      </section>
      <div className="grid2">
        <section className="panel" aria-labelledby="form-heading">
          <h2 id="form-heading">Common fields</h2>
          {!parsed.ok && <p className="error">Fix the JSON first: {parsed.message}</p>}
          <div className="fields">
            {FIELDS.map((field) => {
              const value = parsed.ok ? getField(parsed.value, field.path) : undefined;
              const issues = issuesFor(field.path);
              const id = `field-${field.path.replace(/\./g, '-')}`;
              return (
                <div key={field.path}>
                  <label htmlFor={id}>{field.label}</label>
                  <input
                    id={id}
                    type={field.kind}
                    step="any"
                    disabled={!parsed.ok}
                    value={value === undefined || value === null ? '' : String(value)}
                    aria-invalid={issues.length > 0}
                    aria-describedby={issues.length ? `${id}-error` : undefined}
                    onChange={(e) => update(field.path, e.target.value, field.kind)}
                  />
                  {issues.length > 0 && (
                    <span id={`${id}-error`} className="error">
                      {issues.map((i) => i.message).join('; ')}
                    </span>
                  )}
                </div>
              );
            })}
          </div>
          <h2>
            Estimate on {estimate?.backend ?? 'the current backend'}
            {updating && (
              <span className="muted updating" role="status" aria-label="Estimate updating">
                {' '}
                updating…
              </span>
            )}
          </h2>
          {estimate ? (
            <table aria-label="Estimate" className={updating ? 'stale' : undefined}>
              <tbody>
                <tr>
                  <th>Parameters</th>
                  <td className="num">{(estimate.parameters / 1e6).toFixed(2)} M</td>
                </tr>
                <tr>
                  <th>FLOPs per clip ({estimate.clip.join('x')})</th>
                  <td className="num">{estimate.gflopsPerClip.toFixed(3)} G multiply-adds</td>
                </tr>
                <tr>
                  <th>Training memory (activations per micro-batch)</th>
                  <td className="num">{formatBytes(estimate.activationBytes)}</td>
                </tr>
                <tr>
                  <th>Weights + gradients + AdamW state</th>
                  <td className="num">{formatBytes(estimate.parameterBytes)}</td>
                </tr>
                <tr>
                  <th>
                    Time per epoch (
                    {estimate.timeMethod === 'timed'
                      ? 'one training step timed on this backend'
                      : `lower bound at ${estimate.measuredGflops.toFixed(1)} GFLOP/s measured`}
                    )
                  </th>
                  <td className="num">
                    {estimate.secondsPerEpoch === null ? 'unknown (no train list)' : formatSeconds(estimate.secondsPerEpoch)}
                  </td>
                </tr>
                <tr>
                  <td colSpan={2} className="muted">
                    Model compute only: decoding and augmenting the videos is left out (on full-size videos it can take longer
                    than the model; the first epoch&apos;s log gives the real figure).
                  </td>
                </tr>
              </tbody>
            </table>
          ) : (
            <p className="muted">Appears once the config is readable (its data need not exist yet).</p>
          )}
        </section>
        <section className="panel" aria-labelledby="json-heading">
          <h2 id="json-heading">Full config (JSON)</h2>
          <label htmlFor="config-json" className="muted">
            Edit freely; errors show below as you type.
          </label>
          <textarea
            id="config-json"
            rows={22}
            value={text}
            spellCheck={false}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={validation ? !validation.ok : false}
          />
          <div aria-live="polite">
            {!parsed.ok && <ErrorText error={parsed.message} />}
            {parsed.ok && validation && !validation.ok && (
              <ul className="error" aria-label="Schema errors">
                {validation.issues.map((issue, i) => (
                  <li key={i}>
                    <code>{issue.path}</code>: {issue.message}
                  </li>
                ))}
              </ul>
            )}
            {parsed.ok && validation?.ok && <p className="ok">Valid: every named file exists.</p>}
          </div>
          <h2>Changes against {presetName || 'the preset'}</h2>
          {diff.length === 0 ? (
            <p className="muted">No changes.</p>
          ) : (
            <table aria-label="Changes against the preset">
              <thead>
                <tr>
                  <th>Field</th>
                  <th>Preset</th>
                  <th>Now</th>
                </tr>
              </thead>
              <tbody>
                {diff.map((d) => (
                  <tr key={d.path}>
                    <td>
                      <code>{d.path}</code>
                    </td>
                    <td className="diff-del">{d.before ?? '–'}</td>
                    <td className="diff-add">{d.after ?? '–'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </>
  );
}
