// Hostile clients holding the token: a frame header announcing 2^40 bytes, a message over the limit,
// uploads over the limit (declared and chunked) or cut off mid-body. Each gets a refusal for that one
// client; the service keeps answering, a training run inside it finishes, and no partial upload is left.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { call } from './ws-client.ts';
import { demoRunConfig, ensureDemoDataset } from '../../core/host/service/demo.ts';
import { launchWorkbench, type LaunchedWorkbench } from '../../core/host/service/launch.ts';
import { startService, type RunningService } from '../../core/host/service/server.ts';

const demo = { classes: 3, perClass: 4, frames: 8, size: 32 };
let home: string;
let launched: LaunchedWorkbench;
let small: RunningService;
let smallUploads: string;
const serviceLog: string[] = [];

function open(port: number, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token}`);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) return resolve(-1);
    socket.once('close', (code) => resolve(code));
  });
}

/** A client-side handshake on a raw socket, so the test can then write any bytes it likes. */
function rawHandshake(port: number, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => {
      socket.write(
        `GET /ws?token=${token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        if (head.startsWith('HTTP/1.1 101')) resolve(socket);
        else reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

interface Posted {
  status: number | null;
  body: string;
  error: string | null;
}

/** POSTs to /upload; `chunks` are written with chunked encoding (no Content-Length) until the server answers. */
function upload(
  port: number,
  token: string,
  name: string,
  body: { length: number } | { chunks: number; chunkBytes: number } | { cutAfter: number; declared: number },
): Promise<Posted> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` };
    if ('length' in body) headers['content-length'] = String(body.length);
    if ('declared' in body) headers['content-length'] = String(body.declared);
    const request = httpRequest({ host: '127.0.0.1', port, path: `/upload?name=${name}`, method: 'POST', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString(), error: null }));
      res.on('error', (error) => resolve({ status: res.statusCode ?? 0, body: '', error: error.message }));
    });
    let answered = false;
    request.on('response', () => (answered = true));
    request.on('error', (error) => resolve({ status: null, body: '', error: error.message }));
    if ('length' in body) {
      // Only the headers: a declared size over the limit is refused before any byte is read.
      request.flushHeaders();
      return;
    }
    if ('cutAfter' in body) {
      request.write(Buffer.alloc(body.cutAfter, 1), () => setTimeout(() => request.destroy(), 50));
      setTimeout(() => resolve({ status: null, body: '', error: 'cut by the client' }), 300);
      return;
    }
    const chunk = Buffer.alloc(body.chunkBytes, 7);
    let sent = 0;
    const pump = () => {
      while (!answered && sent < body.chunks && !request.destroyed) {
        sent += 1;
        if (!request.write(chunk)) return void request.once('drain', pump);
      }
      if (!request.destroyed && !answered) request.end();
    };
    pump();
  });
}

async function waitForNoPartials(folder: string): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const left = existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith('.partial')) : [];
    if (left.length === 0) return left;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return readdirSync(folder).filter((f) => f.endsWith('.partial'));
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'vswin-hostile-'));
  launched = await launchWorkbench({ home, backend: 'wasm', demo, log: (line) => serviceLog.push(line) });
  smallUploads = join(home, 'small-uploads');
  small = await startService({
    staticDir: join(home, 'no-ui'),
    mediaRoots: () => [],
    uploadDir: smallUploads,
    maxUploadBytes: 64 * 1024,
    maxMessageBytes: 1024,
    log: (line) => serviceLog.push(line),
    dispatch: async (command, args) => {
      if (command === 'echo') return args;
      throw new Error(`unknown command "${command}"`);
    },
  });
}, 60_000);

afterAll(async () => {
  await small?.close();
  await launched?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('a training run survives hostile clients', () => {
  it('closes only the offending client for a 2^40-byte frame header and an oversized message, and keeps training', async () => {
    const { service, workbench } = launched;
    const dataset = await ensureDemoDataset(home, demo);
    const config = {
      ...demoRunConfig(dataset),
      epochs: 2,
      batch_size: 3,
      data: { ...(demoRunConfig(dataset).data as object), workers: 1 },
    };
    const good = await open(service.port, service.token);
    const started = await call(good, 1, 'train.start', { config, name: 'under attack' });
    expect(started.ok).toBe(true);
    const { runId } = started.result as { runId: string };

    // 14 bytes: FIN + binary, masked, 64-bit length 2^40, then the 4-byte mask; no payload follows.
    const raw = await rawHandshake(service.port, service.token);
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(2n ** 40n, 2);
    const rawClosed = new Promise<string>((resolve) => {
      let reply = Buffer.alloc(0);
      raw.on('data', (chunk: Buffer) => (reply = Buffer.concat([reply, chunk])));
      raw.on('close', () => resolve(reply.subarray(0, 4).toString('hex')));
      raw.on('error', () => undefined);
    });
    raw.write(header);
    // The server's close frame: opcode 0x88, 2-byte payload, status 1009 (message too big).
    expect(await rawClosed).toBe('880203f1');

    const big = await open(service.port, service.token);
    const bigClosed = closed(big);
    big.send(Buffer.alloc(9 * 1024 * 1024, 0x20));
    expect(await bigClosed).toBe(1009);

    // The other client and the run carry on.
    const listed = await call(good, 2, 'runs.list', {});
    expect(listed.ok).toBe(true);
    const result = await workbench.training.wait(runId);
    expect(result?.status).toBe('completed');
    // Handled where it happened (the socket's error handler), not by the last-resort process guard.
    expect(serviceLog.filter((line) => /websocket client closed: WS_ERR_UNSUPPORTED_MESSAGE_LENGTH/.test(line))).toHaveLength(2);
    expect(serviceLog.filter((line) => /uncaught|unhandled/.test(line))).toEqual([]);
    good.close();
  }, 120_000);

  it('refuses an upload whose Content-Length is over the limit before reading it, leaving nothing behind', async () => {
    const { service } = launched;
    const posted = await upload(service.port, service.token, 'huge.mp4', { length: 2 ** 40 });
    expect(posted.status).toBe(413);
    expect(posted.body).toContain('Content-Length 1099511627776 is larger than the 536870912-byte limit');
    expect(await waitForNoPartials(join(home, 'uploads'))).toEqual([]);
    const again = await open(service.port, service.token);
    expect((await call(again, 1, 'runs.list', {})).ok).toBe(true);
    again.close();
  });
});

describe('limits of a small service', () => {
  it('refuses a chunked upload over the limit, a cut-off upload and a long message; keeps answering', async () => {
    for (let round = 0; round < 3; round++) {
      const posted = await upload(small.port, small.token, `chunked-${round}.mp4`, { chunks: 200, chunkBytes: 4096 });
      // The refusal is sent before the body is read; a client still writing may see the reset first.
      if (posted.status !== null) {
        expect(posted.status).toBe(413);
        expect(posted.body).toContain('larger than the 65536-byte limit');
      } else expect(posted.error).toMatch(/ECONNRESET|EPIPE|socket hang up/);
      await upload(small.port, small.token, `cut-${round}.mp4`, { cutAfter: 10_000, declared: 50_000 });
    }
    expect(await waitForNoPartials(smallUploads)).toEqual([]);
    const saved = await upload(small.port, small.token, 'fits.mp4', { chunks: 4, chunkBytes: 4096 });
    expect(saved.status).toBe(200);
    expect(readdirSync(smallUploads)).toEqual([expect.stringMatching(/^\d+-fits\.mp4$/)]);

    const socket = await open(small.port, small.token);
    const code = closed(socket);
    socket.send(JSON.stringify({ id: 1, command: 'echo', args: { text: 'x'.repeat(2000) } }));
    expect(await code).toBe(1009);
    const other = await open(small.port, small.token);
    expect(await call(other, 2, 'echo', { ok: 1 })).toMatchObject({ ok: true, result: { ok: 1 } });
    other.close();
  });

  it('serves only videos and images from a media root, with their types', async () => {
    const root = join(home, 'media-root');
    mkdirSync(root, { recursive: true });
    const files: Record<string, string | null> = {
      'clip.webm': 'video/webm',
      'frame.png': 'image/png',
      'frame.JPG': 'image/jpeg',
      'registry.sqlite': null,
      'page.html': null,
      'app.js': null,
      'drawing.svg': null,
      'notes.txt': null,
    };
    for (const name of Object.keys(files)) writeFileSync(join(root, name), 'bytes');
    const service = await startService({
      staticDir: join(home, 'no-ui'),
      mediaRoots: () => [root],
      uploadDir: smallUploads,
      dispatch: async () => null,
    });
    try {
      for (const [name, type] of Object.entries(files)) {
        const reply = await fetch(`http://127.0.0.1:${service.port}/media?path=${encodeURIComponent(join(root, name))}`, {
          headers: { authorization: `Bearer ${service.token}` },
        });
        const text = await reply.text();
        if (type === null) {
          expect(reply.status, name).toBe(404);
          expect(text, name).toContain('is not a video or image file');
        } else {
          expect(reply.status, name).toBe(200);
          expect(reply.headers.get('content-type'), name).toBe(type);
          expect(reply.headers.get('content-security-policy'), name).toContain('sandbox');
        }
      }
    } finally {
      await service.close();
    }
  });
});

describe('the tfjs-wasm rethrow hooks', () => {
  it('a service process with the wasm backend survives an uncaught exception and an unhandled rejection', () => {
    const script = `
      const { initBackend } = await import(${JSON.stringify(fileURLToPath(new URL('../../core/engine/backend.ts', import.meta.url)))});
      const { guardServiceProcess } = await import(${JSON.stringify(fileURLToPath(new URL('../../core/host/service/fault-guard.ts', import.meta.url)))});
      await initBackend('wasm');
      const hooks = process.listeners('uncaughtException').length;
      const guard = guardServiceProcess((message) => console.log('reported:', message));
      setTimeout(() => { throw new Error('a socket handler fault'); }, 10);
      setTimeout(() => { Promise.reject(new Error('a job fault')); }, 20);
      setTimeout(() => { console.log('alive; wasm hooks before the guard:', hooks); guard.release(); }, 100);
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.stderr).not.toMatch(/a socket handler fault|a job fault/);
    expect(child.stdout).toContain(
      'reported: uncaught exception in the service (the service keeps running): Error: a socket handler fault',
    );
    expect(child.stdout).toContain(
      'reported: unhandled rejection in the service (the service keeps running): Error: a job fault',
    );
    expect(child.stdout).toContain('alive; wasm hooks before the guard: 1');
    expect(child.status).toBe(0);
  }, 60_000);
});
