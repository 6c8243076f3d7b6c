// The only code in the renderer that talks to the core: typed commands over the service's WebSocket,
// the event stream, uploads, media URLs, and the native functions the Electron preload may expose.
import type { CommandArgs, CommandName, CommandResult, ServiceMessage, WorkbenchEvent } from '../../core/protocol/workbench.ts';

export type ConnectionState = 'connecting' | 'open' | 'closed';

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Functions the Electron preload exposes by name; absent in a plain browser. */
export interface NativeFunctions {
  pickFolder(): Promise<string | null>;
  pickFile(filters?: { name: string; extensions: string[] }[]): Promise<string | null>;
  openInFileManager(path: string): Promise<void>;
}

declare global {
  interface Window {
    workbenchNative?: NativeFunctions;
  }
}

export class Bridge {
  private socket: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: string[] = [];
  private readonly listeners = new Set<(event: WorkbenchEvent) => void>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private retry = 250;
  state: ConnectionState = 'connecting';

  constructor(private readonly url: string) {
    this.connect();
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.setState('connecting');
    socket.onopen = () => {
      this.retry = 250;
      this.setState('open');
      for (const text of this.queue.splice(0)) socket.send(text);
    };
    socket.onmessage = (message) => this.receive(JSON.parse(String(message.data)) as ServiceMessage);
    socket.onclose = () => {
      this.setState('closed');
      for (const [, pending] of this.pending) pending.reject(new Error('the connection to the workbench service was lost'));
      this.pending.clear();
      // The service may be restarting (or the laptop slept): reconnect with a capped backoff.
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
  }

  private receive(message: ServiceMessage): void {
    switch (message.kind) {
      case 'result': {
        const pending = this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(new Error(message.error));
        return;
      }
      case 'event':
        for (const listener of this.listeners) listener(message.event);
        return;
      default: {
        const unknown: never = message;
        throw new Error(`unknown service message ${JSON.stringify(unknown)}`);
      }
    }
  }

  call<N extends CommandName>(command: N, args: CommandArgs<N>): Promise<CommandResult<N>> {
    const id = this.nextId++;
    const text = JSON.stringify({ id, command, args });
    return new Promise<CommandResult<N>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
      else this.queue.push(text);
    });
  }

  onEvent(listener: (event: WorkbenchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Sends a dropped file to the service, which saves it in the workbench home; returns its path there. */
  async upload(file: File): Promise<string> {
    const response = await fetch(`./upload?name=${encodeURIComponent(file.name)}`, {
      method: 'POST',
      body: file,
      credentials: 'same-origin',
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`upload of ${file.name} failed: ${text.trim()}`);
    return (JSON.parse(text) as { path: string }).path;
  }

  mediaUrl(path: string): string {
    return `./media?path=${encodeURIComponent(path)}`;
  }

  get native(): NativeFunctions | null {
    return typeof window !== 'undefined' && window.workbenchNative ? window.workbenchNative : null;
  }
}

let shared: Bridge | null = null;

/** The page's bridge: the token came in the URL and now lives in an HttpOnly cookie, so it leaves the address bar. */
export function bridge(): Bridge {
  if (shared) return shared;
  const location = window.location;
  if (new URLSearchParams(location.search).has('token')) window.history.replaceState(null, '', location.pathname + location.hash);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  shared = new Bridge(`${scheme}://${location.host}/ws`);
  return shared;
}
