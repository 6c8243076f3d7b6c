// The `vswin` command line: one program, subcommands registered by the module that owns them.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';

type Register = (program: Command) => void;

// Command modules load on demand: `vswin data sample` should not pay for TensorFlow.js (~0.4 s).
// Help, or a command not listed here, loads them all. Order = order in --help.
const modules: { commands: string[]; load: () => Promise<Register> }[] = [
  { commands: ['doctor'], load: async () => (await import('./engine-commands.ts')).registerEngineCommands },
  { commands: ['forward', 'model'], load: async () => (await import('./model-commands.ts')).registerModelCommands },
  { commands: ['checkpoint'], load: async () => (await import('./checkpoint-commands.ts')).registerCheckpointCommands },
  { commands: ['data'], load: async () => (await import('./data-commands.ts')).registerDataCommands },
  { commands: ['train', 'eval', 'runs', 'demo'], load: async () => (await import('./train-commands.ts')).registerTrainCommands },
  { commands: ['serve'], load: async () => (await import('./serve-commands.ts')).registerServeCommands },
  {
    commands: ['export', 'cluster', 'submit', 'jobs'],
    load: async () => {
      const [{ registerClusterCommands }, { registerExportOnnxCommand }] = await Promise.all([
        import('./cluster-commands.ts'),
        import('./export-onnx-command.ts'),
      ]);
      return (program) => {
        registerClusterCommands(program);
        registerExportOnnxCommand(program);
      };
    },
  },
];

/** The command word of argv (after node and the script), skipping global options. */
function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--backend') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The program with the command modules argv needs (all of them when argv is not given). */
export async function buildProgram(argv?: string[]): Promise<Command> {
  const args = argv?.slice(2) ?? [];
  const word = commandWord(args);
  const owner = modules.find((entry) => word !== undefined && entry.commands.includes(word));
  const versionOnly = word === undefined && (args.includes('--version') || args.includes('-V'));
  const needed = versionOnly ? [] : owner ? [owner] : modules;
  const registers = await Promise.all(needed.map((entry) => entry.load()));
  const program = new Command('vswin')
    .description('Video Swin Workbench: train, evaluate and inspect Video Swin Transformers (TensorFlow.js).')
    .version(pkg.version)
    .option('--backend <name>', 'compute backend: auto | tensorflow | webgpu | wasm | cpu (env VSWIN_BACKEND)', 'auto')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Backends: "auto" takes tfjs-node-gpu (CUDA), else a WebGPU GPU (any vendor), else tfjs-node, else WASM.
Examples:
  npx vswin demo                      train and evaluate a small model on generated videos
  npx vswin model info swin_t         parameters, FLOPs and activation memory of Swin-T
  npx vswin checkpoint inspect x.pth  what a checkpoint file is and whether it loads`,
    );
  for (const register of registers) register(program);
  return program;
}

/** Runs the CLI; expected failures print one clear message and exit non-zero. */
export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
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
