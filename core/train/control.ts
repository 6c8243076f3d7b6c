// Pause / resume / stop requests for a running training loop, from any client (CLI signal
// handler, the UI over the service). The loop polls it between iterations.
import type { TrainCommand } from '../protocol/train.ts';

export class TrainControl {
  private pausedFlag = false;
  private stopReason: string | null = null;
  private wake: (() => void) | null = null;

  send(command: TrainCommand): void {
    switch (command.kind) {
      case 'pause':
        this.pausedFlag = true;
        break;
      case 'resume':
        this.pausedFlag = false;
        this.wake?.();
        break;
      case 'stop':
        this.stopReason = command.reason ?? 'stop requested';
        this.wake?.();
        break;
      default: {
        const unknown: never = command;
        throw new Error(`unknown train command ${JSON.stringify(unknown)}`);
      }
    }
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  get stopRequested(): string | null {
    return this.stopReason;
  }

  /** Resolves when resumed or stopped. */
  waitWhilePaused(): Promise<void> {
    if (!this.pausedFlag || this.stopReason) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = () => {
        if (!this.pausedFlag || this.stopReason) {
          this.wake = null;
          resolve();
        }
      };
    });
  }
}
