// permessage-deflate cost (not a test): 16 × 256 KiB echo time and small-message RTT with the
// current wasm/pkg build (build it with and without H2WS_DEFLATE=1 to compare).
// Usage: H2WS_DEVSERVER=target/release/h2ws-devserver node browser/deflate-bench.mjs
import { setup } from './harness.mjs';
const env = await setup();
const r = await env.page.evaluate(async () => {
  const out = {};
  const json = (n) => new TextEncoder().encode(JSON.stringify(Array.from({ length: n / 30 }, (_, i) => ({ id: i, name: 'user' + (i % 97), ok: i % 3 === 0 }))).slice(0, n));
  for (const [name, make] of [['random 256 KiB', (n) => t.pattern(n, 5)], ['JSON 256 KiB', json]]) {
    const ws = new H2WebSocket('/ws/echo');
    ws.binaryType = 'arraybuffer';
    await t.once(ws, 'open');
    const msg = make(256 * 1024);
    const s0 = await t.stats();
    const got = t.messages(ws, 16, 60000);
    const t0 = performance.now();
    for (let i = 0; i < 16; i++) ws.send(msg);
    await got;
    out[name] = { echo4MiBms: Math.round(performance.now() - t0), ext: ws.extensions };
    const rtts = [];
    for (let i = 0; i < 300; i++) { const s = performance.now(); ws.send('{"type":"ping","seq":' + i + '}'); await t.once(ws, 'message'); rtts.push(performance.now() - s); }
    rtts.sort((a, b) => a - b);
    out[name].smallRttP50 = rtts[150].toFixed(2);
    ws.close();
    await t.once(ws, 'close');
  }
  return out;
});
console.table(r);
await env.teardown();
