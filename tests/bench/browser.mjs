// Browser benchmark (benchmark 4): H2WebSocket versus each engine's own WebSocket, same page,
// same devserver, same run, in Chromium (`stream` and `post`), Firefox and WebKitGTK (`post`:
// they cannot stream request bodies).
//
//   node tests/bench/browser.mjs --out RESULTS.jsonl [--smoke]
//
// Env: H2WS_DEVSERVER (the release devserver binary), H2WS_PKG (the built npm package directory),
// H2WS_BENCH_ENGINES (default `chromium,firefox,webkit`). Appends one JSON record per figure to
// RESULTS.jsonl (`bench: browser-<engine>`).
//
// Figures: RTT p50/p99 of sequential 16 B binary messages; msgs/s of 1 KiB messages sent all at
// once (pipelined) until every echo is back; time from the constructor to `open` for a new socket
// on the page's warm HTTP/2 connection (median of several).
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchEngine, openPage } from '../browser/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
const outIndex = argv.indexOf('--out');
if (outIndex < 0) throw new Error('usage: browser.mjs --out RESULTS.jsonl [--smoke]');
const out = path.resolve(argv[outIndex + 1]);

const COUNTS = smoke
  ? { rtt: 50, bulk: 200, opens: 3 }
  : { rtt: 1000, bulk: 10000, opens: 30 };
const ENGINE_IMPLS = {
  chromium: ['websocket', 'stream', 'post'],
  firefox: ['websocket', 'post'],
  webkit: ['websocket', 'post'],
};
const engines = (process.env.H2WS_BENCH_ENGINES ?? 'chromium,firefox,webkit').split(',').map((e) => e.trim()).filter(Boolean);

function record(engine, kase, imp, metric, value, note = '') {
  const r = { bench: `browser-${engine}`, case: kase, imp, metric, value, note };
  console.log(`result ${JSON.stringify(r)}`);
  appendFileSync(out, JSON.stringify(r) + '\n');
}

/** The release devserver on 127.0.0.1:0 (HTTPS only); resolves with { origin, stop() }. */
async function startDevserver() {
  const bin = process.env.H2WS_DEVSERVER ?? path.join(root, 'target/release/h2ws-devserver');
  const pkg = process.env.H2WS_PKG ?? path.join(root, 'wasm/pkg');
  const certDir = mkdtempSync(path.join(tmpdir(), 'h2ws-bench-cert-'));
  const args = ['--addr', '127.0.0.1:0', '--no-http', '--www', path.join(root, 'tests/browser/www'), '--pkg', pkg, '--cert-dir', certDir];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  const output = [];
  const origin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devserver silent for 30 s:\n${output.join('')}`)), 30000);
    let buffered = '';
    child.stdout.on('data', (c) => {
      buffered += c.toString();
      const m = buffered.match(/listening (https:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.stderr.on('data', (c) => output.push(c.toString()));
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`devserver exited (${code}):\n${output.join('')}`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    origin,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}

// Runs in the page: every figure for one implementation.
async function pageBench({ imp, counts }) {
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

/** The smallest step of performance.now() in the page (engines coarsen it differently). */
function timerStep() {
  let best = Infinity;
  let last = performance.now();
  for (const end = last + 20; last < end;) {
    const now = performance.now();
    if (now > last) best = Math.min(best, now - last);
    last = now;
  }
  return best;
}

const server = await startDevserver();
try {
  for (const engine of engines) {
    let browser;
    try {
      browser = await launchEngine(engine);
      const page = await openPage(browser, server.origin, '/index.html');
      const step = await page.evaluate(timerStep);
      const resolution = step >= 1 ? `${step.toFixed(1)} ms` : `${Math.round(step * 1000)} us`;
      const version = await page.evaluate(() => navigator.userAgent);
      for (const imp of ENGINE_IMPLS[engine]) {
        const r = await page.evaluate(pageBench, { imp, counts: COUNTS });
        const note = `server saw ${r.via}; timer ${resolution}`;
        if (r.wrongSize) throw new Error(`${engine} ${imp}: ${r.wrongSize} echoes had the wrong size`);
        record(engine, `RTT p50, ${COUNTS.rtt} x 16 B sequential`, imp, 'ms', r.rtt.p50, note);
        record(engine, `RTT p99, ${COUNTS.rtt} x 16 B sequential`, imp, 'ms', r.rtt.p99, note);
        record(engine, `bulk, ${COUNTS.bulk} x 1 KiB pipelined`, imp, 'msgs/s', r.bulk.msgsPerSec, `${note}; ${r.bulk.ms.toFixed(0)} ms`);
        record(engine, `open on a warm connection (median of ${r.open.n})`, imp, 'ms', r.open.p50, `${note}; p90 ${r.open.p90.toFixed(2)} ms`);
        record(engine, `open on a warm connection (p90 of ${r.open.n})`, imp, 'ms', r.open.p90, note);
      }
      console.log(`browser ${engine}: ${version}`);
    } finally {
      await browser?.close().catch(() => {});
    }
  }
} finally {
  await server.stop().catch(() => {});
}
