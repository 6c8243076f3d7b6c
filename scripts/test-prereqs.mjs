// `npm test`'s pretest step: brings the system packages the test suites need. Runs every
// scripts/prereqs/*.sh in name order; each one returns at once when its packages are there, installs
// them when this is root with apt-get, and otherwise names what is missing. When something is
// missing this stops with the one command that installs it all.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const folder = join(root, 'scripts', 'prereqs');
const scripts = readdirSync(folder)
  .filter((name) => name.endsWith('.sh'))
  .sort();

// The scripts share one `apt-get update` per run (scripts/prereqs/lib/apt.sh reads this marker).
const scratch = mkdtempSync(join(tmpdir(), 'vswin-prereqs-'));
const failed = [];
try {
  for (const name of scripts) {
    const result = spawnSync('bash', [join(folder, name)], {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, VSWIN_PREREQS_APT_UPDATED: join(scratch, 'apt-updated') },
    });
    if (result.status !== 0) failed.push({ name, status: result.status ?? result.signal });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

if (failed.length > 0) {
  const list = failed.map(({ name, status }) => `scripts/prereqs/${name} (exit ${status})`).join(', ');
  const self = relative(process.cwd(), fileURLToPath(import.meta.url)) || 'scripts/test-prereqs.mjs';
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  let next;
  if (!hasApt)
    next = 'This machine has no apt-get: install the packages named above with its package manager, then run npm test again.';
  else if (!isRoot) next = `Install them once as root, then run npm test again:\n  sudo node ${self}`;
  else next = 'The installation above failed; its messages say why. Run npm test again once it is fixed.';
  process.stderr.write(`\nnpm test needs system packages that are not installed (${list}).\n${next}\n`);
  process.exit(1);
}
