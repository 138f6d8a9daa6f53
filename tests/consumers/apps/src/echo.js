// What every consumer app does: an echo round trip with H2WebSocket and with H2WebSocketStream
// against the devserver's /ws/echo. Imported exactly as an app would: the bare specifier `h2ws`.
import { H2WebSocket, H2WebSocketStream } from 'h2ws';

export async function echo(name) {
  const ws = new H2WebSocket('/ws/echo');
  const connecting = ws.readyState;
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onclose = (e) => reject(new Error(`H2WebSocket closed (${e.code}) before open`));
  });
  ws.send(`hello from ${name}`);
  const text = await new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
  const code = await new Promise((resolve) => {
    ws.onclose = (e) => resolve(e.code);
    ws.close(1000);
  });
  const stream = new H2WebSocketStream('/ws/echo');
  const { readable, writable } = await stream.opened;
  await writable.getWriter().write(new Uint8Array([1, 2, 3]));
  const { value } = await readable.getReader().read();
  stream.close();
  await stream.closed;
  return { connecting, text, code, stream: Array.from(value) };
}
