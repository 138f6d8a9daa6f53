// A module worker using h2ws: same API off the main thread (no document, location-based URLs).
import { H2WebSocket, H2WebSocketStream } from '/pkg/index.js';

// Runs at once on load and posts its result (an onmessage handler set after h2ws's top-level
// await never saw the page's message in a first try; not investigated further).
(async () => {
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
    self.postMessage({ url: ws.url, log, code: close.code, clean: close.wasClean, stream: value });
  } catch (e) {
    self.postMessage({ error: String(e) });
  }
})();
