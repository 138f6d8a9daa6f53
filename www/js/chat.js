// Chat room on /ws/chat. The server sends every message to every socket on the path (the sender
// included), whatever its transport; each message carries how its sender was connected.

import { $, h, rich } from './dom.js';
import { TRANSPORTS, openSocket, opened, closeText, streamHint } from './sockets.js';
import { pageProtocol, protoName, socketLost, socketBack } from './diagnostics.js';

const PATH = '/ws/chat';
const MAX_LINES = 500;

export function initChat(ctx) {
  const nameEl = $('#chat-name');
  const transportEl = $('#chat-transport');
  const connectBtn = $('#chat-connect-btn');
  const status = $('#chat-status');
  const log = $('#chat-log');
  const input = $('#chat-input');
  const sendBtn = $('#chat-send-btn');

  const saved = sessionStorage.getItem('h2ws-chat-name');
  nameEl.value = saved ?? `tab-${Math.random().toString(36).slice(2, 6)}`;
  for (const [kind, t] of Object.entries(TRANSPORTS)) {
    // `stream` where the browser cannot stream request bodies would only fail: greyed out.
    const off = (t.needsPkg && !ctx.pkg) || (kind === 'stream' && !ctx.streams);
    transportEl.append(h('option', { value: kind, disabled: off }, t.label));
  }
  transportEl.value = ctx.pkg ? (ctx.defaultTransport ?? 'stream') : 'native';

  let ws = null;
  let kind = null;
  const pending = new Map(); // id → <li> of own messages not yet back from the server

  function setStatus(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  function setConnected(on) {
    input.disabled = sendBtn.disabled = !on;
    nameEl.disabled = transportEl.disabled = on;
    connectBtn.textContent = on ? 'Disconnect' : 'Connect';
    connectBtn.classList.toggle('secondary', on);
    if (on) input.focus();
  }

  function line(el) {
    log.querySelector('.empty')?.remove();
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(el);
    while (log.children.length > MAX_LINES) log.firstElementChild.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  const sys = (text, cls = '') => line(h(`li.sys${cls}`, {}, rich(text)));

  function badge(transport, http) {
    const t = TRANSPORTS[transport];
    return h('span.badges', {},
      h(`span.badge.t-${t ? transport : 'other'}`, { title: t?.about ?? '' }, t?.badge ?? String(transport ?? '?')),
      http ? h('span.badge.proto', { title: 'the sender page’s HTTP version' }, protoName(http)) : null,
    );
  }

  function onMessage(ev) {
    let m;
    try {
      m = typeof ev.data === 'string' ? JSON.parse(ev.data) : null;
    } catch {}
    if (!m || typeof m !== 'object' || m.v !== 1) {
      // Someone else on /ws/chat (a tool, a test): show it as it is.
      const text = typeof ev.data === 'string' ? ev.data : `[binary, ${ev.data.byteLength ?? ev.data.size} bytes]`;
      line(h('li.msg.other', {}, h('div.meta', {}, h('span.who', {}, 'unknown sender')), h('div.text', {}, text)));
      return;
    }
    if (m.kind === 'join' || m.kind === 'leave') {
      line(h('li.sys.presence', {}, h('b', {}, String(m.name)), m.kind === 'join' ? ' joined via ' : ' left', m.kind === 'join' ? badge(m.transport, m.http) : null));
      return;
    }
    const mine = pending.get(m.id);
    if (mine) {
      pending.delete(m.id);
      mine.classList.remove('pending');
      mine.dataset.delivered = '';
      mine.querySelector('.state').textContent = `delivered in ${(performance.now() - mine._sent).toFixed(1)} ms`;
      return;
    }
    line(
      h('li.msg.other', { dataset: { transport: m.transport } },
        h('div.meta', {}, h('span.who', {}, String(m.name)), badge(m.transport, m.http), h('time', {}, new Date(m.at).toLocaleTimeString())),
        h('div.text', {}, String(m.text)),
      ),
    );
  }

  async function connect() {
    kind = transportEl.value;
    const name = nameEl.value.trim() || 'anonymous';
    sessionStorage.setItem('h2ws-chat-name', name);
    setStatus('connecting…', 'connecting');
    connectBtn.disabled = true;
    try {
      ws = openSocket(kind, PATH, ctx.pkg, { binaryType: 'arraybuffer' });
      const sock = ws;
      let wasOpen = false;
      sock.addEventListener('message', onMessage);
      sock.addEventListener('close', (ev) => {
        if (ws !== sock) return;
        ws = null;
        setConnected(false);
        setStatus(`closed ${ev.code}`, ev.code === 1000 ? 'closed' : 'bad');
        sys(`Disconnected: ${ev.code} ${closeText(ev.code)}${ev.reason ? ` (“${ev.reason}”)` : ''}.`, ev.wasClean ? '' : '.bad');
        for (const li of pending.values()) li.querySelector('.state').textContent = 'not delivered';
        pending.clear();
        if (ev.code === 1006) socketLost('Chat', wasOpen);
      });
      await opened(sock);
      wasOpen = true;
      socketBack();
      setConnected(true);
      setStatus(`${TRANSPORTS[kind].badge} · open`, 'open');
      sys(`Connected to ${PATH} with ${TRANSPORTS[kind].label}; this page came over ${protoName(pageProtocol())}.`);
      sock.send(JSON.stringify({ v: 1, kind: 'join', name, transport: kind, http: pageProtocol() }));
    } catch (e) {
      setStatus('failed', 'bad');
      const hint = kind === 'stream' && streamHint(ctx) ? ` ${streamHint(ctx)}` : '';
      sys(`Could not connect with ${TRANSPORTS[kind].label}: ${e.message}.${hint}`, '.bad');
      if (ws) ws = null;
      setConnected(false);
    } finally {
      connectBtn.disabled = false;
    }
  }

  function disconnect() {
    if (!ws) return;
    try {
      ws.send(JSON.stringify({ v: 1, kind: 'leave', name: nameEl.value.trim(), transport: kind }));
    } catch {}
    ws.close(1000, 'bye');
  }

  $('#chat-connect').addEventListener('submit', (e) => {
    e.preventDefault();
    if (ws) disconnect();
    else connect();
  });

  $('#chat-send').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !ws || ws.readyState !== 1) return;
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const msg = { v: 1, kind: 'msg', id, name: nameEl.value.trim(), transport: kind, http: pageProtocol(), text, at: Date.now() };
    const li = h('li.msg.mine.pending', { dataset: { transport: kind } },
      h('div.meta', {}, h('span.who', {}, 'you'), badge(kind, msg.http), h('time', {}, new Date(msg.at).toLocaleTimeString()), h('span.state', {}, 'sending…')),
      h('div.text', {}, text),
    );
    li._sent = performance.now();
    pending.set(id, li);
    line(li);
    ws.send(JSON.stringify(msg));
    input.value = '';
  });

  addEventListener('pagehide', () => disconnect());
}
