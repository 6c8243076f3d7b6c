// The bytes of a weights file given by path or already in memory, with read failures reported in
// the reader's own error type and naming the source.
import { readFileSync } from 'node:fs';

export function readSourceBytes(source: string | Uint8Array, name: string, makeError: (message: string) => Error): Uint8Array {
  if (typeof source !== 'string') return source;
  try {
    const file = readFileSync(source);
    return new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  } catch (error) {
    throw makeError(`${name}: cannot read the file (${(error as Error).message})`);
  }
}
