// Beyond one machine: cluster settings (add, edit, remove, a preflight check shown item by item), a
// launch form that shows the generated files (config.py, the sbatch script, the manifest ...)
// before it submits, and the jobs table.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { ErrorText } from '../../app/components.tsx';
import { bridge } from '../../bridge/client.ts';
import { useWorkbench, workbenchStore } from '../../state/store.ts';
import type { ClusterSettings, EngineFlavor, LaunchPreview, PreflightReport } from '../../../core/protocol/cluster.ts';
import type { ClusterLaunchArgs } from '../../../core/protocol/workbench.ts';
import {
  emptyClusterForm,
  finished,
  formOfSettings,
  parseEnvironment,
  settingsOfForm,
  type ClusterForm,
} from './cluster-form.ts';
import { JobsTable } from './JobsTable.tsx';
import './cluster.css';

function refreshClusters(): Promise<void> {
  return bridge()
    .call('cluster.list', {})
    .then((list) => workbenchStore.getState().setClusters(list));
}

function TextField({
  id,
  label,
  value,
  onChange,
  placeholder,
  hint,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  placeholder?: string;
  hint?: string;
}) {
  return (
    <div>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={value}
        placeholder={placeholder}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={hint ? `${id}-hint` : undefined}
      />
      {hint && (
        <span id={`${id}-hint`} className="muted small">
          {hint}
        </span>
      )}
    </div>
  );
}

function PreflightList({ report, withRun = false }: { report: PreflightReport; withRun?: boolean }) {
  const what = `${report.cluster}${withRun ? ' with this run' : ''}`;
  return (
    <div role="region" aria-label={`Check of ${what}`}>
      <p className={report.ok ? 'ok' : 'error'}>
        <strong>
          {report.ok ? `${what}: every check passed` : `${what}: ${report.checks.filter((c) => !c.ok).length} check(s) failed`}
        </strong>
      </p>
      <ul className="checks" aria-label={`Preflight results of ${what}`}>
        {report.checks.map((check) => (
          <li key={check.name} className={check.ok ? 'ok' : 'error'}>
            <span aria-hidden="true">{check.ok ? '✓' : '✗'}</span> <strong>{check.name}</strong>:{' '}
            <span className="detail">{check.detail}</span>
            <span className="sr-only">{check.ok ? ' (passed)' : ' (failed)'}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function SettingsForm({
  initial,
  onSaved,
  onCancel,
}: {
  initial: ClusterForm;
  onSaved: (settings: ClusterSettings) => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<ClusterForm>(initial);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (key: keyof ClusterForm) => ({
    value: form[key],
    onChange: (value: string) => setForm((old) => ({ ...old, [key]: value })),
  });
  return (
    <form
      aria-label="Cluster settings"
      onSubmit={async (event) => {
        event.preventDefault();
        setError(null);
        setBusy(true);
        try {
          const saved = await bridge().call('cluster.save', settingsOfForm(form));
          await refreshClusters();
          onSaved(saved);
        } catch (failure) {
          setError((failure as Error).message);
        } finally {
          setBusy(false);
        }
      }}
    >
      <div className="fields">
        <TextField id="cluster-name" label="Name" {...field('name')} placeholder="hpc" />
        <div>
          <label htmlFor="cluster-kind">Backend</label>
          <select
            id="cluster-kind"
            value={form.kind}
            onChange={(e) => setForm((old) => ({ ...old, kind: e.target.value as ClusterForm['kind'] }))}
          >
            <option value="slurm">slurm (sbatch over SSH)</option>
            <option value="torchrun">torchrun (one machine over SSH)</option>
          </select>
        </div>
        <TextField id="cluster-host" label="SSH host" {...field('host')} placeholder="user@login.example.org or a Host alias" />
        <TextField id="cluster-partition" label="Partition" {...field('partition')} placeholder="default partition" />
        <TextField
          id="cluster-engine"
          label="Engine folder"
          {...field('engineDir')}
          hint="mmaction2 or Video-Swin-Transformer checkout on the cluster"
        />
        <TextField id="cluster-python" label="Python" {...field('python')} />
        <TextField
          id="cluster-remote-root"
          label="Remote work folder"
          {...field('remoteRoot')}
          hint="each run gets a folder here"
        />
        <TextField
          id="cluster-data-root"
          label="Data root"
          {...field('dataRoot')}
          placeholder="the run config's"
          hint="where the videos are on the cluster"
        />
        <div>
          <label htmlFor="cluster-flavor">Engine generation</label>
          <select
            id="cluster-flavor"
            value={form.flavor}
            onChange={(e) => setForm((old) => ({ ...old, flavor: e.target.value as EngineFlavor }))}
          >
            <option value="1.x">mmaction2 1.x</option>
            <option value="0.x">0.x (official Video Swin repo)</option>
          </select>
        </div>
        <TextField id="cluster-gpus" label="GPUs per node" {...field('gpusPerNode')} />
      </div>
      <details>
        <summary>More settings (SSH, resources, environment)</summary>
        <div className="fields">
          <TextField id="cluster-port" label="SSH port" {...field('port')} placeholder="from SSH config" />
          <TextField id="cluster-identity" label="Identity file" {...field('identityFile')} placeholder="from SSH config" />
          <TextField id="cluster-ssh-config" label="SSH config file" {...field('sshConfigFile')} placeholder="~/.ssh/config" />
          <TextField id="cluster-cpus" label="CPUs per task" {...field('cpusPerTask')} />
          <TextField
            id="cluster-time"
            label="Time limit"
            {...field('timeLimit')}
            placeholder="partition default"
            hint='Slurm --time, e.g. "2-00:00:00"'
          />
          <TextField id="cluster-torchrun" label="torchrun command" {...field('torchrun')} />
          <TextField id="cluster-connect-timeout" label="Connect timeout (s)" {...field('connectTimeoutSeconds')} />
          <TextField id="cluster-command-timeout" label="Command timeout (s)" {...field('commandTimeoutSeconds')} />
        </div>
        <div className="grid2">
          <div>
            <label htmlFor="cluster-setup">Setup lines</label>
            <textarea
              id="cluster-setup"
              rows={3}
              value={form.setup}
              onChange={(e) => setForm((old) => ({ ...old, setup: e.target.value }))}
              placeholder="module load cuda/11.8&#10;conda activate mmaction"
            />
          </div>
          <div>
            <label htmlFor="cluster-environment">Environment (NAME=value per line)</label>
            <textarea
              id="cluster-environment"
              rows={3}
              value={form.environment}
              onChange={(e) => setForm((old) => ({ ...old, environment: e.target.value }))}
            />
          </div>
        </div>
      </details>
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save cluster'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      <ErrorText error={error} />
    </form>
  );
}

function ClusterSettingsPanel() {
  const clusters = useWorkbench((s) => s.clusters);
  const [editing, setEditing] = useState<ClusterForm | null>(null);
  const [reports, setReports] = useState<Record<string, PreflightReport>>({});
  const [checking, setChecking] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    void refreshClusters().catch((failure: Error) => setError(failure.message));
  }, []);
  return (
    <section className="panel" aria-labelledby="clusters-heading">
      <h2 id="clusters-heading">Clusters ({clusters.length})</h2>
      {clusters.length === 0 ? (
        <p className="muted">
          No cluster yet: add the login node of a Slurm cluster, or one GPU machine, reachable with your SSH keys.
        </p>
      ) : (
        <table aria-label="Clusters">
          <thead>
            <tr>
              <th>Name</th>
              <th>Backend</th>
              <th>SSH host</th>
              <th>Partition</th>
              <th>Remote work folder</th>
              <th>Data root</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {clusters.map((cluster) => (
              <tr key={cluster.name}>
                <td>{cluster.name}</td>
                <td>
                  {cluster.kind} ({cluster.flavor}, {cluster.gpusPerNode} GPUs/node)
                </td>
                <td>
                  <code>{cluster.host}</code>
                </td>
                <td>{cluster.partition ?? 'default'}</td>
                <td>
                  <code>{cluster.remoteRoot}</code>
                </td>
                <td>{cluster.dataRoot ? <code>{cluster.dataRoot}</code> : "the run config's"}</td>
                <td>
                  <div className="row">
                    <button
                      type="button"
                      aria-label={`Check ${cluster.name}`}
                      disabled={checking !== null}
                      onClick={async () => {
                        setChecking(cluster.name);
                        setError(null);
                        try {
                          const report = await bridge().call('cluster.check', { name: cluster.name });
                          setReports((old) => ({ ...old, [cluster.name]: report }));
                        } catch (failure) {
                          setError((failure as Error).message);
                        } finally {
                          setChecking(null);
                        }
                      }}
                    >
                      {checking === cluster.name ? 'Checking…' : 'Check'}
                    </button>
                    <button type="button" aria-label={`Edit ${cluster.name}`} onClick={() => setEditing(formOfSettings(cluster))}>
                      Edit
                    </button>
                    <button
                      type="button"
                      aria-label={`Remove ${cluster.name}`}
                      onClick={async () => {
                        const following = workbenchStore
                          .getState()
                          .clusterJobs.filter((job) => job.cluster === cluster.name && !finished(job.state)).length;
                        const warning = following ? ` ${following} unfinished job(s) on it will no longer be followed.` : '';
                        if (!window.confirm(`Remove cluster ${cluster.name}? Its runs and jobs stay in the registry.${warning}`))
                          return;
                        try {
                          await bridge().call('cluster.remove', { name: cluster.name });
                          await refreshClusters();
                        } catch (failure) {
                          setError((failure as Error).message);
                        }
                      }}
                    >
                      Remove
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorText error={error} />
      <div aria-live="polite">
        {clusters
          .filter((c) => reports[c.name])
          .map((c) => (
            <PreflightList key={c.name} report={reports[c.name]} />
          ))}
      </div>
      {editing ? (
        <SettingsForm initial={editing} onSaved={() => setEditing(null)} onCancel={() => setEditing(null)} />
      ) : (
        <div className="row">
          <button type="button" onClick={() => setEditing({ ...emptyClusterForm })}>
            Add a cluster
          </button>
        </div>
      )}
    </section>
  );
}

/** A tab list of the generated files; arrow keys move between tabs. */
function GeneratedFiles({ preview }: { preview: LaunchPreview }) {
  const order = ['config.py', 'job.sbatch', 'manifest.json'];
  const files = [...preview.files].sort((a, b) => (order.indexOf(a.path) + 1 || 99) - (order.indexOf(b.path) + 1 || 99));
  const [current, setCurrent] = useState(files[0]?.path ?? '');
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);
  const file = files.find((f) => f.path === current) ?? files[0];
  const onKey = (event: KeyboardEvent, index: number) => {
    const next = event.key === 'ArrowRight' ? index + 1 : event.key === 'ArrowLeft' ? index - 1 : null;
    if (next === null) return;
    event.preventDefault();
    const wrapped = (next + files.length) % files.length;
    setCurrent(files[wrapped].path);
    tabs.current[wrapped]?.focus();
  };
  return (
    <div className="generated" data-testid="generated-files">
      <p>
        Run <code>{preview.runId}</code> goes to <code>{preview.remoteDir}</code>: {preview.manifest.gpus} GPU(s) x{' '}
        {preview.manifest.nodes} node(s), global batch {preview.manifest.globalBatch}, LR {preview.manifest.baseLr} scaled to{' '}
        {preview.manifest.scaledLr}, {preview.manifest.itersPerEpoch} iterations per epoch, {preview.manifest.epochs} epochs.
      </p>
      {preview.manifest.notes.length > 0 && (
        <ul className="muted">
          {preview.manifest.notes.map((note) => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      )}
      <div role="tablist" aria-label="Generated files">
        {files.map((f, index) => (
          <button
            key={f.path}
            ref={(element) => {
              tabs.current[index] = element;
            }}
            type="button"
            role="tab"
            id={`file-tab-${index}`}
            aria-selected={f.path === file?.path}
            aria-controls="file-panel"
            tabIndex={f.path === file?.path ? 0 : -1}
            onClick={() => setCurrent(f.path)}
            onKeyDown={(event) => onKey(event, index)}
          >
            {f.path}
          </button>
        ))}
      </div>
      {file && (
        <pre role="tabpanel" id="file-panel" aria-label={`Contents of ${file.path}`} className="file" tabIndex={0}>
          {file.content}
        </pre>
      )}
    </div>
  );
}

const CONFIG_PAGE = '(the Config page)';
const CLONED = '(cloned run)';

function LaunchPanel() {
  const clusters = useWorkbench((s) => s.clusters);
  const presets = useWorkbench((s) => s.presets);
  const configText = useWorkbench((s) => s.configText);
  const draft = useWorkbench((s) => s.launchDraft);
  const setDraft = useWorkbench((s) => s.setLaunchDraft);
  const [source, setSource] = useState(CONFIG_PAGE);
  const [clonedConfig, setClonedConfig] = useState<unknown>(null);
  const [cluster, setCluster] = useState('');
  const [gpus, setGpus] = useState('');
  const [nodes, setNodes] = useState('1');
  const [flavor, setFlavor] = useState<EngineFlavor | ''>('');
  const [name, setName] = useState('');
  const [logInterval, setLogInterval] = useState('');
  const [environment, setEnvironment] = useState('');
  const [check, setCheck] = useState(true);
  const [preview, setPreview] = useState<{ key: string; result: LaunchPreview } | null>(null);
  const [busy, setBusy] = useState<'preview' | 'check' | 'submit' | null>(null);
  const [report, setReport] = useState<{ key: string; result: PreflightReport } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState<string | null>(null);

  const settings = clusters.find((c) => c.name === cluster) ?? null;
  useEffect(() => {
    if (!cluster && clusters[0]) setCluster(clusters[0].name);
  }, [cluster, clusters]);

  // A clone from the jobs table fills the form once.
  useEffect(() => {
    if (!draft) return;
    setSource(CLONED);
    setClonedConfig(draft.config);
    setCluster(draft.cluster);
    setGpus(draft.gpus ? String(draft.gpus) : '');
    setNodes(draft.nodes ? String(draft.nodes) : '1');
    setFlavor(draft.flavor ?? '');
    setName(draft.name ?? '');
    setDraft(null);
  }, [draft, setDraft]);

  /** The launch arguments, or an error naming the field. */
  const args = useMemo((): ClusterLaunchArgs | string => {
    try {
      let config: unknown;
      if (source === CONFIG_PAGE) {
        try {
          config = JSON.parse(configText);
        } catch (failure) {
          throw new Error(`Run config: the Config page's text is not valid JSON (${(failure as Error).message})`);
        }
      } else if (source === CLONED) config = clonedConfig;
      else config = presets.find((p) => p.name === source)?.config;
      if (!config) throw new Error(`Run config: expected a preset or the Config page's config, received "${source}"`);
      if (!cluster) throw new Error('Cluster: add a cluster first');
      const whole = (text: string, field: string): number | undefined => {
        if (!text.trim()) return undefined;
        const value = Number(text);
        if (!Number.isInteger(value) || value < 1)
          throw new Error(`${field}: expected a whole number of at least 1, received "${text}"`);
        return value;
      };
      const env = parseEnvironment(environment, 'Environment for this run');
      return {
        config,
        cluster,
        gpus: whole(gpus, 'GPUs'),
        nodes: whole(nodes, 'Nodes'),
        flavor: flavor || undefined,
        name: name.trim() || undefined,
        logInterval: whole(logInterval, 'Log interval') ?? null,
        ...(Object.keys(env).length ? { environment: env } : {}),
      };
    } catch (failure) {
      return (failure as Error).message;
    }
  }, [source, configText, clonedConfig, presets, cluster, gpus, nodes, flavor, name, logInterval, environment]);
  const key = typeof args === 'string' ? '' : JSON.stringify(args);
  const current = preview && preview.key === key ? preview.result : null;

  return (
    <section className="panel" aria-labelledby="launch-heading">
      <h2 id="launch-heading">Launch a run on a cluster</h2>
      <div className="fields">
        <div>
          <label htmlFor="launch-config">Run config</label>
          <select id="launch-config" value={source} onChange={(e) => setSource(e.target.value)}>
            <option value={CONFIG_PAGE}>the Config page's config</option>
            {clonedConfig !== null && <option value={CLONED}>the cloned run's config</option>}
            {presets.map((p) => (
              <option key={p.name} value={p.name}>
                preset {p.name}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="launch-cluster">Cluster</label>
          <select id="launch-cluster" value={cluster} onChange={(e) => setCluster(e.target.value)}>
            {clusters.length === 0 && <option value="">(none: add one above)</option>}
            {clusters.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name} ({c.kind})
              </option>
            ))}
          </select>
        </div>
        <TextField
          id="launch-gpus"
          label="GPUs per node"
          value={gpus}
          onChange={setGpus}
          placeholder={settings ? String(settings.gpusPerNode) : '8'}
        />
        <TextField id="launch-nodes" label="Nodes" value={nodes} onChange={setNodes} />
        <div>
          <label htmlFor="launch-flavor">Engine generation</label>
          <select id="launch-flavor" value={flavor} onChange={(e) => setFlavor(e.target.value as EngineFlavor | '')}>
            <option value="">the cluster's ({settings?.flavor ?? '1.x'})</option>
            <option value="1.x">mmaction2 1.x</option>
            <option value="0.x">0.x (official Video Swin repo)</option>
          </select>
        </div>
        <TextField id="launch-name" label="Run name" value={name} onChange={setName} placeholder="the run id" />
        <TextField
          id="launch-log-interval"
          label="Log interval (iterations)"
          value={logInterval}
          onChange={setLogInterval}
          placeholder="engine default"
        />
      </div>
      <div>
        <label htmlFor="launch-environment">Environment for this run (NAME=value per line)</label>
        <textarea id="launch-environment" rows={2} value={environment} onChange={(e) => setEnvironment(e.target.value)} />
      </div>
      <div className="row">
        <button
          type="button"
          disabled={typeof args === 'string' || busy !== null}
          onClick={async () => {
            if (typeof args === 'string') return;
            setBusy('preview');
            setError(null);
            setSubmitted(null);
            try {
              setPreview({ key, result: await bridge().call('cluster.preview', args) });
            } catch (failure) {
              setError((failure as Error).message);
            } finally {
              setBusy(null);
            }
          }}
        >
          {busy === 'preview' ? 'Generating…' : 'Show generated files'}
        </button>
        <button
          type="button"
          disabled={typeof args === 'string' || busy !== null}
          title="Preflight with this run: also checks the base config and the annotation paths on the cluster"
          onClick={async () => {
            if (typeof args === 'string') return;
            setBusy('check');
            setError(null);
            try {
              setReport({ key, result: await bridge().call('cluster.check', { name: args.cluster, launch: args }) });
            } catch (failure) {
              setError((failure as Error).message);
            } finally {
              setBusy(null);
            }
          }}
        >
          {busy === 'check' ? 'Checking…' : 'Check with this run'}
        </button>
        <input type="checkbox" id="launch-check" checked={check} onChange={(e) => setCheck(e.target.checked)} />
        <label htmlFor="launch-check">Check the cluster before submitting</label>
        <button
          type="button"
          className="primary"
          disabled={!current || busy !== null}
          title={current ? undefined : 'Show the generated files first'}
          onClick={async () => {
            if (typeof args === 'string') return;
            setBusy('submit');
            setError(null);
            try {
              // The previewed run id: the files submitted are the files shown.
              const job = await bridge().call('cluster.submit', { ...args, check, runId: current?.runId });
              const text = `Submitted run ${job.runId} to ${job.cluster} as job ${job.jobId}`;
              setSubmitted(text);
              setPreview(null);
              workbenchStore.getState().setClusterJobs(await bridge().call('jobs.list', {}));
            } catch (failure) {
              setError((failure as Error).message);
            } finally {
              setBusy(null);
            }
          }}
        >
          {busy === 'submit' ? 'Submitting…' : 'Submit'}
        </button>
      </div>
      {typeof args === 'string' && <p className="muted">{args}</p>}
      <ErrorText error={error} />
      {submitted && (
        <p role="status" className="ok">
          {submitted}
        </p>
      )}
      <div aria-live="polite">{report && report.key === key && <PreflightList report={report.result} withRun />}</div>
      {current && <GeneratedFiles preview={current} />}
    </section>
  );
}

export function ClusterPage() {
  return (
    <>
      <h1 tabIndex={-1}>Cluster</h1>
      <ClusterSettingsPanel />
      <LaunchPanel />
      <JobsTable />
    </>
  );
}
