// npm links the bins of dependencies into node_modules/.bin but not the project's own: link `vswin`
// there too, so node_modules/.bin/vswin works like `npx vswin` (scripts and tools call it by path).
// Never fails the install.
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const binDir = join(root, 'node_modules', '.bin');
try {
  mkdirSync(binDir, { recursive: true });
  const link = join(binDir, 'vswin');
  if (process.platform === 'win32') {
    writeFileSync(`${link}.cmd`, '@node "%~dp0\\..\\..\\bin\\vswin.js" %*\r\n');
  } else {
    rmSync(link, { force: true });
    symlinkSync(join('..', '..', 'bin', 'vswin.js'), link);
    chmodSync(join(root, 'bin', 'vswin.js'), 0o755);
  }
} catch (error) {
  console.warn(`vswin: could not link node_modules/.bin/vswin (${error.message}); use npx vswin`);
}
