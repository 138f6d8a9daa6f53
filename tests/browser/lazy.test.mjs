// The wasm loads on first use: importing h2ws does no work, a socket made before the wasm is
// there is CONNECTING (send() throws, close() fails it, the cap set before applies), a wasm that
// cannot load fails the waiting sockets the WHATWG way, and ready() preloads or points at it.
// Each case reloads the page, so each starts with the wasm not loaded.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { setupForSuite } from './harness.mjs';

describe('lazy wasm load', () => {
  let env, page; // set before the tests run
  setupForSuite((e) => ([env, page] = [e, e.page]));
  beforeEach(async () => {
    await page.goto(`${env.server.origin}/index.html`);
    await page.waitForFunction(() => window.h2wsReady === true, undefined, { timeout: 60000 });
  });

  it('importing fetches nothing; the first socket is CONNECTING until the wasm is there, then echoes', async () => {
    const r = await page.evaluate(async () => {
      const wasmRequests = () => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.wasm')).length;
      await t.sleep(200); // anything the import started would have begun by now
      const beforeUse = wasmRequests();
      const ws = new H2WebSocket('/ws/echo');
      const first = ws.readyState;
      await t.once(ws, 'open');
      ws.send('lazy');
      const [m] = await t.messages(ws, 1);
      ws.close();
      await t.once(ws, 'close');
      return { beforeUse, first, afterUse: wasmRequests(), echoed: m };
    });
    assert.deepEqual(r, { beforeUse: 0, first: 0, afterUse: 1, echoed: 'lazy' });
  });

  it('while the wasm loads: send() throws InvalidStateError, close() fails the socket (error, close 1006) with no open request', async () => {
    const r = await page.evaluate(async () => {
      let release;
      const held = ready(new Promise((resolve) => { release = () => resolve('/pkg/h2ws_wasm_bg.wasm'); }));
      const events = [];
      let sendError;
      const requests = await t.requestsDuring(async () => {
        const ws = new H2WebSocket('/ws/echo');
        ['open', 'error', 'close'].forEach((type) => ws.addEventListener(type, (e) => events.push(`${type}${e.code ? ` ${e.code} ${e.wasClean}` : ''} rs=${ws.readyState}`)));
        try { ws.send('early'); } catch (e) { sendError = e.name; }
        ws.close(1000, 'bye');
        events.push(`after close() rs=${ws.readyState}`);
        await t.once(ws, 'close');
        ws.send('after'); // counts only, as after any close
        events.push(`buffered ${ws.bufferedAmount}`);
        const stream = new H2WebSocketStream('/ws/echo');
        stream.close();
        const rejected = await stream.opened.then(() => 'resolved', (e) => `${e.name} ${e.closeCode}`);
        events.push(`stream opened: ${rejected}`);
        const controller = new AbortController();
        const aborted = new H2WebSocketStream('/ws/echo', { signal: controller.signal });
        controller.abort(new Error('stop'));
        events.push(`aborted stream opened: ${await aborted.opened.then(() => 'resolved', (e) => e.message)}`);
        release();
        await held;
        await t.sleep(100); // a core made for the closed sockets would have sent its open request by now
      });
      return { sendError, events, opens: requests.filter((q) => q.url.includes('/ws/echo')).length };
    });
    assert.equal(r.sendError, 'InvalidStateError');
    assert.deepEqual(r.events, [
      'after close() rs=2', 'error rs=3', 'close 1006 false rs=3', 'buffered 5',
      'stream opened: WebSocketError 1006', 'aborted stream opened: stop',
    ]);
    assert.equal(r.opens, 0, 'no open request for sockets closed before the wasm loaded');
  });

  it('a wasm that cannot load fails the waiting socket (error, close 1006) with a console message; a later socket loads it again', async () => {
    const r = await page.evaluate(async () => {
      const failed = ready('/no-such.wasm').then(() => 'resolved', () => 'rejected');
      const ws = new H2WebSocket('/ws/echo');
      const events = [];
      ['open', 'error', 'close'].forEach((type) => ws.addEventListener(type, (e) => events.push(`${type}${e.code ? ` ${e.code}` : ''}`)));
      await t.once(ws, 'close');
      const again = new H2WebSocket('/ws/echo');
      await t.once(again, 'open');
      again.close();
      return { ready: await failed, events };
    });
    assert.deepEqual(r, { ready: 'rejected', events: ['error', 'close 1006'] });
    const lines = await page.console();
    assert.ok(lines.some((l) => l.includes('h2ws: its wasm did not load') && l.includes('ready()')), lines.join('\n'));
  });

  it('H2WebSocket.maxSocketsPerOrigin set before the wasm loads applies', async () => {
    const r = await page.evaluate(async () => {
      H2WebSocket.maxSocketsPerOrigin = 0;
      const refused = new H2WebSocket('/ws/echo');
      const first = await t.onceAny(refused, ['open', 'close']);
      H2WebSocket.maxSocketsPerOrigin = 100;
      const ok = new H2WebSocket('/ws/echo');
      const second = await t.onceAny(ok, ['open', 'close']);
      ok.close();
      return [`${first.type} ${first.code ?? ''}`, second.type];
    });
    assert.deepEqual(r, ['close 1006', 'open']);
  });
});
