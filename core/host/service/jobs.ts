// Long work (scans, evaluations, attention, training) runs as jobs: each gets an id, reports progress
// as events, and its failure becomes an error result for the one caller, never a crash of the service.
import type { WorkbenchEvent } from '../../protocol/workbench.ts';

export interface JobContext {
  jobId: string;
  progress(done: number, total: number, message?: string): void;
}

export type EventSink = (event: WorkbenchEvent) => void;

export class JobRunner {
  private counter = 0;
  private readonly active = new Map<string, { command: string; started: number }>();
  private lastProgress = new Map<string, number>();

  constructor(private readonly emit: EventSink) {}

  get running(): { jobId: string; command: string }[] {
    return [...this.active].map(([jobId, job]) => ({ jobId, command: job.command }));
  }

  newJobId(): string {
    this.counter += 1;
    return `job-${this.counter}`;
  }

  /** Runs `work`; resolves with its value or rejects with its error, after reporting either as an event. */
  async run<T>(command: string, work: (context: JobContext) => Promise<T>, jobId = this.newJobId()): Promise<T> {
    const started = Date.now();
    this.active.set(jobId, { command, started });
    const context: JobContext = {
      jobId,
      progress: (done, total, message = '') => {
        // At most ~20 progress events a second per job: a scan of thousands of files must not flood the socket.
        const now = Date.now();
        if (done < total && now - (this.lastProgress.get(jobId) ?? 0) < 50) return;
        this.lastProgress.set(jobId, now);
        this.emit({ kind: 'job-progress', jobId, command, done, total, message });
      },
    };
    try {
      // A turn of the event loop first, so a job that starts with synchronous work never delays the reply path.
      await new Promise((resolve) => setImmediate(resolve));
      const value = await work(context);
      this.emit({ kind: 'job-finished', jobId, command, ok: true, message: null, seconds: (Date.now() - started) / 1000 });
      return value;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.emit({ kind: 'job-finished', jobId, command, ok: false, message, seconds: (Date.now() - started) / 1000 });
      throw error;
    } finally {
      this.active.delete(jobId);
      this.lastProgress.delete(jobId);
    }
  }
}
