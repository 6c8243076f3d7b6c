// Who may talk to the service: a per-launch token on every request, and Host/Origin checks so a web
// page in the user's browser cannot reach the loopback port (CSRF) nor rebind a name to it (DNS rebinding).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const TOKEN_COOKIE = 'vswin_token';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export function tokensEqual(expected: string, received: string | null | undefined): boolean {
  if (typeof received !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(received);
  // timingSafeEqual needs equal lengths; the length itself leaks nothing useful for a random token.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The hosts a loopback service answers to; anything else is a rebinding attempt. */
export function allowedHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
}

export function allowedOrigins(port: number): Set<string> {
  return new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
}

export function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

export type Verdict = { ok: true; fromQuery: boolean } | { ok: false; status: 401 | 403; reason: string };

/**
 * Checks one request: Host must be the loopback address and port; Origin, when the browser sends
 * one, must be this service; the token comes from the `token` query parameter, the cookie the
 * service set, or an `Authorization: Bearer` header.
 */
export function checkRequest(request: IncomingMessage, url: URL, port: number, token: string): Verdict {
  const host = request.headers.host ?? '';
  if (!allowedHosts(port).has(host))
    return { ok: false, status: 403, reason: `host "${host}" is not this service (expected 127.0.0.1:${port})` };
  const origin = request.headers.origin;
  if (origin !== undefined && !allowedOrigins(port).has(origin))
    return { ok: false, status: 403, reason: `origin "${origin}" is not allowed` };
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null) {
    return tokensEqual(token, fromQuery) ? { ok: true, fromQuery: true } : { ok: false, status: 401, reason: 'wrong token' };
  }
  const authorization = request.headers.authorization;
  const bearer = authorization?.startsWith('Bearer ') ? authorization.slice(7) : null;
  const presented = bearer ?? cookieValue(request.headers.cookie, TOKEN_COOKIE);
  if (presented === null) return { ok: false, status: 401, reason: 'no token: open the URL printed by `vswin serve`' };
  return tokensEqual(token, presented) ? { ok: true, fromQuery: false } : { ok: false, status: 401, reason: 'wrong token' };
}
