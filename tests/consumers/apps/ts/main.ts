// A strict TypeScript consumer: every option and event of the published types in use, and an
// expect-error directive wherever the types must refuse (an unused directive is itself an error,
// so a type that is too loose fails the compile).
import H2WebSocketDefault, {
  H2WebSocket,
  H2WebSocketError,
  H2WebSocketStream,
  ready,
  type H2Transport,
  type H2WasmSource,
  type H2WebSocketCloseInfo,
  type H2WebSocketOpenInfo,
  type H2WebSocketOptions,
  type H2WebSocketStreamOptions,
} from 'h2ws';

const transport: H2Transport = 'post';
const options: H2WebSocketOptions = { transport, headers: { Authorization: 'Bearer x' } };
const source: H2WasmSource = new URL('https://example.test/h2ws_wasm_bg.wasm');
export const loaded: Promise<void> = ready(source);
ready();
ready(new Uint8Array(8));
ready(Promise.resolve('/h2ws_wasm_bg.wasm'));

H2WebSocket.maxSocketsPerOrigin = 10;
const ws: H2WebSocket = new H2WebSocketDefault('wss://example.test/ws', ['chat'], options);
new H2WebSocket(new URL('wss://example.test/ws'), 'chat');
ws.binaryType = 'arraybuffer';
const state: number = ws.readyState;
const open: boolean = state === H2WebSocket.OPEN || state === ws.CONNECTING;
const info: string = `${ws.url} ${ws.protocol} ${ws.extensions} ${ws.bufferedAmount} ${open}`;
ws.onopen = (e: Event) => ws.send(info);
ws.onmessage = (e: MessageEvent) => {
  const data: unknown = e.data;
  const origin: string = e.origin;
  return [data, origin];
};
ws.onerror = (e: Event) => e.type;
ws.onclose = (e: CloseEvent) => {
  const details: [number, string, boolean] = [e.code, e.reason, e.wasClean];
  return details;
};
ws.addEventListener('message', (e) => {
  const origin: string = e.origin; // e is a MessageEvent
  return origin;
});
ws.addEventListener('close', (e) => e.code, { once: true }); // e is a CloseEvent
ws.addEventListener('custom', (e: Event) => e.type);
ws.send(new Uint8Array(1));
ws.send(new ArrayBuffer(1));
ws.send(new Blob(['x']));
ws.close(1000, 'done');
ws.close();

const streamOptions: H2WebSocketStreamOptions = {
  protocols: ['chat'],
  signal: new AbortController().signal,
  transport: 'auto',
  headers: [['x-extra', 'yes']],
};
const stream = new H2WebSocketStream('wss://example.test/ws', streamOptions);
const url: string = stream.url;
export async function useStream(): Promise<string> {
  const opened: H2WebSocketOpenInfo = await stream.opened;
  const reader = opened.readable.getReader();
  const { value } = await reader.read();
  const message: string | Uint8Array | undefined = value;
  await opened.writable.getWriter().write('text');
  await opened.writable.getWriter().write(new Uint8Array(2));
  const closeInfo: H2WebSocketCloseInfo = { closeCode: 1000, reason: 'bye' };
  stream.close(closeInfo);
  try {
    const { closeCode, reason } = await stream.closed;
    return `${url} ${opened.protocol} ${opened.extensions} ${String(message)} ${closeCode} ${reason}`;
  } catch (error) {
    if (error instanceof H2WebSocketError) {
      const code: number | null = error.closeCode;
      return `${error.name} ${code} ${error.reason}`;
    }
    throw error;
  }
}

// @ts-expect-error: not a transport
new H2WebSocket('wss://example.test/ws', [], { transport: 'websocket' });
// @ts-expect-error: readyState is read-only
ws.readyState = 1;
// @ts-expect-error: protocols is a list of strings
new H2WebSocketStream('wss://example.test/ws', { protocols: 5 });
// (ready(42) cannot be refused: lib.dom's WebAssembly.Module is an empty interface.)
// @ts-expect-error: ready() resolves to nothing
export const nothing: string = await loaded;
// @ts-expect-error: binaryType is 'blob' | 'arraybuffer'
ws.binaryType = 'text';
