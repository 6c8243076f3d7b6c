// The service refuses anything without the launch token, from a foreign Origin or Host, and never
// serves a file outside the UI folder or the media roots, however the path is spelled.
import { mkdtempSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { call } from './ws-client.ts';
import { startService, type RunningService } from '../../core/host/service/server.ts';

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { host: `127.0.0.1:${port}`, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function connect(
  port: number,
  query: string,
  headers: Record<string, string> = {},
): Promise<{ socket: WebSocket | null; status: number | null }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, { headers });
    socket.on('open', () => resolve({ socket, status: null }));
    socket.on('unexpected-response', (_req, res) => resolve({ socket: null, status: res.statusCode ?? 0 }));
    socket.on('error', () => resolve({ socket: null, status: -1 }));
  });
}

let service: RunningService;
let base: string;
const SECRET = 'outside-secret-content';

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'vswin-service-'));
  const ui = join(base, 'ui');
  const media = join(base, 'media');
  mkdirSync(join(ui, 'assets'), { recursive: true });
  mkdirSync(media);
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>ui</title>');
  writeFileSync(join(ui, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(base, 'secret.txt'), SECRET);
  writeFileSync(join(media, 'clip.mp4'), 'not really a video');
  symlinkSync(join(base, 'secret.txt'), join(ui, 'assets', 'link.txt'));
  symlinkSync(join(base, 'secret.txt'), join(media, 'link.mp4'));
  service = await startService({
    staticDir: ui,
    mediaRoots: () => [media],
    uploadDir: join(base, 'uploads'),
    token: 'test-token-0123456789',
    maxUploadBytes: 1024,
    dispatch: async (command, args, context) => {
      if (command === 'echo') return args;
      if (command === 'fail') throw new Error('this job fails on purpose');
      if (command === 'slow') {
        for (let i = 0; i < 5; i++) {
          context.progress(i, 5, 'waiting');
          await new Promise((resolve) => setTimeout(resolve, 60));
        }
        return 'slow done';
      }
      throw new Error(`unknown command "${command}"`);
    },
  });
});

afterAll(async () => {
  await service?.close();
});

describe('HTTP access', () => {
  it('serves the UI with the token and sets a strict HttpOnly cookie', async () => {
    const reply = await get(service.port, `/?token=${service.token}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toContain('<title>ui</title>');
    expect(String(reply.headers['set-cookie'])).toMatch(/vswin_token=.*HttpOnly; SameSite=Strict/);
    expect(String(reply.headers['content-security-policy'])).toContain("script-src 'self'");
    const withCookie = await get(service.port, '/assets/app.js', { cookie: `vswin_token=${service.token}` });
    expect(withCookie.status).toBe(200);
    expect(withCookie.body).toBe('console.log(1)');
  });

  it('refuses a request without a token', async () => {
    const reply = await get(service.port, '/');
    expect(reply.status).toBe(401);
    expect(reply.body).not.toContain('<title>ui</title>');
    expect((await get(service.port, '/assets/app.js')).status).toBe(401);
  });

  it('refuses a wrong token in the query, the cookie or the Authorization header', async () => {
    expect((await get(service.port, '/?token=wrong')).status).toBe(401);
    expect((await get(service.port, '/', { cookie: 'vswin_token=wrong' })).status).toBe(401);
    expect((await get(service.port, '/', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get(service.port, `/?token=${service.token}x`)).status).toBe(401);
  });

  it('refuses a foreign Origin and a foreign Host even with the right token', async () => {
    const foreign = await get(service.port, `/?token=${service.token}`, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.body).toContain('evil.example');
    const otherPort = await get(service.port, `/?token=${service.token}`, { origin: `http://127.0.0.1:${service.port + 1}` });
    expect(otherPort.status).toBe(403);
    const rebound = await get(service.port, `/?token=${service.token}`, { host: `evil.example:${service.port}` });
    expect(rebound.status).toBe(403);
    const same = await get(service.port, `/?token=${service.token}`, {
      origin: `http://localhost:${service.port}`,
      host: `localhost:${service.port}`,
    });
    expect(same.status).toBe(200);
  });

  it('never serves a file outside the UI folder, however the path is spelled', async () => {
    const cookie = { cookie: `vswin_token=${service.token}` };
    const attempts = [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E%2Fsecret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/..%5csecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/%00/../secret.txt',
      '/assets/link.txt',
      `/${'../'.repeat(8)}etc/passwd`,
      '/%252e%252e/secret.txt',
      '/%zz',
    ];
    for (const path of attempts) {
      const reply = await get(service.port, path, cookie);
      expect(reply.status, path).toBe(404);
      expect(reply.body, path).not.toContain(SECRET);
      expect(reply.body, path).not.toContain('root:');
    }
  });

  it('serves media only inside the media roots (no symbolic link out, no relative path)', async () => {
    const cookie = { cookie: `vswin_token=${service.token}` };
    const inside = await get(service.port, `/media?path=${encodeURIComponent(join(base, 'media', 'clip.mp4'))}`, cookie);
    expect(inside.status).toBe(200);
    expect(inside.headers['content-type']).toBe('video/mp4');
    for (const path of [
      join(base, 'secret.txt'),
      join(base, 'media', '..', 'secret.txt'),
      join(base, 'media', 'link.mp4'),
      'media/clip.mp4',
      '/etc/passwd',
    ]) {
      const reply = await get(service.port, `/media?path=${encodeURIComponent(path)}`, cookie);
      expect(reply.status, path).toBe(404);
      expect(reply.body).not.toContain(SECRET);
    }
    expect((await get(service.port, `/media?path=${encodeURIComponent(join(base, 'media', 'clip.mp4'))}`)).status).toBe(401);
  });
});

describe('uploads', () => {
  function post(path: string, body: string, headers: Record<string, string>): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: service.port,
          path,
          method: 'POST',
          headers: { host: `127.0.0.1:${service.port}`, 'content-type': 'application/octet-stream', ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('refuses uploads without the token or from a foreign page, and keeps the file in the upload folder', async () => {
    const cookie = `vswin_token=${service.token}`;
    expect((await post('/upload?name=a.mp4', 'x', {})).status).toBe(401);
    expect((await post('/upload?name=a.mp4', 'x', { cookie, origin: 'http://evil.example' })).status).toBe(403);
    const saved = await post(`/upload?name=${encodeURIComponent('../../../../tmp/escape.mp4')}`, 'video bytes', { cookie });
    expect(saved.status).toBe(200);
    const path = (JSON.parse(saved.body) as { path: string }).path;
    expect(path.startsWith(join(base, 'uploads') + '/')).toBe(true);
    expect(path.endsWith('-escape.mp4')).toBe(true);
    expect((await post('/upload?name=.hidden', 'x', { cookie })).status).toBe(400);
    // Over the size limit: refused, and no partial file is left behind.
    const tooBig = await post('/upload?name=big.mp4', 'x'.repeat(2048), { cookie });
    expect(tooBig.status).toBe(413);
    expect(readdirSync(join(base, 'uploads')).filter((f) => f.includes('big'))).toEqual([]);
  });
});

describe('WebSocket access', () => {
  it('refuses a socket without a token, with a wrong token or from a foreign Origin', async () => {
    expect((await connect(service.port, '')).status).toBe(401);
    expect((await connect(service.port, '?token=wrong')).status).toBe(401);
    expect((await connect(service.port, `?token=${service.token}`, { origin: 'http://evil.example' })).status).toBe(403);
  });

  it('answers commands; a failing job returns its error and the service keeps working', async () => {
    const { socket } = await connect(service.port, `?token=${service.token}`, { origin: `http://127.0.0.1:${service.port}` });
    expect(socket).not.toBeNull();
    const ws = socket as WebSocket;
    const failed = await call(ws, 1, 'fail');
    expect(failed.ok).toBe(false);
    expect(failed.error).toBe('this job fails on purpose');
    const echoed = await call(ws, 2, 'echo', { value: 42 });
    expect(echoed).toMatchObject({ ok: true, result: { value: 42 } });
    ws.close();
  });

  it('runs a slow job without blocking a fast one, reporting progress', async () => {
    const { socket } = await connect(service.port, '', { cookie: `vswin_token=${service.token}` });
    const ws = socket as WebSocket;
    const progress: number[] = [];
    ws.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.kind === 'event' && message.event.kind === 'job-progress') progress.push(message.event.done);
    });
    const order: string[] = [];
    const slow = call(ws, 10, 'slow').then(() => order.push('slow'));
    const fast = call(ws, 11, 'echo', { quick: true }).then(() => order.push('fast'));
    await Promise.all([slow, fast]);
    expect(order).toEqual(['fast', 'slow']);
    expect(progress.length).toBeGreaterThan(0);
    ws.close();
  });
});
