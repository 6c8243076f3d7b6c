// Helpers shared by the CLI subcommands.
import type { Command } from 'commander';
import { initBackend, type BackendChoice } from '../../engine/backend.ts';
import { fastKernelStatus } from '../../engine/kernels/index.ts';
import { type ModelConfig, parseModelConfig, readModelConfigFile } from '../../model/config.ts';
import { VARIANTS } from '../../model/variants.ts';

/** Starts the backend named by the global --backend option and reports it on stderr. */
export async function startBackend(command: Command, quiet = false): Promise<BackendChoice> {
  const root = rootOf(command);
  const choice = await initBackend(root.opts().backend as string | undefined);
  if (!quiet) {
    const kernels = fastKernelStatus();
    const tier =
      kernels.tier === 'stock'
        ? 'stock kernels'
        : `${kernels.tier} kernels, ${kernels.isa ?? 'portable'} x${kernels.threads ?? 1}`;
    process.stderr.write(`backend: ${choice.name}, ${tier} (${choice.reason})\n`);
  }
  return choice;
}

export function rootOf(command: Command): Command {
  let node = command;
  while (node.parent) node = node.parent;
  return node;
}

/** Parses a positive integer option, naming the option and the received value on error. */
export function intOption(name: string, min = 0): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}, received "${value}"`);
    return n;
  };
}

export function floatOption(name: string, min = -Infinity, max = Infinity): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`${name}: expected a number in [${min}, ${max}], received "${value}"`);
    return n;
  };
}

/** A model config given as a variant name (swin_t, micro, …) or a JSON file. */
export function resolveModelConfig(nameOrPath: string): ModelConfig {
  if (VARIANTS[nameOrPath]) return parseModelConfig(VARIANTS[nameOrPath].config, `variant ${nameOrPath}`);
  return readModelConfigFile(nameOrPath);
}
