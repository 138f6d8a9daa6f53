// Liveness (DESIGN §2.5): the server pings after 30 s of silence and drops a session after 60 s
// without traffic. H2WebSocket answers the pings, so an idle socket stays open; a hand-made
// tunnel that ignores them (the control) is dropped. Takes ~70 s: the devserver has no flag to
// shorten its timers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

describe('liveness', () => {
  let env;
  before(async () => {
    env = await setup();
  });
  after(async () => env?.teardown());

  it('answers server pings: idle for 70 s and still open, while a tunnel that does not pong is dropped', { timeout: 120000 }, async (context) => {
    const r = await env.page.evaluate(async () => {
      // Control: the raw fetch transport, never answering pings.
      const control = (async () => {
        const open = await fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-version': '1' } });
        const ts = new TransformStream();
        const writer = ts.writable.getWriter();
        fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-session': open.headers.get('h2ws-session') }, body: ts.readable, duplex: 'half' }).catch(() => {});
        const reader = open.body.getReader();
        const started = performance.now();
        const firstBytes = [];
        let end = 'still open';
        const deadline = t.sleep(75000).then(() => 'deadline');
        for (;;) {
          const next = await Promise.race([reader.read().then((x) => x, () => 'error'), deadline]);
          if (next === 'deadline') break;
          if (next === 'error' || next.done) { end = `${next === 'error' ? 'error' : 'ended'} after ${Math.round((performance.now() - started) / 1000)} s`; break; }
          firstBytes.push(`0x${next.value[0].toString(16)}@${Math.round((performance.now() - started) / 1000)}s`);
        }
        writer.abort().catch(() => {});
        return { firstBytes, end };
      })();
      const ws = new H2WebSocket('/ws/echo');
      const log = t.trace(ws);
      await t.once(ws, 'open');
      await t.sleep(70000);
      const state = ws.readyState;
      ws.send('awake');
      const echo = state === 1 ? (await t.once(ws, 'message')).data : null;
      ws.close();
      await t.once(ws, 'close');
      return { state, echo, log: log.map((e) => e.type), control: await control };
    });
    context.diagnostic(`control tunnel: ${JSON.stringify(r.control)}`);
    assert.equal(r.state, 1, JSON.stringify(r));
    assert.equal(r.echo, 'awake');
    assert.deepEqual(r.log, ['open', 'message', 'close']);
    // The control saw the server's Ping(s) (opcode 0x9) and was then dropped.
    assert.ok(r.control.firstBytes.some((b) => b.startsWith('0x89')), JSON.stringify(r.control));
    assert.notEqual(r.control.end, 'still open', JSON.stringify(r.control));
  });
});
