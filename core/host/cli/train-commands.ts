// CLI subcommands of the train area.
import type { Command } from 'commander';

export function registerTrainCommands(_program: Command): void {
  // Filled in by the train work.
}
