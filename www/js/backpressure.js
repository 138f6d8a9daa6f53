// Backpressure with H2WebSocketStream: a writer as fast as the stream allows, a reader that pauses
// after every message, and the server's counters from /.h2ws/stats.
//
// /.h2ws/stats exposes totals (bytes in/out, all sockets), not a per-socket queue. On /ws/echo
// every byte the server received and has not sent back yet is held by the server, so
// Δbytes_in − Δbytes_out over the run is the server's queue for this socket (plus whatever other
// sockets do meanwhile); Δbytes_out − bytes read is what sits in the network, the HTTP/2 windows and
// the browser.

import { $, h, fmtBytes, sleep, timeout } from './dom.js';
import { socketUrl } from './sockets.js';
import { lineChartSvg } from './charts.js';
import { probeServer, socketLost } from './diagnostics.js';

const PATH = '/ws/echo';
const POLL_MS = 200;
const STALL_MS = 20_000; // no progress on either side for this long → the run is called stuck

export function initBackpressure(ctx) {
  const form = $('#bp-form');
  const runBtn = $('#bp-run');
  const stopBtn = $('#bp-stop');
  const status = $('#bp-status');
  const chart = $('#bp-chart');
  const figures = $('#bp-figures');
  const note = $('#bp-note');

  if (!ctx.pkg) {
    runBtn.disabled = true;
    status.textContent = 'needs the h2ws package';
    status.dataset.state = 'bad';
    chart.replaceChildren(h('p.placeholder', {}, 'H2WebSocketStream comes from the h2ws package, which did not load (see the message at the top).'));
    return;
  }
  chart.replaceChildren(h('p.placeholder', {}, 'Press Start: the chart shows bytes written, held by the server and read, over time.'));

  let stop = null;

  function setStatus(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  function drawFigures(rows) {
    figures.replaceChildren(
      ...rows.flatMap(([key, label, value, cls]) => [
        h(`dt${cls ? `.${cls}` : ''}`, {}, label),
        h('dd', { dataset: { field: key, value: String(value) } }, fmtBytes(value)),
      ]),
    );
  }

  async function run() {
    const size = +$('#bp-size').value;
    const delay = +$('#bp-delay').value;
    const total = +$('#bp-total').value;
    const chunk = new Uint8Array(size).fill(0x61);

    let stopped = false;
    let stopReason = '';
    let wake;
    const stopping = new Promise((r) => (wake = r)); // lets pending reads and waits end on Stop
    stop = (why) => {
      if (!stopped) stopReason = why;
      stopped = true;
      wake();
    };
    runBtn.disabled = true;
    stopBtn.disabled = false;
    note.textContent = '';
    setStatus('connecting…', 'connecting');

    const base = await probeServer();
    if (!base.ok) {
      setStatus('server unreachable', 'bad');
      note.textContent = `/.h2ws/stats: ${base.error.message}`;
      runBtn.disabled = false;
      stopBtn.disabled = true;
      return;
    }

    const c = { handed: 0, written: 0, read: 0, srvIn: 0, srvOut: 0, maxHeld: 0, maxDown: 0, maxTotal: 0 };
    const series = {
      written: { name: 'written (write() resolved)', cls: 's-written', points: [] },
      srvIn: { name: 'server received', cls: 's-in', points: [] },
      srvOut: { name: 'server sent', cls: 's-out', points: [] },
      read: { name: 'read by the slow reader', cls: 's-read', points: [] },
    };
    const flight = {
      held: { name: 'held by the server (received − sent)', cls: 's-held', points: [] },
      down: { name: 'sent by the server, not yet read', cls: 's-down', points: [] },
    };
    let t0 = performance.now();
    let lastProgress = t0;
    const now = () => (performance.now() - t0) / 1000;

    let wss;
    try {
      wss = new ctx.pkg.H2WebSocketStream(socketUrl(PATH));
    } catch (e) {
      setStatus('failed', 'bad');
      note.textContent = `new H2WebSocketStream(): ${e.message}`;
      runBtn.disabled = false;
      stopBtn.disabled = true;
      return;
    }
    let closedInfo = null;
    wss.closed.then(
      (info) => (closedInfo = info),
      (err) => (closedInfo = { closeCode: 1006, reason: String(err?.message ?? err) }),
    );

    let poller = 0;
    let finished = false;
    // Totals only grow; answers may arrive out of order, so keep the largest seen.
    const serverSaw = (stats) => {
      c.srvIn = Math.max(c.srvIn, stats.bytes_in - base.stats.bytes_in);
      c.srvOut = Math.max(c.srvOut, stats.bytes_out - base.stats.bytes_out);
    };
    const redraw = () => {
      const t = now();
      const held = Math.max(0, c.srvIn - c.srvOut);
      const down = Math.max(0, c.srvOut - c.read);
      c.maxHeld = Math.max(c.maxHeld, held);
      c.maxDown = Math.max(c.maxDown, down);
      c.maxTotal = Math.max(c.maxTotal, c.written - c.read);
      series.written.points.push([t, c.written]);
      series.srvIn.points.push([t, c.srvIn]);
      series.srvOut.points.push([t, c.srvOut]);
      series.read.points.push([t, c.read]);
      flight.held.points.push([t, held]);
      flight.down.points.push([t, down]);
      chart.replaceChildren(
        legend(Object.values(series)),
        lineChartSvg(Object.values(series), { height: 200, yFmt: fmtBytes, bytes: true }),
        legend(Object.values(flight)),
        lineChartSvg(Object.values(flight), { height: 150, yFmt: fmtBytes, bytes: true }),
      );
      drawFigures([
        ['written', 'written', c.written, 's-written'],
        ['srvIn', 'server received', c.srvIn, 's-in'],
        ['srvOut', 'server sent', c.srvOut, 's-out'],
        ['read', 'read', c.read, 's-read'],
        ['maxHeld', 'max held by server', c.maxHeld, 's-held'],
        ['maxDown', 'max sent, not yet read', c.maxDown, 's-down'],
        ['maxTotal', 'max written, not yet read', c.maxTotal, ''],
      ]);
    };

    try {
      const { readable, writable } = await timeout(wss.opened, 10_000, 'H2WebSocketStream.opened');
      t0 = lastProgress = performance.now();
      for (const s of [...Object.values(series), ...Object.values(flight)]) s.points.push([0, 0]);
      setStatus(delay ? `running, reader pauses ${delay} ms/message` : 'running, fast reader', 'open');

      poller = setInterval(async () => {
        const p = await probeServer(POLL_MS * 5);
        if (finished) return; // a late answer must not touch the final figures
        if (p.ok) serverSaw(p.stats);
        if (!stopped) redraw();
        if (performance.now() - lastProgress > STALL_MS) stop(`no progress for ${STALL_MS / 1000} s`);
      }, POLL_MS);

      const writer = writable.getWriter();
      const writing = (async () => {
        while (c.handed < total && !stopped) {
          await Promise.race([writer.ready, stopping]); // backpressure: waits while the upstream takes no more
          if (stopped) break;
          c.handed += size;
          writer.write(chunk.slice()).then(() => {
            c.written += size;
            lastProgress = performance.now();
          }, () => {});
        }
      })();
      writing.catch((e) => stop(`write: ${e?.message ?? e}`));

      const reader = readable.getReader();
      while (c.read < total && !stopped) {
        const { value, done } = await Promise.race([reader.read(), stopping.then(() => ({ done: true }))]);
        if (done) break;
        c.read += value.byteLength ?? value.length;
        lastProgress = performance.now();
        if (delay) await sleep(delay);
      }
      await Promise.race([writing, sleep(1000)]);
    } catch (e) {
      stop(e.message);
    } finally {
      finished = true;
      clearInterval(poller);
      const p = await probeServer();
      if (p.ok) serverSaw(p.stats);
      redraw();
      try {
        wss.close({ closeCode: 1000, reason: 'done' });
      } catch {}
      await Promise.race([wss.closed.catch(() => {}), sleep(3000)]);
      runBtn.disabled = false;
      stopBtn.disabled = true;
      stop = null;
      const lost = closedInfo && closedInfo.closeCode === 1006;
      if (lost) socketLost('Backpressure');
      // The note first: the status is the last thing to change (tests wait for it).
      if (stopReason && stopReason !== 'user') {
        note.replaceChildren(h('span.bad', {}, `Stopped: ${stopReason}.`));
        setStatus('failed', 'bad');
      } else {
        note.replaceChildren(explain(c, size, delay));
        setStatus(stopReason === 'user' ? 'stopped' : 'done', stopReason === 'user' ? 'closed' : 'open');
      }
    }
  }

  function explain(c, size, delay) {
    return h('span', {},
      `Read ${fmtBytes(c.read)} in ${size / 1024} KiB messages${delay ? ` at ${delay} ms each` : ''}. `,
      `At most ${fmtBytes(c.maxTotal)} was written but not yet read: ${fmtBytes(c.maxHeld)} at most held by the server, `,
      `${fmtBytes(c.maxDown)} at most on its way down (HTTP/2 windows, socket buffers, the browser). `,
      h('span.muted', {}, 'Server figures are /.h2ws/stats totals over all sockets (it has no per-socket queue figure), sampled every 200 ms.'),
    );
  }

  function legend(list) {
    return h('ul.legend', {}, list.map((s) => h(`li.${s.cls}`, {}, h('i'), s.name)));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!stop) run();
  });
  stopBtn.addEventListener('click', () => stop?.('user'));
}
