// h2ws off the main thread: the same API in a module Worker and a module SharedWorker (no
// document: URLs resolve against the worker's location; the wasm loads on first use there too).
// The result goes to the page once: postMessage in a Worker, over the connecting port in a
// SharedWorker.
import { H2WebSocket, H2WebSocketStream } from '/pkg/index.js';

async function run() {
  try {
    const ws = new H2WebSocket('/ws/echo');
    ws.binaryType = 'arraybuffer';
    const log = [];
    const opened = new Promise((resolve) => ws.addEventListener('open', resolve, { once: true }));
    ws.addEventListener('message', (e) => log.push(typeof e.data === 'string' ? e.data : e.data.byteLength));
    await opened;
    ws.send('from worker');
    ws.send(new Uint8Array(5));
    await new Promise((resolve) => { const c = () => (log.length === 2 ? resolve() : setTimeout(c, 5)); c(); });
    const closed = new Promise((resolve) => ws.addEventListener('close', resolve, { once: true }));
    ws.close(1000);
    const close = await closed;
    const wss = new H2WebSocketStream('/ws/echo');
    const { readable, writable } = await wss.opened;
    await writable.getWriter().write('stream in worker');
    const { value } = await readable.getReader().read();
    wss.close();
    await wss.closed;
    return { url: ws.url, log, code: close.code, clean: close.wasClean, stream: value, kind: self.constructor.name };
  } catch (e) {
    return { error: String(e) };
  }
}

// Starts at once on load, whichever worker this is.
const result = run();
if ('onconnect' in self) {
  self.onconnect = (e) => { result.then((r) => e.ports[0].postMessage(r)); };
} else {
  result.then((r) => self.postMessage(r));
}
