// Liveness (DESIGN §2.5): the server pings after silence (30 s by default) and drops a session
// without traffic (60 s). H2WebSocket answers the pings, so an idle socket stays open; a hand-made
// session that ignores them (the control, attached with an empty `post` batch, which every engine
// can send) is dropped. The devserver runs with its timers shortened to 2 s / 5 s.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

describe('liveness', () => {
  let env;
  before(async () => {
    env = await setup(['--ping-interval', '2', '--idle-timeout', '5']);
  });
  after(async () => env?.teardown());

  it('answers server pings: idle for 12 s (pings every 2 s, dropped after 5 s) and still open, while a session that does not pong is dropped', { timeout: 60000 }, async (context) => {
    const r = await env.page.evaluate(async () => {
      // Control: the raw fetch transport, never answering pings.
      const control = (async () => {
        const open = await fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-version': '1' } });
        await fetch('/ws/echo', { method: 'POST', headers: { 'h2ws-session': open.headers.get('h2ws-session'), 'h2ws-seq': '0' } });
        const reader = open.body.getReader();
        const started = performance.now();
        const firstBytes = [];
        let end = 'still open';
        const deadline = t.sleep(15000).then(() => 'deadline');
        for (;;) {
          const next = await Promise.race([reader.read().then((x) => x, () => 'error'), deadline]);
          if (next === 'deadline') break;
          if (next === 'error' || next.done) { end = `${next === 'error' ? 'error' : 'ended'} after ${Math.round((performance.now() - started) / 1000)} s`; break; }
          firstBytes.push(`0x${next.value[0].toString(16)}@${Math.round((performance.now() - started) / 1000)}s`);
        }
        return { firstBytes, end };
      })();
      const ws = new H2WebSocket('/ws/echo');
      const log = t.trace(ws);
      await t.once(ws, 'open');
      await t.sleep(12000);
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
