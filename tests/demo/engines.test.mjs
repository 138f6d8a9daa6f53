// The demo page (www/) in the engine under test (H2WS_ENGINE: chromium, firefox, webkit), driven
// through the harness's engine adapter with in-page DOM steps so it reads the same in every
// engine. demo.test.mjs covers the rest of the demo in Chromium (Playwright-only steps: routing,
// the certificate warning). Screenshots: tests/out/demo-<engine>.png and demo-<engine>-http1.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ENGINE, STREAMS_REQUESTS, root, startDevserver, launchBrowser } from '../browser/harness.mjs';

const OUT = path.join(root, 'tests/out');
const SHORT = 15_000;
const LONG = 120_000;

/** Opens the demo, waits for <html data-ready>, returns the page and its state. */
async function openDemo(browser, origin) {
  const page = await browser.newPage();
  await page.goto(origin + '/');
  await page.waitForFunction(() => document.documentElement.dataset.ready, undefined, { timeout: SHORT });
  return page;
}

/** Facts and banners as the page shows them. */
function facts(page) {
  return page.evaluate(() => ({
    ready: document.documentElement.dataset.ready,
    page: document.getElementById('fact-page').textContent,
    pkg: document.getElementById('fact-pkg').textContent,
    streaming: document.getElementById('fact-streaming').textContent,
    issues: [...document.querySelectorAll('#issues .issue')].map((e) => e.dataset.issue),
    streamBox: (() => {
      const box = document.querySelector('#echo-transports input[value="stream"]');
      return { disabled: box.disabled, checked: box.checked };
    })(),
  }));
}

/** Runs the echo lab with `kinds` checked; returns each column's state, note and figures. */
function runEcho(page, kinds, size, count) {
  return page.evaluate(async ({ kinds, size, count }) => {
    for (const box of document.querySelectorAll('#echo-transports input')) {
      box.checked = kinds.includes(box.value);
    }
    const sizeEl = document.getElementById('echo-size');
    sizeEl.value = String(size);
    sizeEl.dispatchEvent(new Event('change'));
    document.getElementById('echo-count').value = String(count);
    document.getElementById('echo-run').click();
    const results = document.getElementById('echo-results');
    const end = Date.now() + 110_000;
    while (results.dataset.run !== 'done') {
      if (Date.now() > end) throw new Error(`echo lab not done: ${results.textContent.slice(0, 300)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const num = (col, f) => Number(col.querySelector(`[data-field="${f}"]`)?.dataset.value);
    return {
      columns: [...document.querySelectorAll('.echo-col')].map((col) => ({
        kind: col.dataset.kind,
        state: col.dataset.state,
        note: col.querySelector('.col-note')?.textContent ?? '',
        p50: num(col, 'p50'),
        p99: num(col, 'p99'),
        mps: num(col, 'mps'),
        bars: col.querySelectorAll('svg.hist rect.bar').length,
      })),
      summary: document.getElementById('echo-summary').textContent,
    };
  }, { kinds, size, count });
}

function assertEcho(r, kinds, count) {
  assert.deepEqual(r.columns.map((c) => c.kind), kinds);
  for (const c of r.columns) {
    assert.equal(c.state, 'done', `${c.kind}: ${c.note}`);
    // p50 may read 0 where a loopback round trip is below the engine's timer step (Firefox: 1 ms).
    assert.ok(c.p50 >= 0 && c.p50 < 1000 && c.p50 <= c.p99, `${c.kind} p50 ${c.p50} ms, p99 ${c.p99} ms`);
    assert.ok(c.mps > 10, `${c.kind} throughput ${c.mps} msg/s`);
    assert.match(c.note, new RegExp(`^${count} RTT samples`));
    assert.ok(c.bars >= 1, `${c.kind} histogram has bars`);
  }
  assert.ok(!/object HTMLElement|undefined|NaN/.test(r.summary), r.summary);
}

describe(`demo page in ${ENGINE}`, () => {
  let server;
  let browser;
  before(async () => {
    mkdirSync(OUT, { recursive: true });
    server = await startDevserver([], { http: true, root: path.join(root, 'www') });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('loads over HTTP/2, says what this engine can do, runs the echo lab, no page errors', { timeout: LONG + SHORT }, async () => {
    const page = await openDemo(browser, server.origin);
    const f = await facts(page);
    assert.equal(f.ready, 'pkg', JSON.stringify(f));
    assert.match(f.pkg, /^h2ws /);
    if (STREAMS_REQUESTS) {
      assert.equal(f.streaming, 'yes (HTTP/2)');
      assert.deepEqual(f.issues, []);
    } else {
      // Measured by the page, not assumed: this engine does not stream request bodies.
      assert.equal(f.streaming, 'not in this browser');
      assert.deepEqual(f.issues, ['no-request-streaming']);
      assert.deepEqual(f.streamBox, { disabled: true, checked: false });
    }
    const kinds = STREAMS_REQUESTS ? ['stream', 'post', 'native'] : ['post', 'native'];
    const r = await runEcho(page, kinds, 1024, 200);
    assertEcho(r, kinds, 200);
    assert.match(r.summary, /H2WebSocket · post: RTT p50 .*× WebSocket’s/);
    assert.match(r.summary, /Timer resolution here: /);
    await page.screenshot({ path: path.join(OUT, `demo-${ENGINE}.png`) });
    assert.deepEqual(await page.errors(), []);
    await page.close();
  });

  it('chat between two pages of this engine (post and the engine\'s own WebSocket)', { timeout: LONG }, async () => {
    const a = await openDemo(browser, server.origin);
    const b = await openDemo(browser, server.origin);
    try {
      const connect = (page, name, transport) => page.evaluate(async ({ name, transport }) => {
        document.getElementById('chat-name').value = name;
        document.getElementById('chat-transport').value = transport;
        document.getElementById('chat-connect-btn').click();
        const status = document.getElementById('chat-status');
        for (const end = Date.now() + 10_000; status.dataset.state !== 'open';) {
          if (Date.now() > end) throw new Error(`chat not open: ${status.textContent} ${document.getElementById('chat-log').textContent.slice(-300)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }, { name, transport });
      await connect(a, 'ann', 'post');
      await connect(b, 'ben', 'native');
      await a.evaluate(() => {
        const input = document.getElementById('chat-input');
        input.value = `hello from ann`;
        input.form.requestSubmit();
      });
      const got = await b.evaluate(async () => {
        for (const end = Date.now() + 10_000; Date.now() < end;) {
          const li = [...document.querySelectorAll('#chat-log li.msg.other')].find((l) => l.textContent.includes('hello from ann'));
          if (li) return { who: li.querySelector('.who').textContent, transport: li.dataset.transport };
          await new Promise((r) => setTimeout(r, 50));
        }
        return null;
      });
      assert.deepEqual(got, { who: 'ann', transport: 'post' });
      assert.deepEqual([...(await a.errors()), ...(await b.errors())], []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('over HTTP/1.1: says why `stream` cannot work; post and the engine\'s WebSocket echo', { timeout: LONG + SHORT }, async () => {
    const page = await openDemo(browser, server.httpOrigin);
    try {
      const f = await facts(page);
      assert.equal(f.ready, 'pkg', JSON.stringify(f));
      assert.match(f.streaming, /^no|^not in this browser$/);
      const r = await runEcho(page, ['post', 'native'], 128, 50);
      assertEcho(r, ['post', 'native'], 50);
      await page.screenshot({ path: path.join(OUT, `demo-${ENGINE}-http1.png`) });
      assert.deepEqual(await page.errors(), []);
    } finally {
      await page.close();
    }
  });
});
