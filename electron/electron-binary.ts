// Finds Electron's binary without starting it: `npm start` falls back to the browser when it is missing.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Path of the Electron binary, or the reason there is none. */
export function electronBinary(): { path: string } | { missing: string } {
  try {
    // The electron package exports the binary's path; it throws when the download was skipped or failed.
    const path = createRequire(import.meta.url)('electron') as unknown;
    if (typeof path === 'string' && existsSync(path)) return { path };
    return { missing: `the electron package points to ${String(path)}, which does not exist` };
  } catch (error) {
    return { missing: (error as Error).message.split('\n')[0] };
  }
}
