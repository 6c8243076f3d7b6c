// The one atomic writer: the bytes go to a temporary file in the target's folder (same filesystem,
// so the rename is atomic), are flushed to disk (fsync), and the file is renamed over the target.
// A reader, or a crash at any moment, sees the old file or the new one, never half of one.
// Temporaries are named `.NAME.PID.RANDOM.tmp`; `sweepStaleTemporaries` removes those whose writing
// process is gone (a kill between the write and the rename), at start-up.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const TEMPORARY = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function temporaryName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes `data` (or chunks, streamed in order and never concatenated) to `path` atomically, creating its folder. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array | Iterable<Uint8Array>): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = temporaryName(path);
  const chunks: Iterable<Uint8Array> =
    typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  let descriptor: number | undefined;
  try {
    descriptor = openSync(temporary, 'wx');
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.length) written += writeSync(descriptor, chunk, written, chunk.length - written);
    }
    fsyncSync(descriptor);
    closeSync(descriptor);
    descriptor = undefined;
    renameSync(temporary, path);
  } catch (error) {
    if (descriptor !== undefined) closeSync(descriptor);
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** The same, for async callers (the write itself is synchronous: files here are small or already in memory). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  writeFileAtomicSync(path, data);
}

/** True when a process with this id exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporaries of atomic writes whose process has ended, in `folder` and its subfolders
 * down to `depth` levels (the workbench home: runs/ID/checkpoints is 3). Returns the removed paths.
 */
export function sweepStaleTemporaries(folder: string, depth = 3): string[] {
  const removed: string[] = [];
  const visit = (dir: string, level: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (level < depth && !entry.name.startsWith('.')) visit(path, level + 1);
        continue;
      }
      const match = TEMPORARY.exec(entry.name);
      if (!match) continue;
      const pid = Number(match[1]);
      if (pid === process.pid || processAlive(pid)) continue;
      try {
        if (statSync(path).isFile()) {
          rmSync(path, { force: true });
          removed.push(path);
        }
      } catch {
        // gone already
      }
    }
  };
  visit(folder, 0);
  return removed;
}
