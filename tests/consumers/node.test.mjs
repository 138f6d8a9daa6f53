// h2ws outside a browser (a server render's import, Node, Bun, Deno): the packed tarball
// installed in a throwaway project and imported by name in Node (apps/ssr.mjs), in Bun and Deno
// (apps/runtime.mjs; both from npm, pinned here), and the synchronous API rules
// the JS layer owns (they run without the wasm, so they are tested here directly; the browser
// suite compares them with the native WebSocket in each engine).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startDevserver } from '../browser/harness.mjs';
import { here, project, run } from './shared.mjs';

describe('h2ws in Node', () => {
  let server;
  let dir;
  before(async () => {
    server = await startDevserver([], { http: true });
    dir = project('ssr', [['ssr.mjs'], ['runtime.mjs']]);
  });
  after(async () => server?.stop());

  it('imports by name without fetching or touching globals; a socket without the wasm fails the WHATWG way, with ready(bytes) it echoes', () => {
    const out = JSON.parse(run(process.execPath, ['ssr.mjs', server.httpOrigin], dir).trim().split('\n').pop());
    assert.deepEqual(out.exports, ['H2WebSocket', 'H2WebSocketError', 'H2WebSocketStream', 'default', 'ready']);
    assert.equal(out.fetchedAtImport, 0);
    assert.deepEqual(out.globalsAdded, []);
    assert.match(out.relative, /^SyntaxError: .*The URL '\/ws\/echo' is invalid/);
    assert.equal(out.earlyState, 0);
    assert.match(out.earlySend, /^InvalidStateError/);
    assert.deepEqual(out.withoutWasm, { events: ['error', 'close 1006 false'], console: 1 });
    assert.equal(out.fetchedBeforeReady, 0, 'no open request without the wasm');
    assert.deepEqual(out.withWasm, { echoed: 'hello from node', events: ['open', 'close 1000 true'], stream: 'stream from node' });
  });

  for (const [runtime, args] of [['bun', ['runtime.mjs']], ['deno', ['run', '-A', 'runtime.mjs']]]) {
    it(`${runtime}: imports by name, and sockets work without ready() (its fetch reads file: URLs)`, () => {
      const out = run(path.join(here, 'node_modules/.bin', runtime), [...args, server.httpOrigin], dir);
      assert.deepEqual(JSON.parse(out.trim().split('\n').pop()), { events: ['open', 'close 1000'], echoed: 'hello', stream: 'stream' });
    });
  }

  describe('synchronous API rules (no wasm needed)', () => {
    let h2ws;
    before(async () => {
      h2ws = await import(pathToFileURL(path.join(dir, 'node_modules/h2ws/index.js')));
    });
    const thrown = (f) => {
      try { f(); return null; } catch (e) { return { name: e.name, message: e.message, dom: e instanceof DOMException }; }
    };
    // A socket that got past the rules; closed at once so it never waits for the wasm.
    const made = (...args) => {
      const ws = new h2ws.H2WebSocket(...args);
      ws.close();
      return ws;
    };

    it('URLs: http(s) map to ws(s); other schemes, fragments (even empty) and unparsable URLs throw SyntaxError', () => {
      assert.equal(made('http://127.0.0.1:9/p?q=1').url, 'ws://127.0.0.1:9/p?q=1');
      assert.equal(made('HTTPS://Example.TEST:443/Up').url, 'wss://example.test/Up');
      assert.equal(made('ws://127.0.0.1:9').url, 'ws://127.0.0.1:9/');
      assert.equal(made(new URL('wss://127.0.0.1:9/a')).url, 'wss://127.0.0.1:9/a');
      for (const [input, message] of [
        ['ftp://x/', "The URL's scheme must be either 'http', 'https', 'ws', or 'wss'. 'ftp' is not allowed."],
        ['javascript:alert(1)', "'javascript' is not allowed"],
        ['wss://x/#frag', "fragment identifier ('frag')"],
        ['wss://x/#', "fragment identifier ('')"],
        ['http://[::1', "The URL 'http://[::1' is invalid."],
        ['/relative-without-base', 'is invalid'],
      ]) {
        const e = thrown(() => new h2ws.H2WebSocket(input));
        assert.equal(e?.name, 'SyntaxError', input);
        assert.ok(e.dom && e.message.includes(message), `${input}: ${e.message}`);
      }
      const e = thrown(() => new h2ws.H2WebSocketStream('ftp://x/'));
      assert.match(e.message, /^Failed to construct 'H2WebSocketStream'/);
    });

    it('subprotocols: tokens, no duplicates (case-sensitive), else SyntaxError', () => {
      for (const ok of [[], 'chat', ['chat', 'superchat'], ['a', 'A'], ["!#$%&'*+-.^_`|~09azAZ"]]) {
        assert.equal(thrown(() => made('ws://127.0.0.1:9/', ok)), null, JSON.stringify(ok));
      }
      for (const bad of [['a', 'a'], [''], ['a b'], ['a,b'], ['ch\u00e9'], ['x{y}'], ['c', 'd', 'c']]) {
        assert.equal(thrown(() => new h2ws.H2WebSocket('ws://127.0.0.1:9/', bad))?.name, 'SyntaxError', JSON.stringify(bad));
      }
      assert.match(thrown(() => new h2ws.H2WebSocket('ws://x/', ['a', 'a'])).message, /'a' is duplicated/);
      assert.equal(thrown(() => new h2ws.H2WebSocketStream('ws://x/', { protocols: ['a b'] }))?.name, 'SyntaxError');
    });

    it('send() while CONNECTING throws InvalidStateError; close() arguments follow the WHATWG rules', () => {
      const ws = new h2ws.H2WebSocket('ws://127.0.0.1:9/');
      assert.equal(thrown(() => ws.send('x'))?.name, 'InvalidStateError');
      for (const [args, name] of [
        [[999], 'InvalidAccessError'], [[1001], 'InvalidAccessError'], [[2999], 'InvalidAccessError'],
        [[5000], 'InvalidAccessError'], [[1, 'x'.repeat(124)], 'InvalidAccessError'],
        [[1000, 'x'.repeat(124)], 'SyntaxError'], [[4000, '\u20ac'.repeat(42)], 'SyntaxError'],
        [[1000.4], null], [[4999], null], [[1000, 'x'.repeat(123)], null], [[4000, '\u20ac'.repeat(41)], null],
      ]) {
        assert.equal(thrown(() => new h2ws.H2WebSocket('ws://127.0.0.1:9/').close(...args))?.name ?? null, name, JSON.stringify(args).slice(0, 40));
      }
      ws.close(3000, 'bye');
      assert.equal(ws.readyState, 2, 'close() while CONNECTING: CLOSING until the failure events');
    });
  });
});
