#!/usr/bin/env node
// Checks the aarch64 build of the native kernels from an x86-64 (or any) Linux machine:
//   1. the whole addon builds for arm64 through node-gyp and binding.gyp (so no x86-only flag or
//      unguarded x86 intrinsic can slip in), with a cross compiler;
//   2. native/test/gemm-check.c, linked with gemm.c and pool.c, runs under qemu-user and compares
//      the NEON micro-kernel (and the portable one) against a naive product on many shapes.
// Needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user. Exit status: 0 passed,
// 1 a check failed, 3 a tool is missing (the reason is printed).
//
//   node native/test/neon-check.mjs [--host | --probe] [isa ...]
//
// --host builds gemm-check with the host's cc and runs it natively instead (every ISA of this CPU).
// --probe only says whether the tools are there (exit 0) or what is missing (exit 3).
// Environment: VSWIN_AARCH64_CC (default aarch64-linux-gnu-gcc), VSWIN_AARCH64_SYSROOT (default
// /usr/aarch64-linux-gnu), VSWIN_QEMU_AARCH64 (default qemu-aarch64).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, openSync, readSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const crossCompiler = process.env.VSWIN_AARCH64_CC || 'aarch64-linux-gnu-gcc';
const sysroot = process.env.VSWIN_AARCH64_SYSROOT || '/usr/aarch64-linux-gnu';
const qemu = process.env.VSWIN_QEMU_AARCH64 || 'qemu-aarch64';
// The flags binding.gyp gives the kernels, for the standalone check.
const cflags = ['-O3', '-std=gnu11', '-fno-math-errno', '-pthread', '-Wall', '-Wextra'];
const EM_AARCH64 = 183;

function say(message) {
  console.log(`[neon check] ${message}`);
}

function works(command, args) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** Why the aarch64 check cannot run here, or null when it can. */
function aarch64CheckUnavailable() {
  const missing = [];
  if (!works(crossCompiler, ['--version'])) missing.push(`${crossCompiler} (Debian: gcc-aarch64-linux-gnu)`);
  if (!existsSync(join(sysroot, 'include', 'stdio.h')))
    missing.push(`the aarch64 C library in ${sysroot} (Debian: libc6-dev-arm64-cross)`);
  if (!works(qemu, ['--version'])) missing.push(`${qemu} (Debian: qemu-user)`);
  return missing.length > 0 ? `missing ${missing.join(', ')}` : null;
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error.message) : ''}`;
  return { ok: result.status === 0, status: result.status, output };
}

/** A directory holding include/node/node_api.h for node-gyp's --nodedir, or null. */
function findNodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir,
    join(dirname(process.execPath), '..'),
    join(homedir(), '.cache', 'node-gyp', process.versions.node),
  ];
  return candidates.find((dir) => dir && existsSync(join(dir, 'include', 'node', 'node_api.h'))) ?? null;
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((candidate) => candidate && existsSync(candidate)) ?? null;
}

function elfMachine(path) {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) return -1;
  return header.readUInt16LE(18);
}

/** Builds the addon for arm64 in a copy of native/ (node-gyp when found, else the compiler alone). */
function buildAddonForArm64(work) {
  const headers = findNodeHeaders();
  if (!headers) {
    say('FAIL: no Node headers (include/node/node_api.h) in npm_config_nodedir, next to this Node or in the node-gyp cache');
    return false;
  }
  const copy = join(work, 'native');
  cpSync(join(nativeDir, 'binding.gyp'), join(copy, 'binding.gyp'));
  cpSync(join(nativeDir, 'src'), join(copy, 'src'), { recursive: true });
  const nodeGyp = findNodeGyp();
  let addon;
  if (nodeGyp) {
    const configure = run(process.execPath, [nodeGyp, 'configure', '--arch=arm64', `--nodedir=${headers}`], { cwd: copy });
    if (!configure.ok) {
      say(`FAIL: node-gyp configure --arch=arm64 failed:\n${configure.output.trim().split('\n').slice(-10).join('\n')}`);
      return false;
    }
    const make = run(
      'make',
      ['-C', 'build', '-j2', `CC.target=${crossCompiler}`, `CXX.target=${crossCompiler}`, `LINK.target=${crossCompiler}`],
      { cwd: copy },
    );
    const warnings = make.output.split('\n').filter((line) => /warning:|error:/.test(line));
    if (!make.ok) {
      say(
        `FAIL: the addon does not build for arm64 with binding.gyp's flags:\n${(warnings.length ? warnings : make.output.trim().split('\n')).slice(-15).join('\n')}`,
      );
      return false;
    }
    if (warnings.length > 0) say(`arm64 build warnings:\n${warnings.join('\n')}`);
    addon = join(copy, 'build', 'Release', 'vswin_kernels.node');
  } else {
    // Without node-gyp: every source with the same flags, linked as a shared object whose N-API
    // symbols stay undefined (Node provides them at load time).
    const sources = readdirSync(join(copy, 'src'))
      .filter((name) => name.endsWith('.c'))
      .map((name) => join(copy, 'src', name));
    addon = join(copy, 'vswin_kernels.node');
    const compile = run(crossCompiler, [
      ...cflags,
      '-fPIC',
      '-shared',
      '-DNAPI_VERSION=8',
      `-I${join(headers, 'include', 'node')}`,
      '-o',
      addon,
      ...sources,
      '-lm',
    ]);
    if (!compile.ok) {
      say(`FAIL: the addon sources do not compile for arm64:\n${compile.output.trim().split('\n').slice(-15).join('\n')}`);
      return false;
    }
  }
  const machine = existsSync(addon) ? elfMachine(addon) : -1;
  if (machine !== EM_AARCH64) {
    say(`FAIL: ${addon} is not an aarch64 ELF file (e_machine ${machine})`);
    return false;
  }
  say(
    `addon built for arm64 ${nodeGyp ? 'by node-gyp from binding.gyp' : 'by the compiler alone (node-gyp not found)'}: aarch64 ELF, ${crossCompiler}, Node headers from ${headers}`,
  );
  return true;
}

function main() {
  const argv = process.argv.slice(2);
  const host = argv.includes('--host');
  const isas = argv.filter((arg) => !arg.startsWith('--'));
  if (argv.includes('--probe')) {
    const unavailable = aarch64CheckUnavailable();
    say(unavailable ? `cannot run: ${unavailable}` : `tools present: ${crossCompiler}, ${sysroot}, ${qemu}`);
    return unavailable ? 3 : 0;
  }
  if (!host) {
    const unavailable = aarch64CheckUnavailable();
    if (unavailable) {
      say(`cannot run: ${unavailable}`);
      return 3;
    }
  } else if (!works(process.env.CC || 'cc', ['--version'])) {
    say(`cannot run: no host C compiler (${process.env.CC || 'cc'})`);
    return 3;
  }
  const work = mkdtempSync(join(tmpdir(), 'vswin-neon-check-'));
  try {
    if (!host && !buildAddonForArm64(work)) return 1;
    const binary = join(work, 'gemm-check');
    const compiler = host ? process.env.CC || 'cc' : crossCompiler;
    const sources = ['test/gemm-check.c', 'src/gemm.c', 'src/pool.c'].map((path) => join(nativeDir, path));
    const compile = run(compiler, [...cflags, '-o', binary, ...sources, '-lm']);
    if (!compile.ok) {
      say(`FAIL: gemm-check does not compile with ${compiler}:\n${compile.output.trim()}`);
      return 1;
    }
    if (compile.output.trim()) say(`gemm-check compiler output:\n${compile.output.trim()}`);
    const started = Date.now();
    const check = host ? run(binary, isas) : run(qemu, ['-L', sysroot, binary, ...isas]);
    process.stdout.write(check.output);
    say(`${host ? 'host run' : `${qemu} run`} took ${((Date.now() - started) / 1000).toFixed(1)} s, exit status ${check.status}`);
    return check.ok ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main();
