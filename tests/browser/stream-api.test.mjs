// H2WebSocketStream: the WebSocketStream shape, close codes, failure, and real backpressure
// (a slow reader stalls the server's sends, visible in /.h2ws/stats).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setupForSuite, TRANSPORTS } from './harness.mjs';

describe('H2WebSocketStream', () => {
  let env, page; // set before the tests run
  setupForSuite((e) => ([env, page] = [e, e.page]));

  for (const transport of TRANSPORTS) {
    it(`opens, echoes through readable/writable and closes with a code (${transport})`, async () => {
      const r = await page.evaluate(async (transport) => {
        const wss = new H2WebSocketStream('/ws/echo', { transport });
        const opened = await wss.opened;
        const keys = Object.keys(opened).sort();
        const writer = opened.writable.getWriter();
        const reader = opened.readable.getReader();
        await writer.write('hi');
        await writer.write(new Uint8Array([1, 2, 3]));
        const a = await reader.read();
        const b = await reader.read();
        wss.close({ closeCode: 4002, reason: 'stream done' });
        const closed = await wss.closed;
        const end = await reader.read();
        return {
          keys, protocol: opened.protocol, extensions: opened.extensions,
          a: a.value, b: [b.value.constructor.name, ...b.value], closed, endDone: end.done,
        };
      }, transport);
      assert.deepEqual(r.keys, ['extensions', 'protocol', 'readable', 'writable']);
      assert.equal(r.protocol, '');
      assert.equal(r.a, 'hi');
      assert.deepEqual(r.b, ['Uint8Array', 1, 2, 3]);
      // The echo app echoes the code only.
      assert.deepEqual(r.closed, { closeCode: 4002, reason: '' });
      assert.equal(r.endDone, true);
    });
  }

  it('rejects opened and closed when the handshake is refused', async () => {
    const r = await page.evaluate(async () => {
      const wss = new H2WebSocketStream('/ws/no-such-app');
      const o = await wss.opened.then(() => 'resolved', (e) => `${e.name} ${e.closeCode}`);
      const c = await wss.closed.then(() => 'resolved', (e) => `${e.name} ${e.closeCode}`);
      return { o, c };
    });
    assert.deepEqual(r, { o: 'WebSocketError 1006', c: 'WebSocketError 1006' });
  });

  it('an abort signal fails the handshake; opened and closed reject with its reason', async () => {
    const r = await page.evaluate(async () => {
      const early = new AbortController();
      early.abort(new Error('before'));
      const a = new H2WebSocketStream('/ws/echo', { signal: early.signal });
      const late = new AbortController();
      const b = new H2WebSocketStream('/ws/echo', { signal: late.signal });
      late.abort();
      const settle = (p) => p.then(() => 'resolved', (e) => `${e.name}:${e.message}`);
      // After open, aborting changes nothing.
      const after = new AbortController();
      const c = new H2WebSocketStream('/ws/echo', { signal: after.signal });
      await c.opened;
      after.abort();
      c.close();
      return { a: [await settle(a.opened), await settle(a.closed)], b: [await settle(b.opened), await settle(b.closed)], c: await c.closed };
    });
    assert.deepEqual(r.a, ['Error:before', 'Error:before']);
    assert.equal(r.b[0], r.b[1]);
    assert.match(r.b[0], /^AbortError:/);
    assert.equal(r.c.closeCode, 1000); // the echo app answers a Close without code with 1000
  });

  // In every engine: Chromium bounds its HTTP/2 reads itself; Firefox 153 and WebKit 2.50
  // buffer a fetch() response body as it arrives, read or not (measured: 400 MiB unread), so
  // there the server holds the downstream to the read window the library acknowledges.
  it(`backpressure (${TRANSPORTS[0]}): a slow reader stalls the server (stats), writes resolve as the upstream takes them`, async () => {
    const r = await page.evaluate(async (transport) => {
      const COUNT = 96;
      const SIZE = 256 * 1024; // 24 MiB echoed in total
      const wss = new H2WebSocketStream('/ws/echo', { transport });
      const { readable, writable } = await wss.opened;
      const base = await t.stats();
      const writer = writable.getWriter();
      let written = 0;
      const chunk = t.pattern(SIZE, 3);
      const writing = (async () => {
        for (let i = 0; i < COUNT; i++) {
          await writer.ready;
          writer.write(chunk).then(() => { written++; });
        }
        await writer.ready;
      })();
      // Nobody reads: wait until the server's sends stop growing (it is blocked), at most 20 s.
      let s1 = await t.stats();
      for (let i = 0; i < 80; i++) {
        await t.sleep(250);
        const s = await t.stats();
        const stalled = s.bytes_out === s1.bytes_out && s.bytes_in === s1.bytes_in && s.bytes_out > base.bytes_out;
        s1 = s;
        if (stalled) break;
      }
      const written1 = written;
      await t.sleep(1000);
      const s2 = await t.stats();
      const written2 = written;
      // Now read everything.
      const reader = readable.getReader();
      let got = 0;
      let bytes = 0;
      while (got < COUNT) {
        const { value, done } = await reader.read();
        if (done) break;
        got++;
        bytes += value.byteLength;
      }
      await writing;
      const s3 = await t.stats();
      wss.close();
      await wss.closed;
      return {
        total: COUNT * SIZE,
        out1: s1.bytes_out - base.bytes_out, out2: s2.bytes_out - base.bytes_out, out3: s3.bytes_out - base.bytes_out,
        in1: s1.bytes_in - base.bytes_in, written1, written2, got, bytes, writtenEnd: written,
      };
    }, TRANSPORTS[0]);
    const info = JSON.stringify(r);
    // While nobody reads, the server has sent only part of the data and is stuck.
    assert.ok(r.out1 < r.total / 2, `server sent ${r.out1} of ${r.total} before reading started: ${info}`);
    assert.equal(r.out2, r.out1, `server stalled while the reader slept: ${info}`);
    // ... and the client's writes stop resolving because the server stopped taking them.
    assert.ok(r.written2 < 96, `writes blocked by backpressure: ${info}`);
    assert.equal(r.written2, r.written1, info);
    // Reading releases everything, in full.
    assert.equal(r.got, 96);
    assert.equal(r.bytes, r.total);
    assert.equal(r.writtenEnd, 96);
    assert.ok(r.out3 >= r.total, info);
  });
});
