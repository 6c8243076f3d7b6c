// The bytes of a weights file given by path or already in memory, with read failures reported in
// the reader's own error type and naming the source. Only regular files are read: a FIFO, a device or
// a socket would block the reader forever or stream without end.
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, type Stats } from 'node:fs';

/** Every error a checkpoint reader raises for a bad file: the message starts with the file's name. */
export class CheckpointFileError extends Error {}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Opens `path` for reading without blocking (a FIFO would otherwise wait for a writer) and refuses
 * anything but a regular file; returns the descriptor and the size. The caller closes it.
 */
export function openRegularFile(path: string, name: string, makeError: (message: string) => Error): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw makeError(`${name}: cannot read the file (${(error as Error).message})`);
  }
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    throw makeError(`${name}: cannot read the file (${(error as Error).message})`);
  }
  if (!stats.isFile()) {
    closeSync(fd);
    throw makeError(`${name}: is ${kindOf(stats)}; a checkpoint must be a regular file`);
  }
  return { fd, size: stats.size };
}

/** Up to `length` bytes from the start of a regular file (for recognising its format). */
export function readHead(
  path: string,
  length: number,
  makeError: (message: string) => Error,
): { head: Uint8Array; size: number } {
  const { fd, size } = openRegularFile(path, path, makeError);
  try {
    const head = new Uint8Array(Math.min(length, size));
    let done = 0;
    while (done < head.length) {
      const read = readSync(fd, head, done, head.length - done, done);
      if (read === 0) break;
      done += read;
    }
    return { head: head.subarray(0, done), size };
  } catch (error) {
    throw makeError(`${path}: cannot read the file (${(error as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

export function readSourceBytes(source: string | Uint8Array, name: string, makeError: (message: string) => Error): Uint8Array {
  if (typeof source !== 'string') return source;
  const { fd } = openRegularFile(source, name, makeError);
  try {
    const file = readFileSync(fd);
    return new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  } catch (error) {
    throw makeError(`${name}: cannot read the file (${(error as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Where JSON text first nests deeper than `limit` (a character offset), or null. Scans brackets
 * outside strings without parsing, so a hostile 1e5-deep header costs one pass and no stack.
 */
export function jsonNestingBeyond(text: string, limit: number): number | null {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > limit) return i;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return null;
}
