// Atomic file output for weights files: core/files/atomic.ts is the one atomic writer (temp file in
// the same folder, fsync, rename); the chunks of a safetensors file are streamed, never concatenated.
import { writeFileAtomicSync } from '../../files/atomic.ts';

/** Writes the chunks in order to `path` atomically. */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  writeFileAtomicSync(path, chunks);
}
