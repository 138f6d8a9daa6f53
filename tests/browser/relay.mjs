// A TCP relay under a test's control between the browser and the devserver (Node `net`), the
// browser-side twin of h2ws/tests/common/mod.rs `Relay`: it forwards each connection it accepts
// to the target port (TLS passes through untouched), `cut()` breaks every live one at once, both
// ways (what was in flight is lost, as when a network drops), `setDown(true)` drops new
// connections at once (a network that is gone), `retarget(port)` sends new
// connections to another server (a restart elsewhere). Loopback only.
import net from 'node:net';

const HOST = '127.0.0.1';

/**
 * Drops one side of a relayed connection at once (what was in flight is lost; the peer sees its
 * TLS connection end mid-stream without close_notify, an HTTP/2 connection error). A close, not
 * a reset: `resetAndDestroy()` (RST) left the Node 20.20 test process spinning at full CPU after
 * the tests, now and then (never exiting), which would hang the stage.
 */
function reset(socket) {
  if (!socket.destroyed) socket.destroy();
}

/** Starts a relay to `targetPort` on 127.0.0.1; resolves with { port, origin, cut, ... }. */
export async function startRelay(targetPort) {
  const live = new Set();
  let target = targetPort;
  let down = false;
  let accepted = 0;
  const server = net.createServer((inbound) => {
    if (down) {
      reset(inbound);
      return;
    }
    accepted += 1;
    const outbound = net.connect(target, HOST);
    inbound.setNoDelay(true);
    outbound.setNoDelay(true);
    const pair = { inbound, outbound };
    live.add(pair);
    const end = () => {
      live.delete(pair);
      reset(inbound);
      reset(outbound);
    };
    for (const socket of [inbound, outbound]) {
      socket.on('error', end);
      socket.on('close', end);
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address();
  return {
    port,
    /** The https origin a page is loaded from so that all its requests pass the relay. */
    origin: `https://${HOST}:${port}`,
    /** Connections accepted so far. */
    get accepted() { return accepted; },
    /** Breaks every live connection (both ways); returns how many there were. */
    cut() {
      const n = live.size;
      for (const { inbound, outbound } of [...live]) {
        reset(inbound);
        reset(outbound);
      }
      live.clear();
      return n;
    },
    /** New connections go to `port` from now on. */
    retarget(port) { target = port; },
    /** While down, new connections are dropped at once. */
    setDown(value) { down = value; },
    /** Stops listening and drops what is left; does not wait for the sockets to drain. */
    close() {
      down = true;
      this.cut();
      server.close();
      server.unref();
    },
  };
}
