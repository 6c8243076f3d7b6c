// Plain conversions between the cluster forms' text fields and the protocol's settings and launch
// arguments; every bad field gets a message naming it, the value received and what was expected.
import type { ClusterSettings, ClusterSettingsInput, JobState } from '../../../core/protocol/cluster.ts';

/** The settings form: every field as the text the user typed. */
export interface ClusterForm {
  name: string;
  kind: 'slurm' | 'torchrun';
  host: string;
  port: string;
  identityFile: string;
  sshConfigFile: string;
  partition: string;
  engineDir: string;
  python: string;
  remoteRoot: string;
  dataRoot: string;
  flavor: '0.x' | '1.x';
  gpusPerNode: string;
  cpusPerTask: string;
  timeLimit: string;
  setup: string;
  environment: string;
  torchrun: string;
  connectTimeoutSeconds: string;
  commandTimeoutSeconds: string;
}

export const emptyClusterForm: ClusterForm = {
  name: '',
  kind: 'slurm',
  host: '',
  port: '',
  identityFile: '',
  sshConfigFile: '',
  partition: '',
  engineDir: '~/mmaction2',
  python: 'python',
  remoteRoot: '~/vswin-runs',
  dataRoot: '',
  flavor: '1.x',
  gpusPerNode: '8',
  cpusPerTask: '4',
  timeLimit: '',
  setup: '',
  environment: '',
  torchrun: 'torchrun',
  connectTimeoutSeconds: '10',
  commandTimeoutSeconds: '60',
};

export function formOfSettings(settings: ClusterSettings): ClusterForm {
  return {
    name: settings.name,
    kind: settings.kind,
    host: settings.host,
    port: settings.port === null ? '' : String(settings.port),
    identityFile: settings.identityFile ?? '',
    sshConfigFile: settings.sshConfigFile ?? '',
    partition: settings.partition ?? '',
    engineDir: settings.engineDir,
    python: settings.python,
    remoteRoot: settings.remoteRoot,
    dataRoot: settings.dataRoot ?? '',
    flavor: settings.flavor,
    gpusPerNode: String(settings.gpusPerNode),
    cpusPerTask: String(settings.cpusPerTask),
    timeLimit: settings.timeLimit ?? '',
    setup: settings.setup.join('\n'),
    environment: environmentText(settings.environment),
    torchrun: settings.torchrun,
    connectTimeoutSeconds: String(settings.connectTimeoutSeconds),
    commandTimeoutSeconds: String(settings.commandTimeoutSeconds),
  };
}

export function environmentText(environment: Record<string, string>): string {
  return Object.entries(environment)
    .map(([name, value]) => `${name}=${value}`)
    .join('\n');
}

/** "NAME=value" lines (blank lines and # comments skipped). */
export function parseEnvironment(text: string, field: string): Record<string, string> {
  const environment: Record<string, string> = {};
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match)
      throw new Error(`${field}, line ${index + 1}: expected NAME=value with NAME a shell variable name, received "${line}"`);
    environment[match[1]] = match[2];
  });
  return environment;
}

function integer(text: string, field: string, min: number): number {
  const value = Number(text.trim());
  if (!text.trim() || !Number.isInteger(value) || value < min)
    throw new Error(`${field}: expected a whole number of at least ${min}, received "${text}"`);
  return value;
}

const optional = (text: string): string | null => (text.trim() ? text.trim() : null);

/** What cluster.save receives; the service validates again and names any field it refuses. */
export function settingsOfForm(form: ClusterForm): ClusterSettingsInput {
  if (!form.name.trim()) throw new Error('Name: expected a name such as "hpc" (letters, digits, "_", "." and "-"), received ""');
  if (!form.host.trim()) throw new Error('SSH host: expected user@host or a Host alias of your SSH config, received ""');
  return {
    name: form.name.trim(),
    kind: form.kind,
    host: form.host.trim(),
    port: form.port.trim() ? integer(form.port, 'SSH port', 1) : null,
    identityFile: optional(form.identityFile),
    sshConfigFile: optional(form.sshConfigFile),
    partition: optional(form.partition),
    engineDir: form.engineDir.trim(),
    python: form.python.trim(),
    remoteRoot: form.remoteRoot.trim(),
    dataRoot: optional(form.dataRoot),
    flavor: form.flavor,
    gpusPerNode: integer(form.gpusPerNode, 'GPUs per node', 1),
    cpusPerTask: integer(form.cpusPerTask, 'CPUs per task', 1),
    timeLimit: optional(form.timeLimit),
    setup: form.setup
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line.trim().length > 0),
    environment: parseEnvironment(form.environment, 'Environment'),
    torchrun: form.torchrun.trim(),
    connectTimeoutSeconds: integer(form.connectTimeoutSeconds, 'Connect timeout', 1),
    commandTimeoutSeconds: integer(form.commandTimeoutSeconds, 'Command timeout', 1),
  };
}

export function formatElapsed(seconds: number | null): string {
  if (seconds === null) return '–';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(rest).padStart(2, '0')}` : `${m}:${String(rest).padStart(2, '0')}`;
}

export const finished = (state: JobState): boolean =>
  state === 'completed' || state === 'failed' || state === 'cancelled' || state === 'timeout';

/** The state column: Slurm's word, its pending reason, a failed job's exit code. */
export function stateText(row: {
  state: JobState;
  schedulerState: string;
  reason: string | null;
  exitCode: number | null;
}): string {
  const word = row.state.toUpperCase();
  const reason = row.state === 'pending' && row.reason ? ` (${row.reason})` : '';
  const exit = row.state === 'failed' && row.exitCode !== null ? ` (exit ${row.exitCode})` : '';
  // Slurm's own word when it says more (COMPLETING, CONFIGURING, NODE_FAIL ...).
  const scheduler =
    row.schedulerState && !['GONE', 'SUBMITTED', word].includes(row.schedulerState) ? ` [${row.schedulerState}]` : '';
  return `${word}${reason}${exit}${scheduler}`;
}
