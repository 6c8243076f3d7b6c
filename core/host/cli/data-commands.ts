// CLI subcommands of the data area.
import type { Command } from 'commander';

export function registerDataCommands(_program: Command): void {
  // Filled in by the data work.
}
