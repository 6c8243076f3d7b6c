// Small shared pieces: job progress, error text, a folder/file browser for the plain-browser case.
import { useEffect, useState } from 'react';
import { bridge } from '../bridge/client.ts';
import type { FolderListing } from '../../core/protocol/workbench.ts';
import { useWorkbench } from '../state/store.ts';

export function ErrorText({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p role="alert" className="error">
      {error}
    </p>
  );
}

/**
 * While a command the service reports no progress for is running: what it does and the seconds so far,
 * so a long wait (a Kinetics-400 test preview decodes 30 views) never looks like a stuck button.
 */
export function Elapsed({ busy, what }: { busy: boolean; what: string }) {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => {
    if (!busy) return;
    const started = Date.now();
    setSeconds(0);
    const timer = setInterval(() => setSeconds(Math.floor((Date.now() - started) / 1000)), 1000);
    return () => clearInterval(timer);
  }, [busy]);
  if (!busy) return null;
  return (
    <p className="progress-line muted" role="status" aria-label={`${what}: running`}>
      <progress aria-label={`${what}: running`} />
      <span>
        {what}… {seconds} s
      </span>
    </p>
  );
}

export function JobProgress({ command }: { command: string }) {
  const job = useWorkbench((s) => Object.values(s.jobs).find((j) => j.command === command) ?? null);
  if (!job) return null;
  return (
    <div className="progress-line">
      <progress max={Math.max(1, job.total)} value={job.done} aria-label={`${command} progress`} />
      <span>
        {job.message} {job.done}/{job.total}
      </span>
    </div>
  );
}

/** Picks a path: the native dialog in Electron, else a keyboard-usable listing from the service. */
export function PathPicker({
  label,
  value,
  onChange,
  kind,
  id,
}: {
  label: string;
  value: string;
  onChange: (path: string) => void;
  kind: 'folder' | 'file';
  id: string;
}) {
  const [browsing, setBrowsing] = useState(false);
  const [listing, setListing] = useState<FolderListing | null>(null);
  const [error, setError] = useState<string | null>(null);
  const open = async (path?: string) => {
    const native = bridge().native;
    if (native && !path) {
      const picked = kind === 'folder' ? await native.pickFolder() : await native.pickFile();
      if (picked) onChange(picked);
      return;
    }
    try {
      setListing(
        await bridge().call('fs.list', {
          path: path ?? (value ? (kind === 'folder' ? value : value.replace(/\/[^/]*$/, '')) : undefined),
        }),
      );
      setBrowsing(true);
      setError(null);
    } catch (failure) {
      setError((failure as Error).message);
      if (path === undefined) {
        setListing(await bridge().call('fs.list', {}));
        setBrowsing(true);
      }
    }
  };
  return (
    <div className="path-picker">
      <label htmlFor={id}>{label}</label>
      <div className="row">
        <input id={id} value={value} onChange={(e) => onChange(e.target.value)} spellCheck={false} />
        <button type="button" onClick={() => void open()}>
          Browse…
        </button>
      </div>
      <ErrorText error={error} />
      {browsing && listing && (
        <div className="browser" role="group" aria-label={`Browse ${listing.path}`}>
          <div className="row">
            <strong>{listing.path}</strong>
            {kind === 'folder' && (
              <button
                type="button"
                onClick={() => {
                  onChange(listing.path);
                  setBrowsing(false);
                }}
              >
                Use this folder
              </button>
            )}
            <button type="button" onClick={() => setBrowsing(false)}>
              Close
            </button>
          </div>
          <ul>
            {listing.parent && (
              <li>
                <button type="button" className="link" onClick={() => void open(listing.parent ?? undefined)}>
                  ..
                </button>
              </li>
            )}
            {listing.entries.map((entry) => (
              <li key={entry.name}>
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    const full = `${listing.path.replace(/\/$/, '')}/${entry.name}`;
                    if (entry.kind === 'folder') void open(full);
                    else if (kind === 'file') {
                      onChange(full);
                      setBrowsing(false);
                    }
                  }}
                >
                  {entry.kind === 'folder' ? '📁 ' : ''}
                  {entry.name}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

export function useCheckpoints() {
  const checkpoints = useWorkbench((s) => s.checkpoints);
  const setCheckpoints = useWorkbench((s) => s.setCheckpoints);
  useEffect(() => {
    void bridge()
      .call('runs.checkpoints', {})
      .then(setCheckpoints)
      .catch(() => undefined);
  }, [setCheckpoints]);
  return checkpoints;
}

export function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}
