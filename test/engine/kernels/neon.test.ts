// The aarch64 NEON path of the native SGEMM, checked from this (x86-64) machine: the addon is
// cross-built for arm64 through binding.gyp, and native/test/gemm-check.c runs the NEON
// micro-kernel under qemu-user against a naive product (native/test/neon-check.mjs does both).
// Skipped, with the reason printed, when the cross compiler or qemu is not installed (Debian:
// gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../../native/test/neon-check.mjs', import.meta.url));

function check(args: string[]): { status: number | null; output: string } {
  // Without VSWIN_ISA, so the automatic choice is what a user gets.
  const env = { ...process.env };
  delete env.VSWIN_ISA;
  const result = spawnSync(process.execPath, [script, ...args], { env, encoding: 'utf8', maxBuffer: 16 << 20, timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}${result.error ? result.error.message : ''}` };
}

const probe = check(['--probe']);
// Exit status 3 means a tool is missing; anything else but 0 is a broken script and must fail below.
const unavailable = probe.status === 3 ? probe.output.trim().replace(/^\[neon check\] cannot run: /, '') : null;
if (unavailable) console.warn(`[neon check] skipped: ${unavailable}`);

/** The "ok <isa>: ..." line of gemm-check's output for one instruction set. */
function okLine(output: string, isa: string): string | undefined {
  return output.split('\n').find((line) => line.startsWith(`ok ${isa}: `));
}

describe('native SGEMM on aarch64 (cross compiler + qemu-user)', () => {
  it('finds its tools or says which are missing', () => {
    expect(probe.status === 0 || probe.status === 3, probe.output).toBe(true);
  });

  it.skipIf(unavailable !== null)(
    'builds the addon for arm64 and the NEON kernel matches a naive product on every shape',
    () => {
      const { status, output } = check([]);
      expect(output).toContain('addon built for arm64');
      expect(output).toContain('automatic choice: neon');
      expect(okLine(output, 'neon'), output).toBeDefined();
      expect(okLine(output, 'portable'), output).toBeDefined();
      expect(output).not.toMatch(/^FAIL/m);
      expect(status, output).toBe(0);
    },
    60_000,
  );

  it('the same checker passes natively on this machine\'s kernels and refuses "neon" off aarch64', () => {
    const { status, output } = check(['--host']);
    if (status === 3) {
      console.warn(`[neon check] host run skipped: ${output.trim()}`);
      return;
    }
    expect(okLine(output, 'portable'), output).toBeDefined();
    if (process.arch === 'x64') expect(output).toContain('skip neon: not available');
    expect(output).not.toMatch(/^FAIL/m);
    expect(status, output).toBe(0);
  }, 60_000);
});
