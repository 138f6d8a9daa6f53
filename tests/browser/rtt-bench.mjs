// Round-trip benchmark (not a test): Chromium's own WebSocket vs H2WebSocket (stream, post)
// against the devserver's /ws/echo.  Usage: node browser/rtt-bench.mjs [rounds]
import { setup } from './harness.mjs';

const rounds = Number(process.argv[2] ?? 500);
const env = await setup();
try {
  const result = await env.page.evaluate(async (rounds) => {
    const out = {};
    const variants = [
      ['native WebSocket', () => new WebSocket('/ws/echo')],
      ['H2WebSocket stream', () => new H2WebSocket('/ws/echo', [], { transport: 'stream' })],
      ['H2WebSocket post', () => new H2WebSocket('/ws/echo', [], { transport: 'post' })],
    ];
    for (const [name, make] of variants) {
      for (const size of [16, 1024, 65536]) {
        const ws = make();
        ws.binaryType = 'arraybuffer';
        await t.once(ws, 'open');
        const msg = new Uint8Array(size);
        for (let i = 0; i < 20; i++) { ws.send(msg); await t.once(ws, 'message'); } // warm-up
        const rtts = [];
        for (let i = 0; i < rounds; i++) {
          const start = performance.now();
          ws.send(msg);
          await t.once(ws, 'message');
          rtts.push(performance.now() - start);
        }
        rtts.sort((a, b) => a - b);
        const q = (p) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))].toFixed(2);
        out[`${name} ${size} B`] = { p50: q(0.5), p99: q(0.99) };
        ws.close();
        await t.once(ws, 'close');
      }
    }
    return out;
  }, rounds);
  console.table(result);
} finally {
  await env.teardown();
}
