// The recipes in deploy/ with the real HAProxy 2.6 and nginx 1.22 in front of the devserver,
// driven by a real browser (H2WS_ENGINE; Chromium runs everything, Firefox and WebKit a smoke:
// `auto` and `post` through HAProxy's h2 back end and nginx). README "Behind a proxy" is what
// this asserts: `stream` (Chromium), `post` and `auto` echo through every proxy; the browser's
// own WebSocket too; 100 sockets per page (the library's per-origin cap) pass the raised
// stream limits; `auto` on an https connection that turns out HTTP/1.1 falls back to `post`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevserver, launchBrowser, openPage, ENGINE, STREAMS_REQUESTS } from '../browser/harness.mjs';
import { startHaproxyRecipe, startNginxRecipe } from './fixture.mjs';

const FULL = ENGINE === 'chromium';
const PROXIES = [
  { name: 'HAProxy, h2 back end', start: (s) => startHaproxyRecipe(s, 'h2ws_h2'), smoke: true },
  { name: 'HAProxy, h2c back end', start: (s) => startHaproxyRecipe(s, 'h2ws_h2c') },
  { name: 'HAProxy, HTTP/1.1 back end', start: (s) => startHaproxyRecipe(s, 'h2ws_http1') },
  { name: 'nginx, HTTP/1.1 back end', start: (s) => startNginxRecipe(s), smoke: true },
].filter((p) => FULL || p.smoke);
// `stream` is forced only where the engine streams request bodies; `auto` must pick it there.
const TRANSPORTS = STREAMS_REQUESTS ? ['stream', 'post', 'auto'] : ['post', 'auto'];

/** In the page: open, a burst of 20 texts and 100 KB binary echoed in order, close 1000. */
async function echoes(page, transport) {
  return page.evaluate(async (transport) => {
    let result;
    const kinds = await t.upstreamKinds(async () => {
      const ws = new H2WebSocket('/ws/echo', [], { transport });
      ws.binaryType = 'arraybuffer';
      await t.once(ws, 'open');
      const got = t.messages(ws, 21);
      for (let i = 0; i < 20; i++) ws.send(`m${i}`);
      const big = t.pattern(100_000);
      ws.send(big);
      const data = await got;
      ws.close(1000);
      const close = await t.once(ws, 'close');
      result = {
        inOrder: data.slice(0, 20).every((d, i) => d === `m${i}`),
        big: t.equalBytes(new Uint8Array(data[20]), big),
        close: [close.code, close.wasClean],
      };
    });
    return { ...result, kinds };
  }, transport);
}

describe(`through proxies (${ENGINE})`, () => {
  let server;
  let browser;
  before(async () => {
    server = await startDevserver([], { http: true });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  for (const proxy of PROXIES) {
    describe(proxy.name, () => {
      let svc;
      let page;
      before(async () => {
        svc = await proxy.start(server);
        page = await openPage(browser, svc.origin);
      });
      after(async () => {
        const errors = await page?.errors();
        await page?.close?.();
        await svc?.stop();
        assert.deepEqual(errors ?? [], [], 'uncaught errors in the page');
      });
      const withLogs = (msg) => `${msg}\n${svc.logs()}\n${server.output.join('').slice(-4000)}`;

      for (const transport of TRANSPORTS) {
        it(`${transport}: echoes a burst and 100 KB, closes cleanly`, async () => {
          const r = await echoes(page, transport);
          const expected = transport === 'post' || (transport === 'auto' && !STREAMS_REQUESTS) ? ['post'] : ['stream'];
          assert.deepEqual(r, { inOrder: true, big: true, close: [1000, true], kinds: expected }, withLogs(JSON.stringify(r)));
        });
      }

      it("the browser's own WebSocket echoes (rfc8441 or rfc6455, as the browser picks)", async () => {
        const r = await page.evaluate(async () => {
          const ws = new WebSocket(location.origin.replace('https', 'wss') + '/ws/echo');
          await t.once(ws, 'open');
          const got = t.messages(ws, 1);
          ws.send('native');
          const [m] = await got;
          ws.close(1000);
          const close = await t.once(ws, 'close');
          return [m, close.code];
        });
        assert.deepEqual(r, ['native', 1000], withLogs(JSON.stringify(r)));
      });

      if (FULL) {
        it('100 sockets at once (the per-origin cap) all open and echo', async () => {
          const r = await page.evaluate(async () => {
            const sockets = Array.from({ length: 100 }, () => new H2WebSocket('/ws/echo'));
            const opened = await Promise.allSettled(sockets.map((ws) => t.once(ws, 'open', 30000)));
            const echoed = await Promise.allSettled(sockets.map(async (ws, i) => {
              const got = t.messages(ws, 1, 30000);
              ws.send(`s${i}`);
              const [m] = await got;
              if (m !== `s${i}`) throw new Error(`socket ${i}: ${m}`);
            }));
            const closes = await Promise.all(sockets.map((ws) => { const c = t.once(ws, 'close', 30000); ws.close(1000); return c.then((e) => e.code, () => 'timeout'); }));
            return {
              opened: opened.filter((x) => x.status === 'fulfilled').length,
              echoed: echoed.filter((x) => x.status === 'fulfilled').length,
              closed1000: closes.filter((c) => c === 1000).length,
            };
          });
          assert.deepEqual(r, { opened: 100, echoed: 100, closed1000: 100 }, withLogs(JSON.stringify(r)));
        });
      }
    });
  }

  if (FULL) {
    it('auto falls back to post when the https connection is HTTP/1.1, a forced stream fails with a reason (Chromium with HTTP/2 off, via nginx)', async () => {
      const svc = await startNginxRecipe(server);
      const h1 = await launchBrowser({ http1: true });
      try {
        const page = await openPage(h1, svc.origin);
        const r = await page.evaluate(async () => {
          const proto = performance.getEntriesByType('navigation')[0]?.nextHopProtocol ?? '';
          let during;
          let data;
          let close;
          const kinds = await t.upstreamKinds(async () => {
            const ws = new H2WebSocket('/ws/echo');
            await t.once(ws, 'open');
            // Sent at once: these ride the failed stream first and must be resent as post.
            const got = t.messages(ws, 5);
            for (let i = 0; i < 5; i++) ws.send(`f${i}`);
            data = await got;
            during = await t.stats();
            ws.close(1000);
            close = await t.once(ws, 'close');
          });
          return { proto, kinds, data, post: during.open.post ?? 0, stream: during.open.stream ?? 0, close: [close.code, close.wasClean] };
        });
        assert.deepEqual(r, { proto: 'http/1.1', kinds: ['post', 'stream'], data: ['f0', 'f1', 'f2', 'f3', 'f4'], post: 1, stream: 0, close: [1000, true] }, `${JSON.stringify(r)}\n${svc.logs()}`);
        // A forced `stream` does not fall back: it fails right after `open` and says why.
        const forced = await page.evaluate(async () => {
          const ws = new H2WebSocket('/ws/echo', [], { transport: 'stream' });
          const log = t.trace(ws);
          await t.once(ws, 'close', 15000);
          return log.map((e) => [e.type, e.code, e.wasClean].filter((x) => x !== undefined).join(' '));
        });
        assert.deepEqual(forced, ['open', 'error', 'close 1006 false']);
        const lines = await page.console();
        assert.ok(lines.some((l) => l.startsWith('warning:') && l.includes("'stream' upstream request failed at once")), lines.join('\n'));
      } finally {
        await h1.close();
        await svc.stop();
      }
    });
  }
});
