// CLI subcommands of the model area.
import type { Command } from 'commander';

export function registerModelCommands(_program: Command): void {
  // Filled in by the model work.
}
