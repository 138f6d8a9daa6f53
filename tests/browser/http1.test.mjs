// A page over HTTP/1.1 (the devserver's plain-HTTP listener on loopback, a secure context in
// every engine): request streaming cannot work there (browsers stream request bodies only over
// HTTP/2, which they speak only over https). The server offers `stream` anyway (behind a proxy
// it cannot know what the browser speaks), so the library itself must know: `auto` uses `post`
// for an http: URL without trying, and a forced `stream` fails before `open`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevserver, launchBrowser, openPage } from './harness.mjs';

describe('HTTP/1.1 connection', () => {
  let server;
  let browser;
  let page;
  before(async () => {
    server = await startDevserver([], { http: true });
    browser = await launchBrowser();
    page = await openPage(browser, server.httpOrigin);
  });
  after(async () => {
    const errors = await page?.errors();
    await browser?.close();
    await server?.stop();
    assert.deepEqual(errors ?? [], [], 'uncaught errors in the page');
  });

  it('the page really came over HTTP/1.1', async () => {
    const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol ?? '');
    // WebKit reports no nextHopProtocol here (empty): only a non-h2 answer is checked.
    assert.ok(!/^h2|^h3/.test(proto), `nextHopProtocol ${proto}`);
  });

  it('auto uses post on an http: URL although the server offers stream', async () => {
    const r = await page.evaluate(async () => {
      const base = await t.stats();
      const open = await fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-version': '1' } });
      const transports = open.headers.get('h2ws-transports');
      await open.body.cancel();
      // Wait until the server dropped this probe's session, so it does not blur the count below.
      await t.until(async () => (await t.stats()).open_total === base.open_total, 15000, 100);
      const before = await t.stats();
      let data;
      let during;
      let close;
      const kinds = await t.upstreamKinds(async () => {
        const ws = new H2WebSocket('/ws/echo');
        ws.binaryType = 'arraybuffer';
        await t.once(ws, 'open');
        const got = t.messages(ws, 101);
        for (let i = 0; i < 100; i++) ws.send(`h1-${i}`);
        ws.send(new Uint8Array(1 << 20));
        data = await got;
        // The server files a session under `post` once its first batch arrived.
        during = await t.stats();
        ws.close(4100);
        close = await t.once(ws, 'close');
      });
      return {
        transports,
        kinds,
        post: (during.open.post ?? 0) - (before.open.post ?? 0),
        inOrder: data.slice(0, 100).every((d, i) => d === `h1-${i}`),
        big: data[100].byteLength,
        close: [close.code, close.wasClean],
      };
    });
    assert.equal(r.transports, 'stream, post', 'h2ws-transports on HTTP/1.1');
    assert.deepEqual({ ...r, transports: undefined }, { transports: undefined, kinds: ['post'], post: 1, inOrder: true, big: 1 << 20, close: [4100, true] });
  });

  it('explicit stream fails cleanly over HTTP/1.1 before open (error, close 1006)', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo', [], { transport: 'stream' });
      const log = t.trace(ws);
      await t.once(ws, 'close', 15000);
      return log.map((e) => [e.type, e.code, e.wasClean].filter((x) => x !== undefined).join(' '));
    });
    assert.deepEqual(r, ['error', 'close 1006 false']);
    const lines = await page.console();
    assert.ok(lines.some((l) => l.startsWith('warning:') && l.includes("transport 'stream'")), lines.join('\n'));
  });
});
