// `vswin serve`: the workbench as a local service (the UI in a browser, or through an SSH tunnel).
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { workbenchHome } from '../../registry/registry.ts';
import { launchWorkbench, UI_DIR } from '../service/launch.ts';
import { intOption, rootOf } from './shared.ts';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('run the workbench service on 127.0.0.1 and serve the UI (open the printed URL; it holds the access token)')
    .option('--home <dir>', 'workbench home: registry, runs, datasets (env VSWIN_HOME, default ~/.vswin)')
    .option(
      '--port <p>',
      'port on 127.0.0.1 (0 = the last port of this home when it is free, else any free port)',
      intOption('--port', 0),
      0,
    )
    .option('--no-demo', 'do not generate the demo dataset into the home')
    .action(async (options: { home?: string; port: number; demo: boolean }, command: Command) => {
      const home = workbenchHome(options.home);
      const say = (line: string) => process.stderr.write(`${line}\n`);
      if (!existsSync(UI_DIR)) say(`note: the UI is not built (${UI_DIR} missing): run \`npm run build:ui\``);
      const launched = await launchWorkbench({
        home,
        port: options.port,
        backend: rootOf(command).opts().backend as string | undefined,
        demo: options.demo,
        log: say,
      });
      say(`home: ${home}`);
      process.stdout.write(`Workbench: ${launched.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          say('stopping: waiting for running jobs to save their state');
          launched.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
