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
  // The timer is cleared once `p` settles: thousands of pending ones would tax every timer
  // operation of the page during the RTT loop.
  const withTimeout = (p, ms, what) => {
    let timer;
    const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  };
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


/**
 * The fetch floor (issues 12, 16, 18): the same RTT measurement through a minimal client of the
 * `stream` or `post` wire written straight on fetch() — the open (PUT, the token), then one
 * streaming upstream POST fed by a TransformStream writer (`stream`) or one batch request per
 * message whose answer may carry the echo (`post`), the downstream read with a bare reader and
 * frames parsed by hand (no library, no wasm, no events) — against the same server. What the
 * engine's fetch path and the server cost on their own; H2WebSocket minus this is the library.
 */
export async function floorBench({ counts, transport = 'stream', replies: askReplies = true }) {
  const open = await fetch('/ws/echo', { method: 'PUT', headers: { 'h2ws-version': '1' } });
  if (open.status !== 200) throw new Error(`floor: open answered ${open.status}`);
  const token = open.headers.get('h2ws-session');
  const reader = open.body.getReader();
  let writer;
  let upstream = Promise.resolve();
  if (transport === 'stream') {
    const { readable, writable } = new TransformStream();
    writer = writable.getWriter();
    upstream = fetch('/ws/echo', {
      method: 'POST', headers: { 'h2ws-session': token }, body: readable, duplex: 'half',
    }).catch(() => {});
  } else {
    // `post`: one numbered batch request per message; with `replies` (as the library asks in
    // engines that stream request bodies) `h2ws-reply: 1`: the echo may come in its answer,
    // codec `reply`, and the downstream then carries a marker Pong, skipped below.
    let seq = 0;
    const pending = new Set();
    writer = {
      write(body) {
        const p = fetch('/ws/echo', {
          method: 'PUT',
          headers: { 'h2ws-session': token, 'h2ws-seq': String(seq++), ...(askReplies ? { 'h2ws-reply': '1' } : {}) },
          body,
        }).then(async (r) => {
          const bytes = new Uint8Array(await r.arrayBuffer());
          if (r.headers.get('h2ws-at') !== null && bytes.length >= 2 && (bytes[0] & 0x0f) < 8) {
            replies.push(bytes[1] & 0x7f);
            wake?.();
          }
        }).catch(() => {});
        pending.add(p);
        p.then(() => pending.delete(p));
      },
      close() { return Promise.all(pending); },
    };
  }
  // Echo lengths that came in batch answers, and the wait for one.
  const replies = [];
  let wake;
  let buf = new Uint8Array(0);
  const more = async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error('floor: downstream ended');
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf);
    joined.set(value, buf.length);
    buf = joined;
  };
  // The next data frame's payload length (server frames are unmasked, ≤ 125 bytes here);
  // control frames (the open preamble, Pings) are skipped.
  const nextData = async () => {
    if (transport !== 'stream') {
      // An echo in a batch's answer, or on the downstream (read in the background).
      for (;;) {
        if (replies.length) return replies.shift();
        if (downData.length) return downData.shift();
        await new Promise((r) => { wake = r; });
      }
    }
    return nextDownData();
  };
  const nextDownData = async () => {
    for (;;) {
      while (buf.length < 2) await more();
      const len = buf[1] & 0x7f;
      if (len > 125) throw new Error('floor: unexpected frame length');
      while (buf.length < 2 + len) await more();
      const opcode = buf[0] & 0x0f;
      buf = buf.subarray(2 + len);
      if (opcode < 8) return len;
    }
  };
  const downData = [];
  if (transport !== 'stream') {
    (async () => {
      for (;;) {
        downData.push(await nextDownData());
        wake?.();
      }
    })().catch(() => {});
  }
  const frame = new Uint8Array(18);
  frame[0] = 0x82; // FIN + binary, unmasked (stream framing)
  frame[1] = 16;
  frame.fill(7, 2);
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
  const roundTrip = async () => {
    const t0 = performance.now();
    await writer.write(frame);
    const len = await nextData();
    if (len !== 16) throw new Error(`floor: echo of ${len} bytes`);
    return performance.now() - t0;
  };
  for (let i = 0; i < 20; i++) await roundTrip();
  const samples = [];
  for (let i = 0; i < counts.rtt; i++) samples.push(await roundTrip());
  samples.sort((a, b) => a - b);
  // A Close (1000) ends it cleanly; then both directions end.
  await writer.write(new Uint8Array([0x88, 0x02, 0x03, 0xe8]));
  await writer.close().catch(() => {});
  await reader.cancel().catch(() => {});
  await upstream;
  return {
    rtt: { p50: pct(samples, 0.5), p99: pct(samples, 0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length, n: samples.length },
  };
}
