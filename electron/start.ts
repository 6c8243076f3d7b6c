// `npm start`: the desktop app when Electron's binary is installed; otherwise the same workbench in
// the browser, served by the core service with the demo dataset ready.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { launchWorkbench, UI_DIR } from '../core/host/service/launch.ts';
import { workbenchHome } from '../core/registry/registry.ts';
import { buildPreload } from './build.ts';
import { buildUi } from './build-ui.ts';
import { electronBinary } from './electron-binary.ts';
import { PROJECT_ROOT } from './main/service-process.ts';

async function ensureUi(): Promise<void> {
  if (existsSync(join(UI_DIR, 'index.html'))) return;
  try {
    await buildUi();
  } catch (error) {
    throw new Error(`building the UI (renderer/ into ${UI_DIR}) failed: ${(error as Error).message}`);
  }
}

async function main(): Promise<void> {
  await ensureUi();
  const electron = electronBinary();
  if ('path' in electron) {
    await buildPreload();
    const child = spawn(electron.path, [join(PROJECT_ROOT, 'electron', 'main', 'entry.mjs')], {
      stdio: 'inherit',
      cwd: PROJECT_ROOT,
    });
    child.on('exit', (code) => process.exit(code ?? 0));
    return;
  }
  process.stderr.write(
    `Electron's binary is not installed (${electron.missing}).\nServing the workbench in your browser instead.\n`,
  );
  const home = workbenchHome();
  const launched = await launchWorkbench({ home, log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`Workbench: ${launched.url}\n`);
  if (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) {
    const opener = spawn('xdg-open', [launched.url], { stdio: 'ignore', detached: true });
    opener.on('error', () => process.stderr.write('xdg-open is not available: open the URL above yourself.\n'));
    opener.unref();
  } else {
    process.stderr.write('No display here: open the URL above in a browser (through an SSH tunnel on a remote machine).\n');
  }
  const stop = () => void launched.close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`npm start: ${error.message}\n`);
  process.exitCode = 1;
});
