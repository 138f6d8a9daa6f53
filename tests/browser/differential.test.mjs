// Differential: the same scenario with the browser's own WebSocket and with H2WebSocket on
// the same page; the event sequences (types, classes, data, origin, codes, readyState) match.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setupForSuite, TRANSPORTS, ENGINE } from './harness.mjs';

describe('differential: WebSocket vs H2WebSocket', () => {
  let env, page; // set before the tests run
  setupForSuite((e) => ([env, page] = [e, e.page]));

  async function both(scenario, arg) {
    return page.evaluate(async ([source, arg]) => {
      const scenario = eval(`(${source})`);
      const native = await scenario(WebSocket, arg);
      const h2 = await scenario(H2WebSocket, arg);
      return { native, h2 };
    }, [scenario.toString(), arg]);
  }

  const echoScenario = async (Ctor, transport) => {
    const ws = new Ctor('/ws/echo', [], transport ? { transport } : undefined);
    const log = t.trace(ws);
    const notes = [];
    ws.onopen = () => {
      notes.push(`open bufferedAmount=${ws.bufferedAmount} protocol=${ws.protocol} ext=${ws.extensions}`);
      ws.send('hello');
      ws.send(new Uint8Array([1, 2, 3]));
    };
    let n = 0;
    ws.onmessage = (e) => {
      n++;
      if (n === 1) ws.binaryType = 'arraybuffer';
      if (n === 2) ws.send('\u20ac'.repeat(1000));
      if (n === 3) {
        ws.close(4000, 'done');
        notes.push(`after close readyState=${ws.readyState}`);
        ws.send('late');
        notes.push(`late bufferedAmount=${ws.bufferedAmount}`);
      }
    };
    await t.once(ws, 'close', 10000);
    return { log, notes };
  };

  for (const transport of TRANSPORTS) {
    it(`echo scenario: identical events (${transport})`, async () => {
      const { native, h2 } = await both(echoScenario, transport);
      const features = await page.evaluate(async () => (await (await fetch('/pkg/package.json')).json()).h2wsFeatures);
      if (!features.includes('deflate')) {
        // The one expected difference in a build without permessage-deflate: the browser's own
        // WebSocket negotiates it with the devserver, H2WebSocket offers nothing.
        const ext = (notes) => notes.map((n) => n.replace(/ ext=.*$/, ' ext=*'));
        assert.match(native.notes[0], / ext=permessage-deflate$/);
        assert.match(h2.notes[0], / ext=$/);
        native.notes = ext(native.notes);
        h2.notes = ext(h2.notes);
      }
      if (ENGINE === 'webkit') {
        // `late bufferedAmount` is read in the echo handler of a 3000-byte send, right after
        // close(4000, 'done') (a 6-byte Close payload) and send('late') (4 bytes). Chromium's and
        // Firefox's own WebSocket and H2WebSocket there agree (10). In WebKit it depends on
        // timing on both sides: WebKit's own WebSocket lowers bufferedAmount in a later task (so
        // it may still count the 3000 bytes), and whether H2WebSocket's `post` batches are
        // answered yet varies. What must hold: the late send is counted, and nothing beyond
        // what was sent (4 ≤ value ≤ 3000 + 6 + 4).
        const late = (notes) => Number(notes.find((n) => n.startsWith('late '))?.split('=')[1]);
        for (const [who, value] of [['H2WebSocket', late(h2.notes)], ['WebSocket', late(native.notes)]]) {
          assert.ok(value >= 4 && value <= 3010, `${who} late bufferedAmount ${value}`);
        }
        h2.notes = h2.notes.filter((n) => !n.startsWith('late '));
        native.notes = native.notes.filter((n) => !n.startsWith('late '));
      }
      assert.deepEqual(h2, native);
      assert.deepEqual(native.log.map((e) => e.type), ['open', 'message', 'message', 'message', 'close']);
    });
  }

  it('subprotocol offer: identical protocol and events', async () => {
    const { native, h2 } = await both(async (Ctor) => {
      // Whatever the echo app does with an offer (pick one or none), both must agree.
      const ws = new Ctor('/ws/echo', ['chat', 'superchat']);
      const log = t.trace(ws);
      const first = await t.onceAny(ws, ['open', 'close'], 10000);
      const protocol = ws.protocol;
      if (first.type === 'open') {
        ws.close(3001);
        await t.once(ws, 'close', 10000);
      }
      return { protocol, log };
    });
    assert.deepEqual(h2, native);
  });

  it('refused handshake: identical events', async () => {
    const { native, h2 } = await both(async (Ctor) => {
      const ws = new Ctor('/ws/no-such-app');
      const log = t.trace(ws);
      await t.once(ws, 'close', 10000);
      return log;
    });
    assert.deepEqual(h2, native);
  });
});
