// A TCP relay under a test's control between the browser and the devserver (Node `net`), the
// browser-side twin of h2ws/tests/common/mod.rs `Relay`: it forwards each connection it accepts
// to the target port (TLS passes through untouched), `cut()` breaks every live one at once with
// a reset both ways (what was in flight is lost, as when a network drops), `setDown(true)`
// resets new connections at once (a network that is gone), `retarget(port)` sends new
// connections to another server (a restart elsewhere). Loopback only.
import net from 'node:net';

const HOST = '127.0.0.1';

/** Starts a relay to `targetPort` on 127.0.0.1; resolves with { port, origin, cut, ... }. */
export async function startRelay(targetPort) {
  const live = new Set();
  let target = targetPort;
  let down = false;
  let accepted = 0;
  const server = net.createServer((inbound) => {
    if (down) {
      inbound.resetAndDestroy();
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
      if (!inbound.destroyed) inbound.resetAndDestroy();
      if (!outbound.destroyed) outbound.resetAndDestroy();
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
    /** Breaks every live connection (reset both ways); returns how many there were. */
    cut() {
      const n = live.size;
      for (const { inbound, outbound } of [...live]) {
        inbound.resetAndDestroy();
        outbound.resetAndDestroy();
      }
      live.clear();
      return n;
    },
    /** New connections go to `port` from now on. */
    retarget(port) { target = port; },
    /** While down, new connections are reset at once. */
    setDown(value) { down = value; },
    async close() {
      this.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
