// The `vswin` command line: one program, subcommands registered by the module that owns them.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerModelCommands } from './model-commands.ts';
import { registerDataCommands } from './data-commands.ts';
import { registerTrainCommands } from './train-commands.ts';
import { registerEngineCommands } from './engine-commands.ts';
import { registerCheckpointCommands } from './checkpoint-commands.ts';
import { registerServeCommands } from './serve-commands.ts';
import { registerClusterCommands } from './cluster-commands.ts';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('vswin')
    .description('Video Swin Workbench: train, evaluate and inspect Video Swin Transformers (TensorFlow.js).')
    .version(pkg.version)
    .option('--backend <name>', 'compute backend: auto | tensorflow | wasm | cpu (env VSWIN_BACKEND)', 'auto')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Backends: "auto" uses native TensorFlow when @tensorflow/tfjs-node(-gpu) is installed, else WASM.
Examples:
  npx vswin demo                      train and evaluate a small model on generated videos
  npx vswin model info swin_t         parameters, FLOPs and activation memory of Swin-T
  npx vswin checkpoint inspect x.pth  what a checkpoint file is and whether it loads`,
    );
  registerEngineCommands(program);
  registerModelCommands(program);
  registerCheckpointCommands(program);
  registerDataCommands(program);
  registerTrainCommands(program);
  registerServeCommands(program);
  registerClusterCommands(program);
  return program;
}

/** Runs the CLI; expected failures print one clear message and exit non-zero. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`vswin: ${message}\n`);
    if (process.env.VSWIN_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  }
}
