// A WebKitGTK 2.50 (libsoup) fact the resume tests and docs rely on, checked against a plain
// Node HTTP/2 server (no h2ws, no wasm, bare fetch): every cut of a connection that has a
// response still in progress keeps one of libsoup's 6 connections per host for good, even
// though the page aborts that fetch; after 6 such cuts no request of the page reaches the
// origin any more. A response that ended (here: aborted before the cut) leaves nothing held.
// Every fetch-streaming client is hit (an h2ws downstream is always in progress), so in WebKit
// the resume tests cut 4 times per browser (resume.test.mjs). When this test fails, WebKit
// fixed it: cut 10 times there too.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { startDevserver, launchBrowser, ENGINE, HTTP3 } from './harness.mjs';
import { startRelay } from './relay.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A page request that does not finish in this time counts as stalled. */
const STALL_MS = 5000;

/** GET /stream: 200, then 16 bytes every 100 ms, never ending. Anything else: a tiny page. */
function startPlainServer(pem) {
  const server = http2.createSecureServer({ key: pem, cert: pem });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (headers[':path'].startsWith('/stream')) {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
      stream.write(Buffer.alloc(16));
      const timer = setInterval(() => (stream.closed ? clearInterval(timer) : stream.write(Buffer.alloc(16))), 100);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/html', 'cache-control': 'no-store' });
    stream.end('<!doctype html><title>plain</title>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const SKIP = (ENGINE !== 'webkit' && 'a WebKitGTK fact') || (HTTP3 && 'the relay carries TCP only');

describe('WebKitGTK: a cut connection with a response in progress', { skip: SKIP }, () => {
  let devserver;
  let server;

  before(async () => {
    // Only for its certificate, which the test browser accepts.
    devserver = await startDevserver([]);
    server = await startPlainServer(readFileSync(devserver.certPem));
  });

  after(async () => {
    server?.close();
    await devserver?.stop();
  });

  /** Rounds of (fetch /stream, read a chunk, a probe fetch), a cut between rounds; the round
   * whose probe stalled, or null. `endFirst`: the page aborts /stream before the cut. */
  async function cutRounds(rounds, endFirst) {
    const relay = await startRelay(server.address().port);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(`${relay.origin}/`);
      for (let round = 0; round < rounds; round++) {
        const done = page.evaluate(async (endFirst) => {
          window.ctl = new AbortController();
          const r = await fetch(`/stream?${Math.random()}`, { signal: window.ctl.signal });
          const reader = r.body.getReader();
          await reader.read();
          if (endFirst) window.ctl.abort();
          else (async () => { try { while (!(await reader.read()).done); } catch { /* aborted */ } })();
          const probe = await fetch(`/probe?${Math.random()}`);
          await probe.text();
          return probe.status;
        }, endFirst);
        const status = await Promise.race([done, sleep(STALL_MS).then(() => 'stalled')]);
        if (status === 'stalled') return round;
        assert.equal(status, 200);
        await sleep(50);
        assert.ok(relay.cut() >= 1, 'a live connection to cut');
        await page.evaluate(() => window.ctl.abort());
        await sleep(100);
      }
      return null;
    } finally {
      await browser.close().catch(() => {});
      relay.close();
    }
  }

  it('keeps a connection per such cut: after 6, no request of the page gets out', { timeout: 60000 }, async () => {
    assert.equal(await cutRounds(8, false), 6);
  });

  it('a response that ended before the cut leaves nothing held (8 cuts)', { timeout: 60000 }, async () => {
    assert.equal(await cutRounds(9, true), null);
  });
});
