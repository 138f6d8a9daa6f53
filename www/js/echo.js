// Echo lab: RTT (one message at a time) and throughput (pipelined) on /ws/echo, one socket per
// transport, run one after the other so they do not compete, shown side by side.

import { $, h, rich, fmtBytes, fmtMs, fmtNum, sleep } from './dom.js';
import { TRANSPORTS, openSocket, opened, streamHint } from './sockets.js';
import { summarize, histogramSvg, binOf } from './charts.js';
import { socketLost, socketBack } from './diagnostics.js';

const PATH = '/ws/echo';
const MESSAGE_TIMEOUT_MS = 15_000; // no echo for this long → the run fails
const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
const MAX_WINDOW = 64;
const MAX_PHASE_BYTES = 256 * 1024 * 1024; // per phase and transport; larger runs are shortened

const windowFor = (size) => Math.max(1, Math.min(MAX_WINDOW, Math.floor(MAX_IN_FLIGHT_BYTES / size)));

/** Messages of one socket, awaited one by one, each with a timeout. */
class Inbox {
  constructor(ws) {
    this.queue = [];
    this.waiter = null;
    this.closed = null;
    ws.addEventListener('message', (ev) => this.push({ data: ev.data }));
    ws.addEventListener('close', (ev) => {
      this.closed = ev;
      this.push(null);
    });
  }
  push(item) {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(item);
    } else if (item) this.queue.push(item);
  }
  next(ms = MESSAGE_TIMEOUT_MS) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no echo within ${ms / 1000} s`));
      }, ms);
      this.waiter = (item) => {
        clearTimeout(timer);
        resolve(item);
      };
    });
  }
}

/** The smallest step performance.now() takes on this page (engines coarsen it differently). */
let resolution;
function timerResolution() {
  if (resolution === undefined) {
    let best = Infinity;
    let last = performance.now();
    for (const end = last + 20; last < end && best > 0.001;) {
      const now = performance.now();
      if (now > last) best = Math.min(best, now - last);
      last = now;
    }
    resolution = best;
  }
  return resolution;
}

export function initEcho(ctx) {
  const form = $('#echo-form');
  const boxes = $('#echo-transports');
  const results = $('#echo-results');
  const runBtn = $('#echo-run');
  const stopBtn = $('#echo-stop');
  const summary = $('#echo-summary');
  const sizeEl = $('#echo-size');
  const countEl = $('#echo-count');

  for (const [kind, t] of Object.entries(TRANSPORTS)) {
    // `stream` in a browser that cannot stream request bodies would only fail: offered greyed out.
    const off = (t.needsPkg && !ctx.pkg) || (kind === 'stream' && !ctx.streams);
    // Default: the fetch transport this page can use, beside the browser's own WebSocket.
    const checked = !off && (kind === 'native' || kind === (ctx.canStream ? 'stream' : 'post'));
    boxes.append(
      h('label.check', { title: kind === 'stream' && !ctx.streams ? streamHint(ctx).replaceAll('`', '') : t.about },
        h('input', { type: 'checkbox', name: 'transport', value: kind, checked, disabled: off }), t.label),
    );
  }
  const noteWindow = () => ($('#echo-window-note').textContent = String(windowFor(+sizeEl.value)));
  sizeEl.addEventListener('change', noteWindow);
  noteWindow();

  let stopped = false;
  let columns = [];

  /** One transport's column: figures + histogram, re-rendered at most every animation frame. */
  function column(kind) {
    const t = TRANSPORTS[kind];
    const fields = {};
    const fig = (key, label, unit = '') =>
      h('div.fig', {}, h('dt', {}, label), (fields[key] = h('dd', { dataset: { field: key } }, '–')), unit ? h('span.unit', {}, unit) : null);
    const el = h(`article.echo-col.k-${kind}`, { dataset: { kind, state: 'waiting' } },
      h('header', {}, h('h3', {}, t.label), (fields.state = h('span.pill', { dataset: { state: 'closed' } }, 'waiting'))),
      (fields.bar = h('div.progress', {}, h('span'))),
      h('dl.figs', {},
        fig('p50', 'RTT p50'), fig('p99', 'RTT p99'), fig('mean', 'mean'), fig('max', 'max'),
        fig('mps', 'throughput', 'msg/s'), fig('mbps', '', 'MB/s'),
        fig('open', 'open')),
      (fields.hist = h('div.hist-box')),
      (fields.note = h('p.col-note')),
    );
    const col = { kind, el, fields, rtts: [], stats: null, thr: null, dirty: true, error: null };
    return col;
  }

  function setField(col, key, text, value) {
    const f = col.fields[key];
    f.textContent = text;
    if (value !== undefined) f.dataset.value = String(value);
  }

  function setState(col, state, text) {
    col.el.dataset.state = state;
    col.fields.state.dataset.state = { running: 'connecting', done: 'open', error: 'bad', stopped: 'closed' }[state] ?? 'closed';
    col.fields.state.textContent = text ?? state;
  }

  // A timer, not requestAnimationFrame: a run keeps going (and its figures stay current) while
  // the tab is in the background, where animation frames stop.
  let frame = 0;
  function render() {
    if (!frame) frame = setTimeout(renderNow, 80);
  }

  function renderNow() {
    clearTimeout(frame);
    frame = 0;
    // One bin range for every column, so histograms compare at a glance.
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of columns) {
      if (!c.rtts.length) continue;
      c.stats = summarize(c.rtts);
      lo = Math.min(lo, binOf(c.stats.min));
      hi = Math.max(hi, binOf(c.stats.max));
    }
    if (lo > hi) return;
    const spread = 12 - (hi - lo + 1);
    if (spread > 0) {
      lo = Math.max(0, lo - Math.floor(spread / 2));
      hi = lo + 11;
    }
    for (const c of columns) {
      if (!c.stats || !c.rtts.length) continue;
      const st = c.stats;
      setField(c, 'p50', fmtMs(st.p50), st.p50);
      setField(c, 'p99', fmtMs(st.p99), st.p99);
      setField(c, 'mean', fmtMs(st.mean), st.mean);
      setField(c, 'max', fmtMs(st.max), st.max);
      // Drawn at the box's own width so text keeps its size whatever the column width.
      const width = Math.max(200, Math.round(c.fields.hist.clientWidth || 320));
      c.fields.hist.replaceChildren(histogramSvg(c.rtts, { lo, hi, p50: st.p50, p99: st.p99, width }));
    }
  }

  function progress(col, frac) {
    col.fields.bar.firstElementChild.style.width = `${(Math.min(1, frac) * 100).toFixed(1)}%`;
  }

  async function runOne(col, size, count) {
    const template = new Uint8Array(size);
    for (let i = 0; i < size; i++) template[i] = (i * 31 + 7) & 0xff;
    const payload = (seq) => {
      const b = template.slice();
      if (size >= 4) new DataView(b.buffer).setUint32(0, seq, true);
      return b.buffer;
    };
    const check = (item, seq) => {
      if (!item) throw new Error('socket closed during the run');
      const data = item.data;
      if (!(data instanceof ArrayBuffer)) throw new Error(`expected binary echo, got ${typeof data}`);
      if (data.byteLength !== size) throw new Error(`echo of ${data.byteLength} bytes, sent ${size}`);
      const got = new Uint8Array(data);
      if (size >= 4 && new DataView(data).getUint32(0, true) !== seq) throw new Error(`echo out of order: expected #${seq}`);
      if (got[size - 1] !== template[size - 1] && size > 4) throw new Error('echo payload differs');
    };

    setState(col, 'running', 'connecting…');
    const tOpen = performance.now();
    const ws = openSocket(col.kind, PATH, ctx.pkg);
    const inbox = new Inbox(ws);
    let wasOpen = false;
    ws.addEventListener('close', (ev) => {
      if (ev.code === 1006) socketLost(`Echo lab (${TRANSPORTS[col.kind].label})`, wasOpen);
    });
    await opened(ws);
    wasOpen = true;
    const openMs = performance.now() - tOpen;
    setField(col, 'open', fmtMs(openMs), openMs);
    socketBack();
    try {
      // Warm-up: connection, JIT and wasm paths; not recorded.
      setState(col, 'running', 'warming up');
      const warm = Math.min(20, Math.max(2, count / 10));
      for (let i = 0; i < warm; i++) {
        ws.send(payload(i));
        check(await inbox.next(), i);
      }

      setState(col, 'running', 'RTT…');
      for (let i = 0; i < count && !stopped; i++) {
        const t0 = performance.now();
        ws.send(payload(i));
        const item = await inbox.next();
        col.rtts.push(performance.now() - t0);
        check(item, i);
        if (i % 8 === 0) {
          progress(col, i / (2 * count));
          render();
        }
      }
      render();
      if (stopped) return;

      setState(col, 'running', 'throughput…');
      const win = windowFor(size);
      let sent = 0;
      let got = 0;
      const t0 = performance.now();
      while (sent < Math.min(win, count)) ws.send(payload(sent++));
      while (got < count && !stopped) {
        check(await inbox.next(), got);
        got++;
        if (sent < count) ws.send(payload(sent++));
        if (got % 16 === 0) {
          progress(col, 0.5 + got / (2 * count));
          const s = (performance.now() - t0) / 1000;
          setField(col, 'mps', fmtNum(got / s), got / s);
          setField(col, 'mbps', fmtNum((got * size) / s / 1e6, 1), (got * size) / s / 1e6);
        }
      }
      const secs = (performance.now() - t0) / 1000;
      if (stopped) return;
      col.thr = { msgs: count / secs, mbps: (count * size) / secs / 1e6, secs, win };
      setField(col, 'mps', fmtNum(col.thr.msgs), col.thr.msgs);
      setField(col, 'mbps', fmtNum(col.thr.mbps, col.thr.mbps < 10 ? 2 : 1), col.thr.mbps);
      progress(col, 1);
    } finally {
      if (ws.readyState < 2) ws.close(1000, 'done');
    }
  }

  async function run() {
    const kinds = [...boxes.querySelectorAll('input:checked')].map((i) => i.value);
    if (!kinds.length) {
      summary.textContent = 'Pick at least one transport.';
      return;
    }
    const size = +sizeEl.value;
    let count = Math.max(1, Math.floor(+countEl.value || 0));
    const capped = Math.max(10, Math.floor(MAX_PHASE_BYTES / size));
    const note = count > capped ? `Shortened to ${capped} messages (${fmtBytes(capped * size)} per phase).` : '';
    count = Math.min(count, capped);

    stopped = false;
    runBtn.disabled = true;
    stopBtn.disabled = false;
    form.dataset.running = '';
    results.dataset.run = 'running';
    columns = kinds.map(column);
    results.replaceChildren(...columns.map((c) => c.el));
    summary.textContent = `${count} × ${fmtBytes(size)} per phase${note ? ` — ${note}` : ''}`;

    for (const col of columns) {
      if (stopped) {
        setState(col, 'stopped', 'skipped');
        continue;
      }
      try {
        await runOne(col, size, count);
        renderNow(); // figures final before the column says done
        if (stopped) setState(col, 'stopped', 'stopped');
        else {
          setState(col, 'done', 'done');
          col.fields.note.textContent = `${col.rtts.length} RTT samples · throughput: ${count} messages in ${fmtMs(col.thr.secs * 1000)}, window ${col.thr.win}`;
        }
      } catch (e) {
        col.error = e;
        setState(col, 'error', 'failed');
        col.fields.note.replaceChildren(h('span.bad', {}, e.message), ...columnHint(col.kind));
        col.fields.note.classList.add('bad');
      }
      renderNow();
      await sleep(50);
    }
    runBtn.disabled = false;
    stopBtn.disabled = true;
    summary.replaceChildren(...compare(columns, count, size));
    delete form.dataset.running;
    results.dataset.run = 'done'; // figures, columns and summary are final
  }

  /** Rich-text nodes explaining a failed `stream` column on this page (none otherwise). */
  function columnHint(kind) {
    const hint = kind === 'stream' ? streamHint(ctx) : '';
    return hint ? rich(` — ${hint}`) : [];
  }

  function compare(cols, count, size) {
    const done = cols.filter((c) => c.el.dataset.state === 'done');
    for (const c of done) c.stats = summarize(c.rtts);
    const base = done.find((c) => c.kind === 'native');
    const out = [`${count} × ${fmtBytes(size)}. `];
    if (!base || done.length < 2) {
      out.push(done.length ? 'Run together with the browser’s own WebSocket to compare.' : 'No transport finished.');
      return out;
    }
    for (const c of done) {
      if (c === base) continue;
      const r = c.stats.p50 / base.stats.p50;
      const tr = c.thr.mbps / base.thr.mbps;
      out.push(
        h('b', {}, TRANSPORTS[c.kind].label),
        `: RTT p50 ${fmtMs(c.stats.p50)} = ${r.toFixed(2)}× WebSocket’s ${fmtMs(base.stats.p50)}; throughput ${tr.toFixed(2)}× WebSocket’s. `,
      );
    }
    if (size <= 16384 && ctx.proto === 'h2' && ctx.chromium) {
      out.push(
        h('span.muted', {},
          'Small messages: Chromium holds HTTP/2 response data up to ≈1 ms before handing it to a fetch reader, so fetch transports pay ≈+1 ms per round trip; large messages and bulk transfer do not. '),
      );
    }
    out.push(h('span.muted', {}, `Timer resolution here: ${fmtMs(timerResolution())} (smallest step of performance.now() measured on this page${self.crossOriginIsolated ? '' : ', which is not cross-origin isolated'}).`));
    return out;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!('running' in form.dataset)) run();
  });
  stopBtn.addEventListener('click', () => {
    stopped = true;
    stopBtn.disabled = true;
  });
}
