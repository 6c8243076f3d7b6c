// Sends one command over a test's WebSocket and resolves with its result message.
import type WebSocket from 'ws';

export function call(
  socket: WebSocket,
  id: number,
  command: string,
  args: unknown = {},
): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const message = JSON.parse(String(data));
      if (message.kind === 'result' && message.id === id) {
        socket.off('message', onMessage);
        resolve(message);
      }
    };
    socket.on('message', onMessage);
    socket.send(JSON.stringify({ id, command, args }));
  });
}
