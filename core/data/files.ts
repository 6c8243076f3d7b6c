// Small file helpers shared by the data modules. Atomic writes are core/files/atomic.ts's (temp file,
// fsync, rename), re-exported here for the data modules that import them from this file.
export { writeFileAtomic } from '../files/atomic.ts';

/** Annotation files always use forward slashes, whatever the platform. */
export function toPosixPath(path: string): string {
  return path.split('\\').join('/');
}

export const videoExtensions = new Set([
  '.mp4',
  '.m4v',
  '.mov',
  '.avi',
  '.mkv',
  '.webm',
  '.mpg',
  '.mpeg',
  '.wmv',
  '.flv',
  '.3gp',
  '.ogv',
  '.ts',
  '.mts',
]);
export const imageExtensions = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff']);
