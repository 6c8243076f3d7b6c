// The local workbench service: HTTP for the built UI and media files, a WebSocket for typed commands
// and the event stream. Loopback only; every request needs the per-launch token and a local Host/Origin.
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RequestMessage, ServiceMessage, WorkbenchEvent } from '../../protocol/workbench.ts';
import { JobRunner, type JobContext } from './jobs.ts';
import { checkRequest, newToken, TOKEN_COOKIE } from './security.ts';
import { contentTypeOf, mediaTypeOf, resolveMediaPath, resolveStaticPath } from './static-files.ts';

export type Dispatch = (
  command: string,
  args: unknown,
  context: JobContext & { emit: (event: WorkbenchEvent) => void },
) => Promise<unknown>;

export interface ServiceOptions {
  port?: number;
  token?: string;
  /** The built UI (renderer/dist); a short notice page is served when it is missing. */
  staticDir: string;
  /** Folders whose files the UI may fetch through /media (datasets, the workbench home). */
  mediaRoots: () => string[];
  /** Where dropped videos are saved. */
  uploadDir: string;
  dispatch: Dispatch;
  /** Upload size limit in bytes (default 512 MiB). */
  maxUploadBytes?: number;
  /** Largest WebSocket message a client may send, in bytes (default 8 MiB; commands are small JSON). */
  maxMessageBytes?: number;
  /** Where faults of single clients are reported (a bad frame, a dropped upload). */
  log?: (line: string) => void;
}

const defaultMaxMessageBytes = 8 * 1024 * 1024;

export interface RunningService {
  port: number;
  token: string;
  url: string;
  server: Server;
  jobs: JobRunner;
  emit(event: WorkbenchEvent): void;
  close(): Promise<void>;
}

function contentSecurityPolicy(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    // Plotly writes inline style attributes and a <style> element for its modebar.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ');
}

function send(response: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  response.end(body);
}

const notBuiltPage = `<!doctype html><meta charset="utf-8"><title>Video Swin Workbench</title>
<h1>The UI is not built</h1><p>Run <code>npm run build:ui</code>, then reload this page. The service and its WebSocket API are running.</p>`;

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const token = options.token ?? newToken();
  const maxUpload = options.maxUploadBytes ?? 512 * 1024 * 1024;
  const sockets = new Set<WebSocket>();
  const emit = (event: WorkbenchEvent) => {
    const text = JSON.stringify({ kind: 'event', event } satisfies ServiceMessage);
    for (const socket of sockets) if (socket.readyState === socket.OPEN) socket.send(text);
  };
  const jobs = new JobRunner(emit);
  let port = 0;

  const handleHttp = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const verdict = checkRequest(request, url, port, token);
    if (!verdict.ok)
      return send(response, verdict.status, `${verdict.status === 401 ? 'Unauthorized' : 'Forbidden'}: ${verdict.reason}\n`);
    const headers: Record<string, string> = {
      'Content-Security-Policy': contentSecurityPolicy(port),
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
    };
    // The token arrives once in the URL; a strict, HttpOnly cookie carries it for assets and the socket.
    if (verdict.fromQuery)
      headers['Set-Cookie'] = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`;

    if (url.pathname === '/upload') {
      if (request.method !== 'POST') return send(response, 405, 'POST a video body to /upload?name=FILE\n');
      const name = basename(url.searchParams.get('name') ?? '').replace(/[^\w.\- ]/g, '_');
      if (!name || name.startsWith('.'))
        return send(
          response,
          400,
          `upload: expected ?name=FILE (a plain file name), received "${url.searchParams.get('name') ?? ''}"\n`,
        );
      const declared = request.headers['content-length'];
      if (declared !== undefined && !(Number(declared) <= maxUpload))
        return refuseBody(
          request,
          response,
          413,
          `upload: Content-Length ${declared} is larger than the ${maxUpload}-byte limit\n`,
        );
      mkdirSync(options.uploadDir, { recursive: true });
      const target = join(options.uploadDir, `${Date.now()}-${name}`);
      const partial = `${target}.partial`;
      // Streamed to disk (videos can be large), renamed into place only when complete; on any failure
      // (too large, client gone, disk full) the partial file is removed and the service carries on.
      const outcome = await receiveUpload(request, partial, maxUpload);
      if (outcome.kind === 'too-large')
        return refuseBody(
          request,
          response,
          413,
          `upload: larger than the ${maxUpload}-byte limit (stopped after ${outcome.size} bytes)\n`,
        );
      if (outcome.kind === 'aborted') return void response.destroy();
      if (outcome.kind === 'failed') return send(response, 500, `upload: cannot save ${partial}: ${outcome.message}\n`);
      try {
        await rename(partial, target);
      } catch (error) {
        await rm(partial, { force: true });
        return send(response, 500, `upload: cannot move ${partial} to ${target}: ${(error as Error).message}\n`);
      }
      return send(response, 200, JSON.stringify({ path: target }), 'application/json; charset=utf-8');
    }

    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'method not allowed\n');

    if (url.pathname === '/media') {
      const requested = url.searchParams.get('path') ?? '';
      const file = resolveMediaPath(options.mediaRoots(), requested);
      if (!file)
        return send(
          response,
          404,
          `media: ${JSON.stringify(requested.slice(0, 200))} is not a video or image file inside a dataset or the workbench home\n`,
        );
      // A video or an image, served as exactly that: never sniffed, never rendered as a document.
      return streamFile(
        request,
        response,
        file,
        { ...headers, 'Content-Security-Policy': "default-src 'none'; sandbox" },
        mediaTypeOf(file)!,
      );
    }

    if (!existsSync(join(options.staticDir, 'index.html'))) {
      response.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8' });
      return response.end(notBuiltPage);
    }
    const path = url.pathname === '/' ? '/index.html' : url.pathname;
    const file = resolveStaticPath(options.staticDir, path);
    if (!file) return send(response, 404, 'not found\n');
    return streamFile(request, response, file, headers);
  };

  const server = createServer((request, response) => {
    handleHttp(request, response).catch((error) => {
      if (!response.headersSent)
        send(response, 500, `internal error: ${error instanceof Error ? error.message : String(error)}\n`);
      else response.destroy();
    });
  });

  const log = options.log ?? (() => undefined);
  // One client's bad frame (a header announcing 2^40 bytes, a message over the limit, a protocol
  // violation) closes that client's socket only; without these handlers `ws` would throw the error
  // out of the event loop and end the service with every job in it.
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes ?? defaultMaxMessageBytes });
  wss.on('error', (error) => log(`websocket server error: ${error.message}`));
  server.on('error', (error) => log(`http server error: ${error.message}`));
  server.on('upgrade', (request, socket, head) => {
    socket.on('error', (error) => log(`websocket client error before the handshake: ${error.message}`));
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const verdict = checkRequest(request, url, port, token);
    if (!verdict.ok || url.pathname !== '/ws') {
      const status = verdict.ok ? 404 : verdict.status;
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found'}\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });

  wss.on('connection', (ws: WebSocket) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', (error: Error & { code?: string }) => {
      // `ws` has already started closing the socket (1009 for an oversized frame, 1002 for a protocol error).
      log(`websocket client closed: ${error.code ?? 'error'}: ${error.message}`);
      sockets.delete(ws);
      if (ws.readyState !== ws.CLOSED) ws.terminate();
    });
    ws.on('message', (data) => {
      let message: RequestMessage;
      try {
        message = JSON.parse(String(data)) as RequestMessage;
        if (typeof message.id !== 'number' || typeof message.command !== 'string')
          throw new Error('expected {"id": number, "command": string, "args": object}');
      } catch (error) {
        ws.send(
          JSON.stringify({
            kind: 'event',
            event: { kind: 'log', level: 'error', message: `bad message: ${(error as Error).message}` },
          } satisfies ServiceMessage),
        );
        return;
      }
      const jobId = jobs.newJobId();
      const reply = (body: ServiceMessage) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(body));
      };
      jobs
        .run(message.command, (context) => options.dispatch(message.command, message.args ?? {}, { ...context, emit }), jobId)
        .then((result) => reply({ kind: 'result', id: message.id, ok: true, result, jobId }))
        .catch((error: unknown) =>
          reply({
            kind: 'result',
            id: message.id,
            ok: false,
            error: error instanceof Error ? error.message : String(error),
            jobId,
          }),
        );
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    port,
    token,
    url: `http://127.0.0.1:${port}/?token=${token}`,
    server,
    jobs,
    emit,
    close: async () => {
      for (const socket of sockets) socket.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type UploadOutcome =
  | { kind: 'saved'; size: number }
  | { kind: 'too-large'; size: number }
  | { kind: 'aborted' }
  | { kind: 'failed'; message: string };

class UploadTooLarge extends Error {}

/** Streams the request body into `partial`; leaves no file behind unless the whole body was saved. */
async function receiveUpload(request: IncomingMessage, partial: string, limit: number): Promise<UploadOutcome> {
  let size = 0;
  let aborted = false;
  try {
    await pipeline(
      async function* () {
        // destroyOnReturn false: on a too-large body the socket must stay up to carry the 413.
        try {
          for await (const chunk of request.iterator({ destroyOnReturn: false })) {
            size += (chunk as Buffer).length;
            if (size > limit) throw new UploadTooLarge();
            yield chunk as Buffer;
          }
        } catch (error) {
          if (!(error instanceof UploadTooLarge)) aborted = true;
          throw error;
        }
        if (!request.complete) {
          aborted = true;
          throw new Error('the client went away before the body was complete');
        }
      },
      createWriteStream(partial, { flags: 'wx' }),
    );
    return { kind: 'saved', size };
  } catch (error) {
    await rm(partial, { force: true });
    if (error instanceof UploadTooLarge) return { kind: 'too-large', size };
    if (aborted) return { kind: 'aborted' };
    return { kind: 'failed', message: (error as Error).message };
  }
}

/** Answers without reading the rest of the body, then closes the connection (the client may still be sending). */
function refuseBody(request: IncomingMessage, response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    Connection: 'close',
  });
  response.end(body, () => request.destroy());
}

function streamFile(
  request: IncomingMessage,
  response: ServerResponse,
  file: string,
  headers: Record<string, string>,
  type = contentTypeOf(file),
): void {
  const size = statSync(file).size;
  const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
  // Range requests let <video> seek in the clips the comparison page plays.
  if (range && (range[1] || range[2])) {
    const start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
    const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start >= size || start > end) {
      response.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` });
      return void response.end();
    }
    response.writeHead(206, {
      ...headers,
      'Content-Type': type,
      'Content-Length': String(end - start + 1),
      'Content-Range': `bytes ${start}-${end}/${size}`,
      'Accept-Ranges': 'bytes',
    });
    if (request.method === 'HEAD') return void response.end();
    sendStream(createReadStream(file, { start, end }), response);
    return;
  }
  response.writeHead(200, {
    ...headers,
    'Content-Type': type,
    'Content-Length': String(size),
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
  });
  if (request.method === 'HEAD') return void response.end();
  sendStream(createReadStream(file), response);
}

/** A file that vanishes or fails mid-read ends that one response, never the service. */
function sendStream(source: Readable, response: ServerResponse): void {
  pipeline(source, response).catch(() => response.destroy());
}
