// H2WebSocket behaves as the browser's WebSocket: constructor rules, constants, states,
// exceptions, events, on* attributes, bufferedAmount, binaryType, failure, per-origin cap, options.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setupForSuite, ENGINE, TRANSPORTS } from './harness.mjs';

describe('H2WebSocket API', () => {
  let env, page; // set before the tests run
  setupForSuite((e) => ([env, page] = [e, e.page]));

  it('imports from the bare specifier `h2ws` with no init call', async () => {
    const r = await page.evaluate(() => ({
      ws: typeof H2WebSocket,
      stream: typeof H2WebSocketStream,
      isEventTarget: (() => {
        const ws = new H2WebSocket('/ws/echo');
        ws.close();
        return ws instanceof EventTarget;
      })(),
    }));
    assert.deepEqual(r, { ws: 'function', stream: 'function', isEventTarget: true });
  });

  it('has the four state constants on the class and on instances, like WebSocket', async () => {
    const r = await page.evaluate(() => {
      const names = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
      const ws = new H2WebSocket('/ws/echo');
      ws.close();
      return {
        cls: names.map((n) => H2WebSocket[n]),
        inst: names.map((n) => ws[n]),
        native: names.map((n) => WebSocket[n]),
        proto: names.every((n) => Object.prototype.hasOwnProperty.call(H2WebSocket.prototype, n)),
      };
    });
    assert.deepEqual(r.cls, [0, 1, 2, 3]);
    assert.deepEqual(r.inst, [0, 1, 2, 3]);
    assert.deepEqual(r.cls, r.native);
    assert.equal(r.proto, true);
  });

  it('resolves and validates URLs exactly as WebSocket does', async () => {
    const r = await page.evaluate(() => {
      const port = location.port;
      const inputs = [
        '/ws/echo', 'ws/echo', '?x=1', `ws://127.0.0.1:${port}/a`, `wss://127.0.0.1:${port}/a?b=c`,
        `http://127.0.0.1:${port}/p`, `https://127.0.0.1:${port}/p`, `HTTPS://127.0.0.1:${port}/Up`,
        `wss://127.0.0.1:${port}/x#frag`, `wss://127.0.0.1:${port}/x#`, 'ftp://127.0.0.1/x',
        'javascript:alert(1)', 'http://[::1', 'data:text/plain,hi', '',
      ];
      const run = (Ctor, input) => {
        try {
          const ws = new Ctor(input);
          const url = ws.url;
          ws.close();
          return { url };
        } catch (e) {
          return { error: e.name, isDOMException: e instanceof DOMException };
        }
      };
      return inputs.map((input) => ({ input, h2: run(H2WebSocket, input), native: run(WebSocket, input) }));
    });
    for (const { input, h2, native } of r) {
      if (ENGINE === 'firefox' && input === '' && native.error === 'SyntaxError') {
        // Firefox's own WebSocket refuses the empty URL; the WHATWG URL rules resolve it to the
        // document's URL (as Chromium and WebKit do), and H2WebSocket follows the standard.
        assert.match(h2.url ?? '', /^wss:\/\/127\.0\.0\.1:\d+\/index\.html$/, `input "": ${JSON.stringify(h2)}`);
        continue;
      }
      assert.deepEqual(h2, native, `input ${JSON.stringify(input)}`);
    }
    // Relative URLs resolve against the document base; http(s) maps to ws(s).
    assert.match(r[0].h2.url, /^wss:\/\/127\.0\.0\.1:\d+\/ws\/echo$/);
    assert.match(r[5].h2.url, /^ws:\/\//);
    assert.equal(r[8].h2.error, 'SyntaxError');
    assert.equal(r[9].h2.error, 'SyntaxError');
  });

  it('validates subprotocol lists exactly as WebSocket does', async () => {
    const r = await page.evaluate(() => {
      const inputs = [[], 'chat', ['chat', 'superchat'], ['a', 'a'], ['a', 'A'], [''], ['a b'], ['a,b'],
        ['ch\u00e9'], ['x{y}'], null, ['chat', 'chat2', 'chat']];
      const run = (Ctor, p) => {
        try {
          const ws = new Ctor('/ws/echo', p);
          ws.close();
          return 'ok';
        } catch (e) {
          return e.name;
        }
      };
      return inputs.map((p) => ({ p: JSON.stringify(p), h2: run(H2WebSocket, p), native: run(WebSocket, p) }));
    });
    for (const { p, h2, native } of r) assert.equal(h2, native, `protocols ${p}`);
    assert.ok(r.filter((x) => x.h2 === 'SyntaxError').length >= 6);
  });

  it('throws InvalidStateError from send() while CONNECTING, then walks readyState 0→1→2→3', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo');
      const states = [ws.readyState];
      let error;
      try { ws.send('x'); } catch (e) { error = { name: e.name, dom: e instanceof DOMException }; }
      await t.once(ws, 'open');
      states.push(ws.readyState);
      ws.close();
      states.push(ws.readyState);
      const close = await t.once(ws, 'close');
      states.push(ws.readyState);
      return { states, error, wasClean: close.wasClean };
    });
    assert.deepEqual(r.error, { name: 'InvalidStateError', dom: true });
    assert.deepEqual(r.states, [0, 1, 2, 3]);
    assert.equal(r.wasClean, true);
  });

  it('applies the close() argument rules (InvalidAccessError, SyntaxError) like WebSocket', async () => {
    const r = await page.evaluate(() => {
      const cases = [[999], [1001], [2999], [5000], [1000.4], [3000], [4999], [1000, 'x'.repeat(123)],
        [1000, 'x'.repeat(124)], [4000, '\u20ac'.repeat(41)], [4000, '\u20ac'.repeat(42)], [1000, 'ok']];
      const run = (Ctor, args) => {
        const ws = new Ctor('/ws/echo');
        try {
          ws.close(...args);
          return 'ok';
        } catch (e) {
          ws.close();
          return e.name;
        }
      };
      return cases.map((args) => ({ args: JSON.stringify(args).slice(0, 30), h2: run(H2WebSocket, args), native: run(WebSocket, args) }));
    });
    for (const { args, h2, native } of r) assert.equal(h2, native, `close(${args})`);
    assert.deepEqual(r.map((x) => x.h2), ['InvalidAccessError', 'InvalidAccessError', 'InvalidAccessError',
      'InvalidAccessError', 'ok', 'ok', 'ok', 'ok', 'SyntaxError', 'ok', 'SyntaxError', 'ok']);
  });

  it('dispatches real Event / MessageEvent(data, origin) / CloseEvent(code, reason, wasClean)', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo');
      const got = {};
      ws.addEventListener('open', (e) => { got.open = e.constructor === Event && e.isTrusted === false; });
      await t.once(ws, 'open');
      ws.send('hello');
      const m = await t.once(ws, 'message');
      got.message = { ctor: m.constructor.name, data: m.data, origin: m.origin, target: m.target === ws };
      ws.close(4001, 'done');
      const c = await t.once(ws, 'close');
      got.close = { ctor: c.constructor.name, code: c.code, reason: c.reason, wasClean: c.wasClean };
      return { got, expectedOrigin: `wss://${location.host}` };
    });
    assert.equal(r.got.open, true);
    assert.deepEqual(r.got.message, { ctor: 'MessageEvent', data: 'hello', origin: r.expectedOrigin, target: true });
    // The echo app echoes the close code (its Close carries no reason; see the differential test).
    assert.deepEqual(r.got.close, { ctor: 'CloseEvent', code: 4001, reason: '', wasClean: true });
  });

  it('supports the on* attributes alongside addEventListener', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo');
      const calls = [];
      const onmessage = (e) => calls.push(`on:${e.data}`);
      ws.onopen = () => calls.push('open');
      ws.onmessage = onmessage;
      ws.addEventListener('message', (e) => calls.push(`listener:${e.data}`));
      const same = ws.onmessage === onmessage && ws.onerror === null;
      await t.once(ws, 'open');
      ws.send('1');
      await t.once(ws, 'message');
      ws.onmessage = null;
      ws.send('2');
      await t.once(ws, 'message');
      let closeCode;
      ws.onclose = (e) => { closeCode = e.code; };
      ws.close(1000);
      await t.once(ws, 'close');
      return { calls, same, closeCode, nullAfter: ws.onmessage };
    });
    assert.equal(r.same, true);
    assert.deepEqual(r.calls, ['open', 'on:1', 'listener:1', 'listener:2']);
    assert.equal(r.closeCode, 1000);
    assert.equal(r.nullAfter, null);
  });

  it('honours binaryType: blob (default), arraybuffer, invalid values ignored', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo');
      const initial = ws.binaryType;
      ws.binaryType = 'nonsense';
      const afterInvalid = ws.binaryType;
      await t.once(ws, 'open');
      ws.send(new Uint8Array([1, 2, 3]));
      const blob = (await t.once(ws, 'message')).data;
      const blobBytes = [...new Uint8Array(await blob.arrayBuffer())];
      ws.binaryType = 'arraybuffer';
      ws.send(new Uint16Array([0x0102, 0x0304]).subarray(1));
      const ab = (await t.once(ws, 'message')).data;
      ws.close();
      return { initial, afterInvalid, blob: blob instanceof Blob, blobBytes, ab: ab instanceof ArrayBuffer, abLen: ab.byteLength, abBytes: [...new Uint8Array(ab)] };
    });
    assert.equal(r.initial, 'blob');
    assert.equal(r.afterInvalid, 'blob');
    assert.equal(r.blob, true);
    assert.deepEqual(r.blobBytes, [1, 2, 3]);
    assert.equal(r.ab, true);
    assert.deepEqual(r.abBytes, [0x04, 0x03]);
  });

  it('sends Blob, ArrayBuffer, views and strings in order', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo');
      ws.binaryType = 'arraybuffer';
      await t.once(ws, 'open');
      const got = t.messages(ws, 5);
      ws.send(new Blob([new Uint8Array(200000).fill(7)]));
      ws.send('after-blob');
      ws.send(new Uint8Array([9]).buffer);
      ws.send(new DataView(new Uint8Array([5, 6]).buffer));
      ws.send(42);
      const data = await got;
      ws.close();
      return data.map((d) => (typeof d === 'string' ? d : `bin${d.byteLength}`));
    });
    assert.deepEqual(r, ['bin200000', 'after-blob', 'bin1', 'bin2', '42']);
  });

  it('accounts bufferedAmount, counting sends after close() without sending them', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/echo');
      await t.once(ws, 'open');
      ws.send('abc');
      ws.send('\u20ac'); // 3 UTF-8 bytes
      ws.send(new Uint8Array(10));
      const right = ws.bufferedAmount;
      await t.until(() => ws.bufferedAmount === 0);
      const seen = [];
      ws.addEventListener('message', (e) => seen.push(e.data));
      ws.close();
      ws.send('12345');
      ws.send(new Uint8Array(7));
      const afterClose = ws.bufferedAmount;
      const c = await t.once(ws, 'close');
      ws.send('x');
      return { right, afterClose, atEnd: ws.bufferedAmount, seen: seen.length, clean: c.wasClean };
    });
    assert.equal(r.right, 16);
    assert.equal(r.afterClose, 12);
    assert.equal(r.atEnd, 13);
    assert.equal(r.clean, true);
  });

  it('fires error then close 1006 when the handshake is refused (404)', async () => {
    const r = await page.evaluate(async () => {
      const ws = new H2WebSocket('/ws/no-such-app');
      const log = t.trace(ws);
      await t.once(ws, 'close');
      return log;
    });
    assert.deepEqual(r.map((e) => e.type), ['error', 'close']);
    assert.equal(r[0].readyState, 3);
    assert.deepEqual({ code: r[1].code, wasClean: r[1].wasClean }, { code: 1006, wasClean: false });
  });

  it('close() while CONNECTING fails the socket like WebSocket (error, close 1006)', async () => {
    const r = await page.evaluate(async () => {
      const run = async (Ctor) => {
        const ws = new Ctor('/ws/echo');
        const log = t.trace(ws);
        ws.close();
        const state = ws.readyState;
        await t.once(ws, 'close');
        return { state, log: log.map((e) => [e.type, e.code, e.wasClean].filter((x) => x !== undefined).join(' ')) };
      };
      return { h2: await run(H2WebSocket), native: await run(WebSocket) };
    });
    assert.deepEqual(r.h2, r.native);
    assert.deepEqual(r.h2.log, ['error', 'close 1006 false']);
  });

  it('sends options.headers with the open and upstream requests', async () => {
    for (const transport of TRANSPORTS) {
      // Chromium: what goes on the wire (playwright's request events). Elsewhere: every Request
      // the library hands to the page's fetch() (the engine sends a Request's own headers).
      const wire = [];
      const onRequest = async (req) => {
        if (req.url().includes('/ws/echo?hdr')) wire.push({ method: req.method(), headers: await req.allHeaders() });
      };
      if (ENGINE === 'chromium') page.raw.on('request', onRequest);
      const r = await page.evaluate(async (transport) => {
        const seen = (await t.requestsDuring(async () => {
          const ws = new H2WebSocket('/ws/echo?hdr', [], { transport, headers: { Authorization: 'Bearer t0ken', 'X-Extra': 'yes' } });
          await t.once(ws, 'open');
          ws.send('x');
          await t.once(ws, 'message');
          ws.close();
          await t.once(ws, 'close');
        })).filter((r) => r.url.includes('/ws/echo?hdr'));
        let typeError;
        try { new H2WebSocket('/ws/echo', [], { headers: { 'bad header': 'x' } }); } catch (e) { typeError = e.name; }
        let badTransport;
        try { new H2WebSocket('/ws/echo', [], { transport: 'carrier-pigeon' }); } catch (e) { badTransport = e.name; }
        return { typeError, badTransport, seen };
      }, transport);
      let seen = r.seen;
      if (ENGINE === 'chromium') {
        // A streaming upload is reported to playwright only once its body ended: wait for it.
        for (let i = 0; i < 50 && !wire.some((s) => s.headers['h2ws-session']); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        page.raw.off('request', onRequest);
        seen = wire;
      }
      assert.equal(r.typeError, 'TypeError');
      assert.equal(r.badTransport, 'TypeError');
      const open = seen.find((s) => s.headers['h2ws-version'] === '1');
      const upstream = seen.find((s) => s.headers['h2ws-session']);
      assert.ok(open, `open request seen (${transport}): ${JSON.stringify(seen)}`);
      assert.ok(upstream, `upstream request seen (${transport}): ${JSON.stringify(seen)}`);
      // PUT for the open, batches and acks (WebKitGTK opens a connection per POST); a streamed
      // upstream is a POST.
      assert.equal(open.method, 'PUT');
      assert.equal(upstream.method, transport === 'stream' ? 'POST' : 'PUT');
      for (const s of [open, upstream]) {
        assert.equal(s.headers.authorization, 'Bearer t0ken');
        assert.equal(s.headers['x-extra'], 'yes');
      }
      if (transport !== 'stream') assert.ok(seen.some((s) => s.headers['h2ws-seq'] === '0'), `post batches carry h2ws-seq (${transport})`);
    }
  });

  for (const kind of ['Worker', 'SharedWorker']) {
    it(`works in a module ${kind} (no document: URLs resolve against the worker location)`, async () => {
      const r = await page.evaluate((kind) => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${kind} timeout`)), 15000);
        // A fresh name per run: a SharedWorker with the same URL and name would be reused.
        const worker = kind === 'Worker'
          ? new Worker('/worker.js', { type: 'module' })
          : new SharedWorker('/worker.js', { type: 'module', name: `h2ws-${Math.random()}` });
        const port = kind === 'Worker' ? worker : worker.port;
        port.onmessage = (e) => { clearTimeout(timer); worker.terminate?.(); port.close?.(); resolve({ ...e.data, origin: location.host }); };
        worker.onerror = (e) => { clearTimeout(timer); reject(new Error(`${kind} error: ${e.message}`)); };
      }), kind);
      assert.equal(r.error, undefined);
      assert.equal(r.kind, `${kind === 'Worker' ? 'Dedicated' : 'Shared'}WorkerGlobalScope`);
      assert.equal(r.url, `wss://${r.origin}/ws/echo`);
      assert.deepEqual(r.log, ['from worker', 5]);
      assert.deepEqual([r.code, r.clean, r.stream], [1000, true, 'stream in worker']);
    });
  }

  it('fails sockets past the per-origin cap at once (error, close 1006, console warning)', async () => {
    const r = await page.evaluate(async () => {
      H2WebSocket.maxSocketsPerOrigin = 3;
      try {
        const open = [new H2WebSocket('/ws/echo'), new H2WebSocket('/ws/echo'), new H2WebSocket('/ws/echo')];
        await Promise.all(open.map((ws) => t.once(ws, 'open')));
        const extra = new H2WebSocket('/ws/echo');
        const log = t.trace(extra);
        const started = performance.now();
        await t.once(extra, 'close', 2000);
        const elapsed = performance.now() - started;
        // A slot frees when a socket closes.
        open[0].close();
        await t.once(open[0], 'close');
        const again = new H2WebSocket('/ws/echo');
        await t.once(again, 'open');
        for (const ws of [...open, again]) ws.close();
        return { log: log.map((e) => e.type + (e.code ? ` ${e.code}` : '')), fast: elapsed < 1000 };
      } finally {
        H2WebSocket.maxSocketsPerOrigin = 100;
      }
    });
    assert.deepEqual(r.log, ['error', 'close 1006']);
    assert.equal(r.fast, true);
    const lines = await page.console();
    assert.ok(lines.some((l) => l.startsWith('warning:') && l.includes('too many open sockets')), lines.join('\n'));
  });
});
