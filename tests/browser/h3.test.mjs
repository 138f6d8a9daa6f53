// HTTP/3 specifics (H2WS_HTTP3=1, Chromium or Firefox; skipped otherwise): every request of a socket (the
// open, the `stream` upstream, `post` batches) goes over h3, seen in the Performance API. The
// other suites run unchanged over HTTP/3 in the same stage (xtask stage browser-h3).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, HTTP3, TRANSPORTS } from './harness.mjs';

describe('HTTP/3', { skip: !HTTP3 && 'H2WS_HTTP3=1 runs it (xtask stage browser-h3)' }, () => {
  let env;
  before(async () => { env = await setup(); });
  after(async () => env?.teardown());

  for (const transport of TRANSPORTS) {
    it(`${transport}: the socket's requests all go over h3`, async () => {
      const r = await env.page.evaluate(async (transport) => {
        performance.clearResourceTimings();
        const ws = new H2WebSocket('/ws/echo', [], { transport });
        await t.once(ws, 'open');
        for (let i = 0; i < 3; i++) { ws.send(`m${i}`); await t.once(ws, 'message'); }
        ws.close();
        await t.once(ws, 'close');
        // Resource entries appear once a response body has ended: give the last ones a moment.
        await t.sleep(200);
        return performance.getEntriesByType('resource')
          .filter((e) => new URL(e.name).pathname === '/ws/echo')
          .map((e) => e.nextHopProtocol);
      }, transport);
      // stream: the open + the upstream; post: the open + at least one batch.
      assert.ok(r.length >= 2, `requests seen: ${JSON.stringify(r)}`);
      assert.deepEqual([...new Set(r)], ['h3'], JSON.stringify(r));
    });
  }
});
