// Over HTTP/1.1 (Chromium started with --disable-http2) request streaming cannot work: `auto`
// must see the server's `h2ws-transports` without `stream` and use `post`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevserver, launchBrowser, openPage } from './harness.mjs';

describe('HTTP/1.1 connection', () => {
  let server;
  let browser;
  let page;
  before(async () => {
    server = await startDevserver();
    browser = await launchBrowser(['--disable-http2']);
    page = await openPage(browser.context, server.origin);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('auto uses post when the server does not offer stream (HTTP/1.1)', async () => {
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
    assert.doesNotMatch(r.transports ?? '', /stream/, `h2ws-transports on HTTP/1.1: ${r.transports}`);
    assert.deepEqual({ ...r, transports: undefined }, { transports: undefined, kinds: ['post'], post: 1, inOrder: true, big: 1 << 20, close: [4100, true] });
  });

  it('explicit stream fails cleanly over HTTP/1.1 (error, close 1006)', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo', [], { transport: 'stream' });
      const log = t.trace(ws);
      await t.once(ws, 'close', 15000);
      return log.map((e) => [e.type, e.code, e.wasClean].filter((x) => x !== undefined).join(' '));
    });
    // The open succeeds, then the upload cannot stream: the socket fails rather than hangs.
    assert.deepEqual(r.slice(-2), ['error', 'close 1006 false'], JSON.stringify(r));
    assert.ok(r.length <= 3 && (r.length === 2 || r[0] === 'open'), JSON.stringify(r));
  });
});
