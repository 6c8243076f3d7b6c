// Serving files by URL path without ever leaving the folder they belong to.
import { realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';

export const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.avi': 'video/x-msvideo',
  '.mkv': 'video/x-matroska',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentTypeOf(path: string): string {
  return contentTypes[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * What /media may serve: videos and raster images, each with its own type. Anything else under a
 * media root (the registry, logs, HTML, scripts, SVG, which can carry script) is never served, so a
 * dataset folder cannot become same-origin active content.
 */
export const mediaTypes: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.ogv': 'video/ogg',
  '.avi': 'video/x-msvideo',
  '.mkv': 'video/x-matroska',
  '.mpg': 'video/mpeg',
  '.mpeg': 'video/mpeg',
  '.wmv': 'video/x-ms-wmv',
  '.flv': 'video/x-flv',
  '.3gp': 'video/3gpp',
  '.ts': 'video/mp2t',
  '.mts': 'video/mp2t',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

/** The media type of a file /media may serve, or null when its extension is not a video or an image. */
export function mediaTypeOf(path: string): string | null {
  return mediaTypes[extname(path).toLowerCase()] ?? null;
}

/** True when `child` (already resolved, real) is `parent` or inside it. */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..'));
}

/**
 * Maps a URL path (still percent-encoded) to a file inside `root`, or null. Rejects encoded
 * separators, NUL bytes and dot segments outright, and resolves symbolic links before the
 * containment check so a link cannot point outside.
 */
export function resolveStaticPath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((segment) => segment.length > 0);
  if (segments.some((segment) => segment === '..' || segment === '.')) return null;
  const realRoot = realpathSync(root);
  const candidate = resolve(realRoot, ...segments);
  if (!isInside(realRoot, candidate)) return null;
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    return null;
  }
  if (!isInside(realRoot, real)) return null;
  try {
    return statSync(real).isFile() ? real : null;
  } catch {
    return null;
  }
}

/**
 * A file the UI asked for by absolute path (a video to play, a frame to show): allowed only under one
 * of `roots`, and only when both the requested name and the real file (after links) are a video or an image.
 */
export function resolveMediaPath(roots: Iterable<string>, requested: string): string | null {
  if (!isAbsolute(requested) || requested.includes('\0')) return null;
  if (mediaTypeOf(requested) === null) return null;
  let real: string;
  try {
    real = realpathSync(requested);
    if (mediaTypeOf(real) === null || !statSync(real).isFile()) return null;
  } catch {
    return null;
  }
  for (const root of roots) {
    let realRoot: string;
    try {
      realRoot = realpathSync(root);
    } catch {
      continue;
    }
    if (isInside(realRoot, real)) return real;
  }
  return null;
}
