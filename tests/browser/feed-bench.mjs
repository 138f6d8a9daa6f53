// Upload-feeding comparison (not a test; DESIGN §2.4): plain-JS tunnels fed by a TransformStream
// writer, a push source and a pull source, vs H2WebSocket and the native WebSocket, 16-byte RTT.
// Usage: H2WS_DEVSERVER=target/release/h2ws-devserver node browser/feed-bench.mjs
import { setup } from './harness.mjs';
const env = await setup();
const r = await env.page.evaluate(async () => {
  async function tunnel(feed) {
    const open = await fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-version': '1' } });
    const session = open.headers.get('h2ws-session');
    let write;
    let body;
    if (feed === 'TransformStream writer') {
      const ts = new TransformStream();
      const writer = ts.writable.getWriter();
      write = (c) => writer.write(c);
      body = ts.readable;
    } else if (feed === 'push (enqueue in start)') {
      let controller;
      body = new ReadableStream({ start(c) { controller = c; } });
      write = (c) => controller.enqueue(c);
    } else {
      // pull source: resolves a pending pull when data arrives
      const queue = [];
      let waiting = null;
      body = new ReadableStream({
        pull(c) {
          if (queue.length) { c.enqueue(queue.shift()); return; }
          return new Promise((res) => { waiting = () => { c.enqueue(queue.shift()); res(); }; });
        },
      }, { highWaterMark: 0 });
      write = (c) => { queue.push(c); if (waiting) { const w = waiting; waiting = null; w(); } };
    }
    fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-session': session }, body, duplex: 'half' }).catch(() => {});
    const reader = open.body.getReader();
    const frame = new Uint8Array([0x82, 16, ...new Uint8Array(16)]);
    const rtts = [];
    for (let i = 0; i < 520; i++) {
      const s = performance.now();
      write(frame);
      let got = 0;
      while (got < 18) { const { value } = await reader.read(); got += value.byteLength; }
      if (i >= 20) rtts.push(performance.now() - s);
    }
    reader.cancel();
    rtts.sort((a, b) => a - b);
    return { p50: rtts[250].toFixed(2), p90: rtts[450].toFixed(2), p99: rtts[495].toFixed(2) };
  }
  async function socket(make) {
    const ws = make();
    ws.binaryType = 'arraybuffer';
    await t.once(ws, 'open');
    const rtts = [];
    for (let i = 0; i < 520; i++) {
      const s = performance.now();
      ws.send(new Uint8Array(16));
      await t.once(ws, 'message');
      if (i >= 20) rtts.push(performance.now() - s);
    }
    ws.close();
    rtts.sort((a, b) => a - b);
    return { p50: rtts[250].toFixed(2), p90: rtts[450].toFixed(2), p99: rtts[495].toFixed(2) };
  }
  const out = {};
  for (let round = 0; round < 2; round++) {
    for (const feed of ['TransformStream writer', 'push (enqueue in start)', 'pull (HWM 0)']) out[`plain JS, ${feed} #${round}`] = await tunnel(feed);
    out[`H2WebSocket stream #${round}`] = await socket(() => new H2WebSocket('/ws/echo', [], { transport: 'stream' }));
    out[`native WebSocket #${round}`] = await socket(() => new WebSocket('/ws/echo'));
  }
  return out;
});
console.table(r);
await env.teardown();
