// Boot: learn how this page is connected, load the h2ws package, then start the three views.

import { $ } from './dom.js';
import { loadPackage } from './pkg.js';
import {
  pageProtocol, protoName, resourceProtocols, browserStreamsRequests, setFact, probeServer,
  certificateUntrusted, showIssue,
} from './diagnostics.js';
import { initChat } from './chat.js';
import { initEcho } from './echo.js';
import { initBackpressure } from './backpressure.js';
import { initNetwork } from './network.js';

/** The server fact: open sockets by transport, from /.h2ws/stats. */
function showServer(probe) {
  if (!probe.ok) {
    setFact('server', 'not answering', 'bad', `GET /.h2ws/stats: ${probe.error.message}`);
    return;
  }
  const open = Object.entries(probe.stats.open ?? {}).filter(([, n]) => n > 0);
  const total = probe.stats.open_total ?? open.reduce((a, [, n]) => a + n, 0);
  setFact('server', `${total} open socket${total === 1 ? '' : 's'}${open.length ? `: ${open.map(([t, n]) => `${n} ${t}`).join(', ')}` : ''}`, 'ok',
    `GET /.h2ws/stats (every 3 s): ${JSON.stringify(probe.stats)}`);
}

async function boot() {
  const proto = pageProtocol();
  const streams = browserStreamsRequests();
  setFact('page', protoName(proto), proto === 'h2' ? 'ok' : proto ? 'warn' : 'pending',
    'performance.getEntriesByType("navigation")[0].nextHopProtocol');
  if (proto && proto !== 'h2' && proto !== 'h3') showIssue('http1', { proto });

  const [pkg, probe, untrusted] = await Promise.all([loadPackage(), probeServer(), certificateUntrusted()]);

  const canStream = streams && proto === 'h2';
  setFact('streaming',
    !streams ? 'not in this browser' : canStream ? 'yes (HTTP/2)' : `no (${protoName(proto)})`,
    canStream ? 'ok' : 'warn',
    'fetch() with a ReadableStream body and duplex: "half" — needed by the `stream` transport');
  if (!streams) showIssue('no-request-streaming');

  showServer(probe);
  setInterval(async () => {
    if (document.visibilityState === 'visible') showServer(await probeServer());
  }, 3000);
  if (!probe.ok) showIssue('unreachable', { error: probe.error.message });
  if (untrusted) showIssue('cert-untrusted');

  // `chromium`: only Chromium-based browsers have navigator.userAgentData (used for the one
  // Chromium-specific note, its ≈1 ms HTTP/2 read batching).
  const chromium = Boolean(navigator.userAgentData?.brands?.some((b) => /Chromium/.test(b.brand)));
  const ctx = { pkg: null, proto, streams, canStream, chromium, defaultTransport: canStream ? 'stream' : 'post' };
  if (pkg.ok) {
    ctx.pkg = pkg.mod;
    const seen = resourceProtocols('/pkg/');
    const protos = [...seen.keys()].map(protoName).join(', ') || protoName(proto);
    setFact('pkg', `${pkg.name ?? 'h2ws'} ${pkg.version ?? ''} · ${protos}`, 'ok',
      `${[...seen].map(([p, n]) => `${n} × ${protoName(p)}`).join(', ')} (resource timing of /pkg/ fetches)`);
    $('#pkg-entry').textContent = `/pkg/${pkg.entry}`;
  } else {
    const detail =
      pkg.stage === 'manifest'
        ? `Fetching /pkg/package.json failed: ${pkg.error.message}`
        : `Importing /pkg/${pkg.entry ?? '?'} failed: ${pkg.error.message}`;
    setFact('pkg', 'not loaded', 'bad', detail);
    $('#pkg-entry').textContent = 'not loaded';
    showIssue('pkg-missing', { detail });
    console.error('h2ws package:', pkg.error);
  }

  initChat(ctx);
  initEcho(ctx);
  initBackpressure(ctx);
  initNetwork();
  window.h2wsDemo = ctx;
  document.documentElement.dataset.ready = pkg.ok ? 'pkg' : 'no-pkg';
}

boot().catch((e) => {
  console.error(e);
  document.documentElement.dataset.ready = 'error';
  const box = document.getElementById('issues');
  box.textContent = `The demo failed to start: ${e.message}`;
  box.classList.add('fatal');
});
