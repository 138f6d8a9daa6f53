// Where the page's time goes per round trip (issues 16, 18): H2WebSocket against the fetch floor
// (tests/browser/www/bench.js: the same wire through a minimal fetch() client, no library), in
// Chromium over HTTP/3 (no 1 ms hold of small response data), under a CDP CPU profile of N
// sequential 16 B echoes each. Prints the busy (non-idle) time per round trip of both and the
// functions with the most self time.
//
//   H2WS_KEEP_NAMES=1 bash wasm/build.sh   # wasm function names in the profile
//   node tests/bench/page-profile.mjs [stream|post] [N]
//
// Env: H2WS_DEVSERVER, H2WS_PKG (as tests/bench/browser.mjs). playwright-core keeps DevTools'
// Network domain on, which slows every fetch() itself: compare busy times per round trip between
// two builds in the same conditions; RTTs are browser.mjs's to measure.
import { chromiumQuicArgs, launchEngine, startDevserver } from '../browser/harness.mjs';

const transport = process.argv[2] ?? 'stream';
const count = Number(process.argv[3] ?? 3000);
const TOP = 25;

/** Self time per function (microseconds) and the busy total of a CDP profile. */
function summarize(profile) {
  const timeOf = new Map();
  profile.samples.forEach((id, i) => timeOf.set(id, (timeOf.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const self = new Map();
  let busy = 0;
  for (const node of profile.nodes) {
    const t = timeOf.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber}`.trim();
    if (functionName !== '(idle)') busy += t;
    self.set(name, (self.get(name) ?? 0) + t);
  }
  return { busy, top: [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, TOP) };
}

const server = await startDevserver([], { h3: true });
const browser = await launchEngine('chromium', { quic: true, args: chromiumQuicArgs(server) });
try {
  const page = (await browser.newPage()).raw;
  await page.goto(`${server.origin}/profile.html`);
  await page.waitForFunction(() => window.ready === true);
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol);
  if (protocol !== 'h3') throw new Error(`the page came over ${protocol}, not h3`);
  // Warm-up: both paths compiled and the connection busy before the measured runs.
  await page.evaluate(([t]) => window.library(t, 300), [transport]);
  await page.evaluate(([t]) => window.floor(t, 300), [transport]);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
  for (const [label, fn] of [['H2WebSocket', 'library'], ['fetch floor', 'floor']]) {
    await cdp.send('Profiler.start');
    const rtt = await page.evaluate(([f, t, n]) => window[f](t, n), [fn, transport, count]);
    const { profile } = await cdp.send('Profiler.stop');
    const { busy, top } = summarize(profile);
    console.log(`\n== ${label} (${transport}, ${count} round trips over h3): RTT p50 ${rtt.p50.toFixed(2)} ms, ` +
      `mean ${rtt.mean.toFixed(2)} ms; page busy ${(busy / count).toFixed(1)} us per round trip`);
    for (const [name, t] of top) console.log(`${(t / count).toFixed(2).padStart(9)} us  ${name}`);
  }
} finally {
  await browser.close().catch(() => {});
  await server.stop();
}
