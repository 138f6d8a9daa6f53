// Server-initiated close (graceful shutdown → 1001) and the server killed mid-stream
// (→ error, close 1006), for both transports; each needs its own devserver.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevserver, launchBrowser, openPage, TRANSPORTS } from './harness.mjs';

describe('server-side endings', () => {
  let browser;
  after(async () => browser?.close());

  async function pageOn(server) {
    browser ??= await launchBrowser();
    return openPage(browser, server.origin);
  }

  async function openSockets(page) {
    await page.evaluate(async (transports) => {
      window.sockets = transports.map((transport) => {
        const ws = new H2WebSocket('/ws/echo', [], { transport });
        ws.binaryType = 'arraybuffer';
        window[`log_${transport}`] = t.trace(ws);
        return ws;
      });
      await Promise.all(window.sockets.map((ws) => t.once(ws, 'open')));
      // Traffic flowing when the server goes.
      for (const ws of window.sockets) ws.send('ping?');
      await Promise.all(window.sockets.map((ws) => t.once(ws, 'message')));
    }, TRANSPORTS);
  }

  async function logsAfterClose(page) {
    return page.evaluate(async (transports) => {
      await Promise.all(window.sockets.map((ws) => (ws.readyState === 3 ? null : t.once(ws, 'close', 15000))));
      return Object.fromEntries(transports.map((tr) => [tr, window[`log_${tr}`]
        .filter((e) => e.type !== 'open' && e.type !== 'message')
        .map((e) => [e.type, e.code, e.wasClean, e.readyState].filter((x) => x !== undefined).join(' '))]));
    }, TRANSPORTS);
  }

  it('server-initiated close: graceful shutdown closes every socket cleanly with 1001', async () => {
    const server = await startDevserver();
    try {
      const page = await pageOn(server);
      await openSockets(page);
      const stopping = server.stop();
      const logs = await logsAfterClose(page);
      await stopping;
      for (const transport of TRANSPORTS) {
        assert.deepEqual(logs[transport], ['close 1001 true 3'], `${transport}: ${JSON.stringify(logs[transport])}`);
      }
      await page.close();
    } finally {
      await server.stop();
    }
  });

  it('server killed mid-stream: error, then close 1006 (not clean)', async () => {
    const server = await startDevserver();
    try {
      const page = await pageOn(server);
      await openSockets(page);
      // Keep a big message in flight when the process dies.
      await page.evaluate(() => { for (const ws of window.sockets) ws.send(new Uint8Array(4 << 20)); });
      await server.kill();
      const logs = await logsAfterClose(page);
      for (const transport of TRANSPORTS) {
        assert.deepEqual(logs[transport], ['error 3', 'close 1006 false 3'], `${transport}: ${JSON.stringify(logs[transport])}`);
      }
      await page.close();
    } finally {
      await server.kill();
    }
  });
});
