#!/usr/bin/env node
// Builds the native kernel addon (native/binding.gyp) at `npm install`. It must never fail the
// install: without python3, make or a C compiler it says so and exits 0, and the project runs on
// the next kernel tier. Set VSWIN_SKIP_NATIVE=1 to skip the build. Packaging the desktop app sets
// VSWIN_REQUIRE_NATIVE=1 instead: the app ships this binary (electron-builder.yml, extraResources),
// so there a build that fails or does not load exits 1.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addonPath = join(nativeDir, 'build', 'Release', 'vswin_kernels.node');
const fallback = 'the project will run on the WebAssembly SIMD kernel tier instead (slower than native); see `npx vswin doctor`';

const required = process.env.VSWIN_REQUIRE_NATIVE === '1';
let built = false;

function say(message) {
  console.log(`[vswin native kernels] ${message}`);
}

function commandWorks(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return result.status === 0;
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package; the other candidates may still exist
  }
  return candidates.find((candidate) => candidate && existsSync(candidate)) ?? null;
}

function main() {
  if (process.env.VSWIN_SKIP_NATIVE === '1') {
    say(`skipped (VSWIN_SKIP_NATIVE=1); ${fallback}`);
    return;
  }
  const compiler = process.env.CC || 'cc';
  const missing = [];
  if (!commandWorks(compiler, ['--version'])) missing.push(`a C compiler (${compiler})`);
  if (!commandWorks('make', ['--version']) && process.platform !== 'win32') missing.push('make');
  if (!commandWorks('python3', ['--version']) && !commandWorks('python', ['--version'])) missing.push('python3');
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) missing.push('node-gyp');
  if (missing.length > 0) {
    say(`not built: missing ${missing.join(', ')}; ${fallback}`);
    return;
  }
  // Headers installed next to this Node (distribution packages) let node-gyp build offline.
  const args = [nodeGyp, 'rebuild'];
  const prefix = join(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')))
    args.push(`--nodedir=${prefix}`);
  say('building native/ with node-gyp ...');
  const build = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (build.status !== 0 || !existsSync(addonPath)) {
    const detail = (build.stderr || build.error?.message || '').trim().split('\n').slice(-8).join('\n');
    say(`build failed; ${fallback}\n${detail}`);
    return;
  }
  try {
    const addon = createRequire(import.meta.url)(addonPath);
    const { isa, threads } = addon.info();
    say(`built ${addonPath} (matrix kernels: ${isa}, ${threads} threads)`);
    built = true;
  } catch (error) {
    say(`built but cannot load (${error.message.split('\n')[0]}); ${fallback}`);
  }
}

try {
  main();
} catch (error) {
  say(`unexpected error (${error?.message ?? error}); ${fallback}`);
}
if (required && !built) {
  say('VSWIN_REQUIRE_NATIVE=1: the packaged app must ship the addon, so this is an error');
  process.exitCode = 1;
} else {
  process.exitCode = 0;
}
