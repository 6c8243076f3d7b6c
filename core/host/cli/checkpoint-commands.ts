// CLI subcommands of the checkpoint area (`vswin checkpoint …`).
import type { Command } from 'commander';

export function registerCheckpointCommands(_program: Command): void {
  // Filled in by the weights work.
}
