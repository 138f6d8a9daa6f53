// The browser benchmark's in-page part (tests/bench/browser.mjs): every figure for one
// implementation, run by bench.html from its query string, which puts the result into
// document.title as `DONE <base64 json>` (or `FAILED <message>`), so a runner can read it without any
// automation attached to the page during the run (Chromium's DevTools Network domain, always on
// under Playwright, doubled fetch() latency).
import { H2WebSocket } from 'h2ws';

/** The smallest step of performance.now() in this page (engines coarsen it differently). */
export function timerStep() {
  let best = Infinity;
  let last = performance.now();
  for (const end = last + 20; last < end;) {
    const now = performance.now();
    if (now > last) best = Math.min(best, now - last);
    last = now;
  }
  return best;
}

export async function pageBench({ imp, counts }) {
  const url = '/ws/echo';
  const make = () => (imp === 'websocket'
    ? new WebSocket(`wss://${location.host}${url}`)
    : new H2WebSocket(url, [], { transport: imp }));
  const withTimeout = (p, ms, what) => Promise.race([
    p, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms)),
  ]);
  const once = (ws, type) => withTimeout(new Promise((resolve, reject) => {
    ws.addEventListener(type, resolve, { once: true });
    if (type !== 'close') ws.addEventListener('close', (e) => reject(new Error(`closed ${e.code} before ${type}`)), { once: true });
  }), 15000, type);
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
  const result = {};

  // Open latency on the warm connection (the page and one earlier socket already used it).
  {
    const warm = make();
    await once(warm, 'open');
    warm.close();
    await once(warm, 'close');
    const times = [];
    for (let i = 0; i < counts.opens; i++) {
      const t0 = performance.now();
      const ws = make();
      await once(ws, 'open');
      times.push(performance.now() - t0);
      ws.close();
      await once(ws, 'close');
    }
    times.sort((a, b) => a - b);
    result.open = { p50: pct(times, 0.5), p90: pct(times, 0.9), n: times.length };
  }

  const ws = make();
  ws.binaryType = 'arraybuffer';
  await once(ws, 'open');
  let waiter = null;
  let received = 0;
  let wrongSize = 0;
  let expectSize = 16;
  ws.onmessage = (e) => {
    received++;
    if (e.data.byteLength !== expectSize) wrongSize++;
    if (waiter) waiter();
  };
  const until = (n, ms) => withTimeout(new Promise((resolve) => {
    if (received >= n) return resolve();
    waiter = () => { if (received >= n) { waiter = null; resolve(); } };
  }), ms, `${n} echoes (got ${received})`);

  // RTT: one 16 B message at a time.
  {
    const msg = new Uint8Array(16).fill(7);
    for (let i = 0; i < 20; i++) { ws.send(msg); await until(received + 1, 10000); }
    // Which transport the server counts this socket under (the only one open now; a fetch
    // socket counts as `post` once its first batch arrived).
    const stats = await fetch('/.h2ws/stats').then((r) => r.json());
    result.via = Object.entries(stats.open).filter(([, v]) => v > 0).map(([k]) => k).join('+') || 'nothing open';
    const samples = [];
    for (let i = 0; i < counts.rtt; i++) {
      const target = received + 1;
      const t0 = performance.now();
      ws.send(msg);
      await until(target, 10000);
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    result.rtt = { p50: pct(samples, 0.5), p99: pct(samples, 0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length, n: samples.length };
  }

  // Bulk: every 1 KiB message sent at once, then wait for all echoes.
  {
    expectSize = 1024;
    const msg = new Uint8Array(1024).fill(9);
    const target = received + counts.bulk;
    const t0 = performance.now();
    for (let i = 0; i < counts.bulk; i++) ws.send(msg);
    await until(target, 120000);
    const ms = performance.now() - t0;
    result.bulk = { msgsPerSec: counts.bulk / (ms / 1000), ms, n: counts.bulk };
  }
  result.wrongSize = wrongSize;
  ws.close(1000);
  await once(ws, 'close');
  return result;
}

