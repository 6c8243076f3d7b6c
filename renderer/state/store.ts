// One zustand store built from typed slices (architecture.md, convention 10). Components select
// single fields. Curve points never enter the store: they stream straight into the charts.
import { createStore, type StoreApi } from 'zustand/vanilla';
import { useStore } from 'zustand';
import type {
  AttentionView,
  CheckpointSummary,
  Comparison,
  ConfigValidation,
  DatasetRef,
  PipelinePreview,
  Prediction,
  RunSummary,
  ScanSummary,
  SettingsInfo,
  TrainEvent,
  WorkbenchEvent,
  WrittenDataset,
  AnnotationCheck,
} from '../../core/protocol/workbench.ts';
import type { ClusterJobRow, ClusterLaunchArgs } from '../../core/protocol/workbench.ts';
import type { ClusterEvent, ClusterSettings } from '../../core/protocol/cluster.ts';

export type PageName = 'datasets' | 'config' | 'train' | 'runs' | 'attention' | 'try-video' | 'settings' | 'cluster';
export const PAGES: { name: PageName; title: string }[] = [
  { name: 'datasets', title: 'Datasets' },
  { name: 'config', title: 'Config' },
  { name: 'train', title: 'Training' },
  { name: 'runs', title: 'Runs & checkpoints' },
  { name: 'attention', title: 'Attention windows' },
  { name: 'try-video', title: 'Try a video' },
  { name: 'settings', title: 'Settings' },
  // Last, so the Alt+number shortcuts of the other pages stay as they were.
  { name: 'cluster', title: 'Cluster' },
];
export type Theme = 'light' | 'dark';

export interface UiSlice {
  page: PageName;
  theme: Theme;
  connection: 'connecting' | 'open' | 'closed';
  notices: { id: number; level: 'info' | 'warn' | 'error'; text: string }[];
  setPage(page: PageName): void;
  setTheme(theme: Theme): void;
  setConnection(state: UiSlice['connection']): void;
  notify(level: 'info' | 'warn' | 'error', text: string): void;
  dismiss(id: number): void;
}

export interface JobsSlice {
  jobs: Record<string, { command: string; done: number; total: number; message: string }>;
}

export interface SettingsSlice {
  settings: SettingsInfo | null;
  setSettings(settings: SettingsInfo): void;
}

export interface DatasetsSlice {
  datasets: DatasetRef[];
  scan: ScanSummary | null;
  written: WrittenDataset | null;
  check: AnnotationCheck | null;
  preview: PipelinePreview | null;
  setDatasets(datasets: DatasetRef[]): void;
  setScan(scan: ScanSummary | null): void;
  setWritten(written: WrittenDataset | null): void;
  setCheck(check: AnnotationCheck | null): void;
  setPreview(preview: PipelinePreview | null): void;
}

export interface ConfigSlice {
  presets: { name: string; config: Record<string, unknown> }[];
  presetName: string;
  configText: string;
  validation: ConfigValidation | null;
  setPresets(presets: ConfigSlice['presets']): void;
  choosePreset(name: string): void;
  setConfigText(text: string): void;
  setValidation(validation: ConfigValidation | null): void;
}

export interface TrainSlice {
  runId: string | null;
  runName: string;
  status: 'idle' | 'starting' | 'running' | 'paused' | 'completed' | 'stopped' | 'failed' | 'interrupted';
  backend: string;
  epoch: number;
  epochs: number;
  iteration: number;
  totalIterations: number;
  clipsPerSecond: number;
  etaSeconds: number;
  /** Samples the loaders skipped in this run's epochs so far (unreadable or too short videos). */
  skipped: number;
  /** Val top-1 of the last validated epoch (single clip), null before the first validation. */
  valTop1: number | null;
  log: string[];
  setStarting(name: string): void;
  /** The current run's status as the registry has it (after a reconnect). */
  setRunStatus(status: string): void;
  applyTrainEvent(event: TrainEvent): void;
}

export interface RunsSlice {
  runs: RunSummary[];
  selectedRuns: string[];
  checkpoints: CheckpointSummary[];
  comparison: Comparison | null;
  setRuns(runs: RunSummary[]): void;
  toggleRun(id: string): void;
  setCheckpoints(checkpoints: CheckpointSummary[]): void;
  setComparison(comparison: Comparison | null): void;
}

export interface InspectSlice {
  attention: AttentionView | null;
  prediction: Prediction | null;
  setAttention(view: AttentionView | null): void;
  setPrediction(prediction: Prediction | null): void;
}

export interface ClusterSlice {
  clusters: ClusterSettings[];
  clusterJobs: ClusterJobRow[];
  /** Bumped by every cluster event: tables refetch their rows, the run overlays their curves. */
  clusterRevision: number;
  /** Runs whose last cluster event brought new metrics or a new state. */
  clusterChangedRuns: string[];
  /** The watcher's last error per run (cleared by the next successful poll). */
  clusterErrors: Record<string, string>;
  /** A launch to edit (a clone), picked up by the launch form. */
  launchDraft: ClusterLaunchArgs | null;
  setClusters(clusters: ClusterSettings[]): void;
  setClusterJobs(rows: ClusterJobRow[]): void;
  setLaunchDraft(draft: ClusterLaunchArgs | null): void;
  applyClusterEvent(event: ClusterEvent): void;
}

export type WorkbenchState = UiSlice &
  JobsSlice &
  SettingsSlice &
  DatasetsSlice &
  ConfigSlice &
  TrainSlice &
  RunsSlice &
  InspectSlice &
  ClusterSlice & {
    applyEvent(event: WorkbenchEvent): void;
  };

type Set = StoreApi<WorkbenchState>['setState'];
type Get = StoreApi<WorkbenchState>['getState'];

const LOG_LINES = 300;
let noticeId = 0;

const uiSlice = (set: Set): UiSlice => ({
  page: 'datasets',
  theme: 'light',
  connection: 'connecting',
  notices: [],
  setPage: (page) => set({ page }),
  setTheme: (theme) => set({ theme }),
  setConnection: (connection) => set({ connection }),
  notify: (level, text) => set((state) => ({ notices: [...state.notices.slice(-4), { id: ++noticeId, level, text }] })),
  dismiss: (id) => set((state) => ({ notices: state.notices.filter((n) => n.id !== id) })),
});

const settingsSlice = (set: Set): SettingsSlice => ({
  settings: null,
  setSettings: (settings) => set({ settings }),
});

const datasetsSlice = (set: Set): DatasetsSlice => ({
  datasets: [],
  scan: null,
  written: null,
  check: null,
  preview: null,
  setDatasets: (datasets) => set({ datasets }),
  setScan: (scan) => set({ scan, written: null }),
  setWritten: (written) => set({ written }),
  setCheck: (check) => set({ check }),
  setPreview: (preview) => set({ preview }),
});

const configSlice = (set: Set, get: Get): ConfigSlice => ({
  presets: [],
  presetName: '',
  configText: '',
  validation: null,
  setPresets: (presets) => {
    set({ presets });
    if (!get().presetName && presets[0]) get().choosePreset(presets[0].name);
  },
  choosePreset: (name) => {
    const preset = get().presets.find((p) => p.name === name);
    if (!preset) return;
    set({ presetName: name, configText: JSON.stringify(preset.config, null, 2), validation: null });
  },
  setConfigText: (configText) => set({ configText }),
  setValidation: (validation) => set({ validation }),
});

function line(event: TrainEvent): string | null {
  switch (event.kind) {
    case 'run-started':
      return `${event.resumed ? 'resumed' : 'started'} ${event.name}: ${event.epochs} epochs x ${event.iterationsPerEpoch} iterations on ${event.backend}`;
    case 'iteration':
      return null;
    case 'epoch': {
      const val = event.val
        ? `, val loss ${event.val.loss.toFixed(4)}, top-1 ${(event.val.top1 * 100).toFixed(1)}%, top-5 ${(event.val.top5 * 100).toFixed(1)}%`
        : '';
      const skipped = event.skipped > 0 ? `, ${event.skipped} unreadable samples skipped` : '';
      return `epoch ${event.epoch + 1}/${event.epochs}: train loss ${event.train.loss.toFixed(4)}${val}${skipped} (${event.seconds.toFixed(1)} s)`;
    }
    case 'checkpoint':
      return `checkpoint epoch ${event.epoch} (${event.reasons.join(', ')}): ${event.path}`;
    case 'paused':
      return `paused at iteration ${event.iteration}`;
    case 'resumed':
      return `resumed at iteration ${event.iteration}`;
    case 'run-finished': {
      const val = event.val ? `; val top-1 ${(event.val.top1 * 100).toFixed(1)}% at the last epoch` : '';
      return `run ${event.status}${event.message ? `: ${event.message}` : ''} after ${event.seconds.toFixed(1)} s${val}`;
    }
    default: {
      const unknown: never = event;
      throw new Error(`unknown training event ${JSON.stringify(unknown)}`);
    }
  }
}

/** A run's figures before its first event. */
const NO_RUN_FIGURES = {
  runId: null,
  backend: '',
  epoch: 0,
  epochs: 0,
  iteration: 0,
  totalIterations: 0,
  clipsPerSecond: 0,
  etaSeconds: 0,
  valTop1: null,
  skipped: 0,
};

const trainSlice = (set: Set, get: Get): TrainSlice => ({
  ...NO_RUN_FIGURES,
  runName: '',
  status: 'idle',
  log: [],
  // A new run starts from nothing: the previous run's figures never show under its name (issue 18, defect 12).
  setStarting: (runName) => set({ ...NO_RUN_FIGURES, status: 'starting', runName, log: [] }),
  setRunStatus: (status) => {
    const known = ['running', 'paused', 'completed', 'stopped', 'failed', 'interrupted'] as const;
    const match = known.find((k) => k === status);
    if (match) set({ status: match });
  },
  applyTrainEvent: (event) => {
    const state = get();
    // Events of another run (a second client started it) are logged but do not take over the page.
    if (state.runId && event.runId !== state.runId && event.kind !== 'run-started') return;
    const text = line(event);
    const log = text ? [...state.log.slice(-(LOG_LINES - 1)), text] : state.log;
    switch (event.kind) {
      case 'run-started':
        set({
          runId: event.runId,
          runName: event.name,
          status: 'running',
          backend: event.backend,
          epochs: event.epochs,
          epoch: event.startEpoch,
          iteration: event.startIteration,
          totalIterations: event.epochs * event.iterationsPerEpoch,
          valTop1: event.resumed ? state.valTop1 : null,
          log,
        });
        return;
      case 'iteration':
        set({
          iteration: event.iteration + 1,
          epoch: event.epoch,
          clipsPerSecond: event.clipsPerSecond,
          etaSeconds: event.etaSeconds,
        });
        return;
      case 'epoch':
        set({
          epoch: event.epoch + 1,
          etaSeconds: event.etaSeconds,
          skipped: state.skipped + event.skipped,
          log,
          ...(event.val ? { valTop1: event.val.top1 } : {}),
        });
        return;
      case 'checkpoint':
        set({ log });
        return;
      case 'paused':
        set({ status: 'paused', log });
        return;
      case 'resumed':
        set({ status: 'running', log });
        return;
      case 'run-finished':
        set({ status: event.status, etaSeconds: 0, log, ...(event.val ? { valTop1: event.val.top1 } : {}) });
        return;
      default: {
        const unknown: never = event;
        throw new Error(`unknown training event ${JSON.stringify(unknown)}`);
      }
    }
  },
});

const runsSlice = (set: Set): RunsSlice => ({
  runs: [],
  selectedRuns: [],
  checkpoints: [],
  comparison: null,
  setRuns: (runs) => set((state) => ({ runs, selectedRuns: state.selectedRuns.filter((id) => runs.some((r) => r.id === id)) })),
  toggleRun: (id) =>
    set((state) => ({
      selectedRuns: state.selectedRuns.includes(id) ? state.selectedRuns.filter((r) => r !== id) : [...state.selectedRuns, id],
    })),
  setCheckpoints: (checkpoints) => set({ checkpoints }),
  setComparison: (comparison) => set({ comparison }),
});

const inspectSlice = (set: Set): InspectSlice => ({
  attention: null,
  prediction: null,
  setAttention: (attention) => set({ attention }),
  setPrediction: (prediction) => set({ prediction }),
});

const clusterSlice = (set: Set): ClusterSlice => ({
  clusters: [],
  clusterJobs: [],
  clusterRevision: 0,
  clusterChangedRuns: [],
  clusterErrors: {},
  launchDraft: null,
  setClusters: (clusters) => set({ clusters }),
  setClusterJobs: (clusterJobs) => set({ clusterJobs }),
  setLaunchDraft: (launchDraft) => set({ launchDraft }),
  applyClusterEvent: (event) => {
    switch (event.kind) {
      case 'cluster-job': {
        const { job, status, checkpoints } = event.result;
        set((state) => {
          const errors = { ...state.clusterErrors };
          delete errors[job.runId];
          // The row changes at once; the next jobs.list brings the metrics columns.
          const clusterJobs = state.clusterJobs.map((row) =>
            row.runId === job.runId
              ? {
                  ...row,
                  ...job,
                  state: status.state,
                  schedulerState: status.schedulerState,
                  reason: status.reason,
                  exitCode: status.exitCode,
                  message: status.message,
                  elapsedSeconds: status.elapsedSeconds,
                  checkpoints,
                }
              : row,
          );
          return {
            clusterJobs,
            clusterErrors: errors,
            clusterRevision: state.clusterRevision + 1,
            clusterChangedRuns: [job.runId],
          };
        });
        return;
      }
      case 'cluster-job-error':
        set((state) => ({
          clusterErrors: { ...state.clusterErrors, [event.runId]: event.message },
          clusterRevision: state.clusterRevision + 1,
          clusterChangedRuns: [],
        }));
        return;
      default: {
        const unknown: never = event;
        throw new Error(`unknown cluster event ${JSON.stringify(unknown)}`);
      }
    }
  },
});

export function createWorkbenchStore(): StoreApi<WorkbenchState> {
  return createStore<WorkbenchState>()((set, get) => ({
    ...uiSlice(set),
    jobs: {},
    ...settingsSlice(set),
    ...datasetsSlice(set),
    ...configSlice(set, get),
    ...trainSlice(set, get),
    ...runsSlice(set),
    ...inspectSlice(set),
    ...clusterSlice(set),
    applyEvent: (event) => {
      switch (event.kind) {
        case 'job-progress':
          set((state) => ({
            jobs: {
              ...state.jobs,
              [event.jobId]: { command: event.command, done: event.done, total: event.total, message: event.message },
            },
          }));
          return;
        case 'job-finished':
          set((state) => {
            const jobs = { ...state.jobs };
            delete jobs[event.jobId];
            return { jobs };
          });
          return;
        case 'train':
          get().applyTrainEvent(event.event);
          return;
        case 'log':
          get().notify(event.level, event.message);
          return;
        case 'cluster':
          get().applyClusterEvent(event.event);
          return;
        default: {
          const unknown: never = event;
          throw new Error(`unknown workbench event ${JSON.stringify(unknown)}`);
        }
      }
    },
  }));
}

export const workbenchStore = createWorkbenchStore();

export function useWorkbench<T>(selector: (state: WorkbenchState) => T): T {
  return useStore(workbenchStore, selector);
}
