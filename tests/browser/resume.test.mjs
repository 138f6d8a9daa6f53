// Lossless resume in the browser (issue 14): the page is loaded through a TCP relay the test
// controls (tests/browser/relay.mjs), so every request of the page passes it; the test cuts
// all its connections while an H2WebSocket with `resume: true` exchanges thousands of numbered
// messages with /ws/echo. Nothing may be lost, duplicated, reordered or corrupted, no event may
// fire, and the server's socket must live on (the echo app's echoes are the server's view, and
// the clean close at the end is answered by the same server socket). Also: Chromium's offline
// emulation (a loss on the browser's side), a cut without resume (fails as before), and a
// server restart (the re-attach is refused; with `reconnect` a new session opens).
import { describe, it, before, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevserver, launchBrowser, openPage, ENGINE, HTTP3, STREAMS_REQUESTS } from './harness.mjs';
import { startRelay } from './relay.mjs';

/** Messages each way and cuts per run (the native client's test: h2ws/tests/resume.rs). */
const N = Number(process.env.H2WS_RESUME_MESSAGES ?? 20000);
/**
 * WebKitGTK 2.50 (libsoup): every cut of a connection with a response in progress (an h2ws
 * downstream always is) keeps one of its 6 connections per host for good, so after 6 cuts no
 * request of the page reaches the origin, plain `fetch` included. An engine bug, shown without
 * h2ws by webkit-cut.test.mjs (a plain Node HTTP/2 server, bare fetch). So in WebKit each test
 * gets a fresh browser and at most 4 cuts.
 */
const WEBKIT = ENGINE === 'webkit';
const CUTS = WEBKIT ? 4 : 10;
/** `stream` where the engine streams request bodies; `post` everywhere. */
const RUN_TRANSPORTS = STREAMS_REQUESTS ? ['stream', 'post'] : ['post'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const SKIP = HTTP3 && 'the relay carries TCP (HTTP/2) only';

describe('resume', { skip: SKIP }, () => {
  let server;
  let relay;
  let browser;
  let page;

  /** Page errors of browsers closed before the end (WebKit: one browser per test). */
  const earlierErrors = [];

  before(async () => {
    server = await startDevserver();
    relay = await startRelay(Number(new URL(server.origin).port));
    browser = await launchBrowser({ server });
    page = await openPage(browser, relay.origin);
  });

  // WebKit: a fresh browser per test (see WEBKIT above).
  beforeEach(async () => {
    if (!WEBKIT || relay.accepted <= 1) return;
    earlierErrors.push(...await page.errors().catch((e) => [`reading the page's errors failed: ${e}`]));
    await browser.close().catch(() => {});
    browser = await launchBrowser({ server });
    page = await openPage(browser, relay.origin);
  });

  after(async () => {
    const errors = page ? await page.errors().catch((e) => [`reading the page's errors failed: ${e}`]) : [];
    errors.unshift(...earlierErrors);
    await browser?.close().catch(() => {});
    relay?.close();
    await server?.stop().catch(() => {});
    if (errors.length > 0) throw new Error(`uncaught errors in the page:\n${errors.join('\n')}`);
  });

  const stats = () => page.evaluate(() => t.stats());

  /**
   * Runs `n` numbered messages each way over a resumable socket of `transport` in the page,
   * calling `fault(i)` when `at[i]` messages have come back. Returns the page's result.
   */
  async function sequencedRun(transport, n, at, fault) {
    await page.evaluate(() => { window.run = null; });
    const result = page.evaluate(async ([transport, n]) => {
      const ws = new H2WebSocket('/ws/echo', [], { transport, resume: true });
      ws.binaryType = 'arraybuffer';
      await t.once(ws, 'open');
      const run = t.sequencedEcho(ws, n);
      window.run = run;
      const started = performance.now();
      await run.done;
      const took = performance.now() - started;
      const stateBeforeClose = ws.readyState;
      ws.close(1000, 'done');
      const c = await t.once(ws, 'close').catch((e) => ({ code: `${e.message} (readyState ${ws.readyState}, bufferedAmount ${ws.bufferedAmount})` }));
      return {
        error: run.error,
        events: run.events.filter((e) => e !== 'close 1000'),
        received: run.received,
        stateBeforeClose,
        close: [c.code, c.wasClean],
        took,
      };
    }, [transport, n]);
    let settled = false;
    result.then(() => { settled = true; }, () => { settled = true; });
    let done = 0;
    // The next fault waits for progress after the last one (the socket is back).
    let floor = 0;
    while (done < at.length && !settled) {
      const progress = await page.evaluate(() => (window.run ? { received: window.run.received, error: window.run.error } : null));
      if (progress?.error) break;
      if (progress && progress.received >= Math.max(at[done], floor)) {
        await fault(done);
        floor = progress.received + 20;
        done += 1;
      } else {
        await sleep(5);
      }
    }
    const r = await result;
    return { ...r, faults: done };
  }

  for (const transport of RUN_TRANSPORTS) {
    it(`${transport}: survives ${CUTS} cuts of every connection during ${N} messages each way`, { timeout: 600000 }, async () => {
      const before = await stats();
      const at = Array.from({ length: CUTS }, (_, i) => Math.floor(((i + 1) * N) / (CUTS + 1)));
      const started = Date.now();
      let resumed = before.resumes;
      const r = await sequencedRun(transport, N, at, async () => {
        const live = relay.cut();
        assert.ok(live >= 1, 'a live connection to cut');
        // The next cut waits for this one's re-attach: on a loaded machine the page can still
        // read 20 messages the browser had buffered before it notices the cut, and a second
        // cut then lands on the re-attach itself (one resume for two cuts: seen once, under
        // CPU load, with every message through).
        const until = Date.now() + 10000;
        let now = resumed;
        while (now === resumed && Date.now() < until) {
          await sleep(10);
          now = (await stats()).resumes;
        }
        resumed = now;
      });
      if (r.error !== null) console.log(`# page console:\n${(await page.console()).slice(-40).join('\n')}`);
      assert.equal(r.error, null, `${transport}: ${r.error}`);
      assert.deepEqual(r.events, [], `${transport}: no event before the test's close`);
      assert.equal(r.faults, CUTS);
      assert.equal(r.received, N);
      assert.equal(r.stateBeforeClose, 1, 'still OPEN');
      // The server socket answered the close: it lived through every cut.
      assert.deepEqual(r.close, [1000, true]);
      let after = await stats();
      for (let i = 0; i < 100 && after.resumes - before.resumes < CUTS; i++) {
        await sleep(20);
        after = await stats();
      }
      assert.equal(after.resumes - before.resumes, CUTS, `${transport}: one resume per cut`);
      assert.equal(after.resumes_refused - before.resumes_refused, 0, `${transport}: none refused`);
      console.log(`# ${ENGINE} ${transport}: ${N} messages each way, ${CUTS} cuts, ${((Date.now() - started) / 1000).toFixed(1)} s (page run ${(r.took / 1000).toFixed(1)} s)`);
    });

    it(`${transport}: an echo sent right after a cut comes back once the socket re-attached`, { timeout: 120000 }, async () => {
      await page.evaluate(async (transport) => {
        const ws = new H2WebSocket('/ws/echo', [], { transport, resume: true });
        window.rtt = { ws, log: t.trace(ws) };
        await t.once(ws, 'open');
      }, transport);
      const echo = (i) => page.evaluate(async (i) => {
        const { ws } = window.rtt;
        const started = performance.now();
        const got = t.once(ws, 'message', 15000);
        ws.send(`echo ${i}`);
        const e = await got;
        return { data: e.data, ms: performance.now() - started };
      }, i);
      const plain = [];
      const afterCut = [];
      for (let i = 0; i < 2 * CUTS; i++) {
        const cut = i % 2 === 1;
        if (cut) relay.cut();
        const r = await echo(i);
        assert.equal(r.data, `echo ${i}`);
        (cut ? afterCut : plain).push(r.ms);
      }
      const log = await page.evaluate(() => {
        window.rtt.ws.close();
        return window.rtt.log.map((e) => e.type).filter((type) => type !== 'message');
      });
      assert.deepEqual(log, ['open'], 'no event from the cuts');
      const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      console.log(`# ${ENGINE} ${transport}: echo RTT median ${median(plain).toFixed(1)} ms; right after a cut median ${median(afterCut).toFixed(1)} ms, max ${Math.max(...afterCut).toFixed(1)} ms`);
      assert.ok(Math.max(...afterCut) < 5000, `resumed within 5 s: ${afterCut.map((x) => x.toFixed(0)).join(' ')}`);
    });
  }

  // WebKitGTK history: it stalled in 3 of 5 runs when the writer waited on the answer of a
  // `post` batch whose frames the server had acknowledged, on a connection WebKit never
  // reported dead (nothing unacknowledged, so the watchdog stayed quiet); fixed by the
  // watchdog also waiting for request answers (codec `Connection::request_started`). Then the
  // test's own races: a cut with no live connection (a cut now waits for one), and, with
  // faster `post` (replies), the last 4000 messages passing between two polls, leaving
  // nothing to cut (the writer now waits at each cut). 22 of 22 runs passed after that.
  for (const transport of RUN_TRANSPORTS) it(`${transport}: an H2WebSocketStream with resume survives cuts (reads and writes go on)`, { timeout: 120000 }, async () => {
    await page.evaluate(async (transport) => {
      const wss = new H2WebSocketStream('/ws/echo', { transport, resume: true });
      const { readable, writable } = await wss.opened;
      const reader = readable.getReader();
      const writer = writable.getWriter();
      const state = { received: 0, error: null, wss, gates: [] };
      // The writer waits at 2200 and 6200 until the test has cut (`release`): at full speed
      // the last 4000 messages can pass between two polls of the test, leaving no traffic to
      // cut. (Until the server refused a lost transport's `stream` upstream sent again,
      // `h2ws-attach`, this once failed Chromium's `stream` socket with 1006 here, and the
      // demo's network-panel test failed the same way under CPU load: see issue 14's report.)
      for (const at of [2200, 6200]) {
        let release;
        const open = new Promise((r) => { release = r; });
        state.gates.push({ at, open, release });
      }
      state.release = () => state.gates.find((g) => !g.released && (g.released = true))?.release();
      window.streamRun = state;
      state.done = (async () => {
        const writing = (async () => {
          for (let i = 0; i < 10000; i++) {
            const gate = state.gates.find((g) => g.at === i);
            if (gate) await gate.open;
            await writer.write(`s${i}`);
          }
        })();
        for (let i = 0; i < 10000; i++) {
          const { value, done } = await reader.read();
          if (done || value !== `s${i}`) { state.error = `read ${i}: ${done ? 'end' : value}`; return; }
          state.received = i + 1;
        }
        await writing;
      })().catch((e) => { state.error = String(e); });
    }, transport);
    // The second cut waits for progress after the first: a cut while the re-attach itself is
    // in flight can lose its answer after the server took the single-use key (the retry is
    // then refused, 403: a limit of the wire protocol, see the report of issue 14).
    let cuts = 0;
    let floor = 0;
    for (const at of [2000, 6000]) {
      const deadline = Date.now() + 60000;
      let received = 0;
      while ((received = await page.evaluate(() => window.streamRun.received)) < Math.max(at, floor) && Date.now() < deadline) await sleep(5);
      if (received >= 10000) break;
      // A cut needs a live connection: while a re-attach is still on its way there may be none.
      const until = Date.now() + 10000;
      while (relay.cut() === 0 && Date.now() < until) await sleep(20);
      if (Date.now() < until) cuts += 1;
      await page.evaluate(() => window.streamRun.release());
      floor = received + 50;
    }
    const r = await page.evaluate(async () => {
      const s = window.streamRun;
      await Promise.race([s.done, t.sleep(30000).then(() => { s.error ??= `stalled after ${s.received} messages`; })]);
      s.wss.close({ closeCode: 1000 });
      const closed = await s.wss.closed.then((c) => c.closeCode, (e) => `rejected: ${e} (${e.closeCode})`);
      return { error: s.error, received: s.received, closed };
    });
    if (r.error !== null || cuts !== 2) {
      // What the server saw of the re-attaches (RUST_LOG=h2ws=debug), and the page's console.
      const lines = server.output.join('').split('\n').filter((l) => /re-attach|resume|batch/.test(l));
      console.log(`# server:\n${lines.slice(-30).join('\n')}\n# page console:\n${(await page.console()).slice(-20).join('\n')}`);
    }
    assert.deepEqual(r, { error: null, received: 10000, closed: 1000 });
    assert.equal(cuts, 2);
  });

  it('without resume a cut fails the socket as before (error, close 1006)', async () => {
    const transport = RUN_TRANSPORTS[0];
    await page.evaluate(async (transport) => {
      const ws = new H2WebSocket('/ws/echo', [], { transport });
      window.plainWs = { ws, log: t.trace(ws) };
      await t.once(ws, 'open');
      ws.send('hi');
      await t.once(ws, 'message');
    }, transport);
    relay.cut();
    const log = await page.evaluate(async () => {
      const { ws, log } = window.plainWs;
      // WebKitGTK does not fail a response body whose connection dropped (resume's ack
      // watchdog is what notices it there); without resume the next send does: its request
      // reaches the server on a new connection and is refused, the session being gone.
      await t.sleep(200);
      if (ws.readyState === 1) ws.send('after the cut');
      if (ws.readyState !== 3) await t.once(ws, 'close');
      return log.map((e) => (e.type === 'close' ? `close ${e.code}` : e.type));
    });
    assert.deepEqual(log, ['open', 'message', 'error', 'close 1006']);
  });

  it('Chromium offline and back: the socket re-attaches and nothing is lost', { skip: ENGINE !== 'chromium' && 'CDP network emulation (context.setOffline) is Chromium\'s', timeout: 120000 }, async () => {
    for (const transport of RUN_TRANSPORTS) {
      const before = await stats();
      const r = await sequencedRun(transport, 10000, [1000], async () => {
        await browser.context.setOffline(true);
        await sleep(1000);
        await browser.context.setOffline(false);
      });
      assert.equal(r.error, null, `${transport}: ${r.error}`);
      assert.deepEqual(r.events, [], transport);
      assert.equal(r.received, 10000);
      assert.deepEqual(r.close, [1000, true]);
      const after = await stats();
      assert.ok(after.resumes - before.resumes >= 1, `${transport}: going offline broke the transport and it was resumed (${after.resumes - before.resumes})`);
      assert.equal(after.resumes_refused - before.resumes_refused, 0);
    }
  });

  // Last: it replaces the server.
  it('a server restart: the re-attach is refused; with reconnect a new session opens (close 1006, then open)', { timeout: 120000 }, async () => {
    await page.evaluate(async (transport) => {
      const ws = new H2WebSocket('/ws/echo', [], {
        transport, resume: true, reconnect: { minDelay: 100, maxDelay: 1000, maxRetries: 20 },
      });
      const log = t.trace(ws);
      window.restart = { ws, log };
      await t.once(ws, 'open');
      ws.send('before');
      await t.once(ws, 'message');
      // Sent while CLOSED, waiting for the next session: held and sent on its `open`.
      ws.addEventListener('close', () => {
        ws.send('held while closed');
        window.restart.bufferedWhileClosed = ws.bufferedAmount;
        window.restart.stateWhileClosed = ws.readyState;
      }, { once: true });
    }, RUN_TRANSPORTS[0]);
    const second = await startDevserver();
    relay.retarget(Number(new URL(second.origin).port));
    const first = server;
    server = second;
    await first.kill();
    const r = await page.evaluate(async () => {
      const { ws, log } = window.restart;
      await t.until(() => log.filter((e) => e.type === 'open').length === 2, 30000);
      await t.until(() => log.some((e) => e.data === 'held while closed'), 10000);
      ws.send('after');
      await t.until(() => log.some((e) => e.data === 'after'), 10000);
      ws.close();
      await t.once(ws, 'close');
      return {
        log: log.map((e) => (e.type === 'close' ? `close ${e.code}` : e.type === 'message' ? `message ${e.data}` : e.type)),
        bufferedWhileClosed: window.restart.bufferedWhileClosed,
        stateWhileClosed: window.restart.stateWhileClosed,
      };
    });
    assert.deepEqual(r.log, [
      'open', 'message before', 'error', 'close 1006',
      'open', 'message held while closed', 'message after', 'close 1000',
    ]);
    assert.equal(r.stateWhileClosed, 3);
    assert.equal(r.bufferedWhileClosed, 'held while closed'.length);
    const s = await stats();
    assert.ok(s.sessions_unknown >= 1, 'the new server was asked to re-attach a session it never had');
  });
});
