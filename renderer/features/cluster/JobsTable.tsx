// The cluster jobs table (on the Cluster page and beside the local runs): state with Slurm's pending
// reason, GPUs, elapsed time, last metrics; cancel, resume, clone, pull a checkpoint, open the log.
// Rows follow the service's job watcher: every cluster event refetches them.
import { Fragment, useEffect, useState } from 'react';
import { ErrorText } from '../../app/components.tsx';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench, workbenchStore } from '../../state/store.ts';
import type { ClusterJobLog, ClusterJobRow } from '../../../core/protocol/workbench.ts';
import { finished, formatElapsed, stateText } from './cluster-form.ts';

function PullControl({ row, onPulled }: { row: ClusterJobRow; onPulled: (message: string) => void }) {
  const names = (row.checkpoints ?? []).filter((c) => c.kind !== 'latest' && c.kind !== 'other').map((c) => c.name);
  const [which, setWhich] = useState('latest');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <span className="row">
      <select aria-label={`Checkpoint of ${row.runName} to pull`} value={which} onChange={(e) => setWhich(e.target.value)}>
        <option value="latest">latest</option>
        <option value="best">best</option>
        {names.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
      <button
        type="button"
        aria-label={`Pull checkpoint of ${row.runName}`}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            const pulled = await bridge().call('jobs.pull', { runId: row.runId, which });
            onPulled(
              `pulled ${pulled.remote.name} of ${row.runName}: now in Compare checkpoints as "${row.runName} epoch ${pulled.remote.epoch ?? '?'}"`,
            );
            workbenchStore.getState().setCheckpoints(await bridge().call('runs.checkpoints', {}));
          } catch (failure) {
            setError((failure as Error).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        {busy ? 'Pulling…' : 'Pull'}
      </button>
      <ErrorText error={error} />
    </span>
  );
}

function LogView({ log, onClose }: { log: ClusterJobLog; onClose: () => void }) {
  return (
    <div role="region" aria-label={`Log of job ${log.jobId}`} className="panel-inner">
      <div className="row">
        <h3>
          Log of job {log.jobId} ({log.runId})
        </h3>
        <button type="button" onClick={onClose}>
          Close log
        </button>
      </div>
      <h4>{log.outputFile}</h4>
      <pre className="log" aria-label={`Output of job ${log.jobId}`}>
        {log.output || '(empty)'}
      </pre>
      <h4>{log.engineLogFile ?? 'engine log (none read yet)'}</h4>
      <pre className="log" aria-label={`Engine log of job ${log.jobId}`}>
        {log.engineLog || '(empty)'}
      </pre>
    </div>
  );
}

export function JobsTable({ title = 'Cluster jobs' }: { title?: string }) {
  const rows = useWorkbench((s) => s.clusterJobs);
  const setRows = useWorkbench((s) => s.setClusterJobs);
  const revision = useWorkbench((s) => s.clusterRevision);
  const errors = useWorkbench((s) => s.clusterErrors);
  const [error, setError] = useState<string | null>(null);
  const [log, setLog] = useState<ClusterJobLog | null>(null);
  const [busyRun, setBusyRun] = useState<string | null>(null);
  const [pulled, setPulled] = useState<string | null>(null);

  useEffect(() => {
    void bridge()
      .call('jobs.list', {})
      .then(setRows)
      .catch((failure: Error) => setError(failure.message));
  }, [setRows, revision]);

  const act = async (row: ClusterJobRow, what: string, work: () => Promise<unknown>) => {
    setBusyRun(row.runId);
    setError(null);
    try {
      await work();
      setRows(await bridge().call('jobs.list', {}));
    } catch (failure) {
      setError(`${what} ${row.runName}: ${(failure as Error).message}`);
    } finally {
      setBusyRun(null);
    }
  };

  const headingId = `jobs-heading-${title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <section className="panel" aria-labelledby={headingId}>
      <h2 id={headingId}>
        {title} ({rows.length})
      </h2>
      {rows.length === 0 ? (
        <p className="muted">No cluster jobs yet: launch one on the Cluster page.</p>
      ) : (
        <div style={{ overflowX: 'auto' }}>
          <table aria-label="Cluster jobs">
            <thead>
              <tr>
                <th>Run</th>
                <th>Cluster / job</th>
                <th>State</th>
                <th className="num">GPUs</th>
                <th className="num">Elapsed</th>
                <th className="num">Epochs</th>
                <th className="num">Last loss</th>
                <th className="num">Val top-1</th>
                <th>Actions</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => {
                // A note under the row only when it says more than the state column.
                const note =
                  row.message && row.message !== `pending: ${row.reason}` && row.message !== row.state ? row.message : null;
                return (
                  <Fragment key={row.runId}>
                    <tr data-run={row.runId} className={note || errors[row.runId] ? 'has-note' : undefined}>
                      <td title={row.runId}>{row.runName}</td>
                      <td>
                        {row.cluster} #{row.jobId}
                        {row.attempt > 1 ? ` (attempt ${row.attempt})` : ''}
                      </td>
                      <td>
                        <span className={`job-state ${row.state}`} data-testid={`job-state-${row.runName}`}>
                          {stateText(row)}
                        </span>
                      </td>
                      <td className="num">
                        {row.gpus}
                        {row.nodes > 1 ? ` x ${row.nodes} nodes` : ''}
                      </td>
                      <td className="num">{formatElapsed(row.elapsedSeconds)}</td>
                      <td className="num">
                        {row.epochsDone}/{row.epochs}
                      </td>
                      <td className="num">
                        {row.lastLoss === null ? '–' : `${row.lastLoss.toFixed(4)} @ ${(row.lastIteration ?? 0) + 1}`}
                      </td>
                      <td className="num">{row.lastValTop1 === null ? '–' : `${(row.lastValTop1 * 100).toFixed(1)}%`}</td>
                      <td>
                        <div className="row">
                          {!finished(row.state) ? (
                            <button
                              type="button"
                              aria-label={`Cancel job of ${row.runName}`}
                              disabled={busyRun === row.runId}
                              onClick={() => void act(row, 'cancel', () => bridge().call('jobs.cancel', { runId: row.runId }))}
                            >
                              Cancel
                            </button>
                          ) : (
                            row.state !== 'completed' && (
                              <button
                                type="button"
                                aria-label={`Resume ${row.runName}`}
                                disabled={busyRun === row.runId}
                                onClick={() => void act(row, 'resume', () => bridge().call('jobs.resume', { runId: row.runId }))}
                              >
                                Resume
                              </button>
                            )
                          )}
                          <button
                            type="button"
                            aria-label={`Clone ${row.runName}`}
                            onClick={() =>
                              void act(row, 'clone', async () => {
                                const draft = await bridge().call('jobs.clone', { runId: row.runId });
                                const state = workbenchStore.getState();
                                state.setLaunchDraft(draft);
                                state.setPage('cluster');
                              })
                            }
                          >
                            Clone
                          </button>
                          <button
                            type="button"
                            aria-label={`Open log of ${row.runName}`}
                            onClick={() =>
                              void act(row, 'open the log of', async () => {
                                setLog(await bridge().call('jobs.log', { runId: row.runId }));
                              })
                            }
                          >
                            Log
                          </button>
                        </div>
                        <PullControl row={row} onPulled={setPulled} />
                      </td>
                    </tr>
                    {(note || errors[row.runId]) && (
                      <tr className="job-note">
                        <td colSpan={9}>
                          {note && <span className="muted small">{note}</span>}
                          {errors[row.runId] && <span className="error small"> {errors[row.runId]}</span>}
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {rows.length > 0 && (
        <div className="row">
          <button
            type="button"
            disabled={busyRun !== null}
            onClick={async () => {
              setBusyRun('*');
              setError(null);
              try {
                setRows(await bridge().call('jobs.list', { refresh: true }));
              } catch (failure) {
                setError((failure as Error).message);
              } finally {
                setBusyRun(null);
              }
            }}
          >
            {busyRun === '*' ? 'Polling…' : 'Poll unfinished jobs now'}
          </button>
          <span className="muted">The service polls them every few seconds on its own.</span>
        </div>
      )}
      <ErrorText error={error} />
      {pulled && (
        <p role="status" className="ok">
          {pulled}
        </p>
      )}
      {log && <LogView log={log} onClose={() => setLog(null)} />}
    </section>
  );
}
