// Network panel (issue 14): cut this page's HTTP/2 connection — the server drops it on request
// (POST /demo/drop-connection: 202, then gone without GOAWAY) — and watch resumable sockets
// carry on. The server's /.h2ws/stats counts the re-attaches (`resumes`).

import { $ } from './dom.js';

const MAX_LINES = 20;

async function stats() {
  const r = await fetch('/.h2ws/stats', { cache: 'no-store' });
  return r.json();
}

export function initNetwork() {
  const button = $('#net-cut');
  const status = $('#net-status');
  const log = $('#net-log');
  let cuts = 0;
  const line = (text) => {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} — ${text}`;
    log.prepend(li);
    while (log.children.length > MAX_LINES) log.lastChild.remove();
  };
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const before = await stats();
      const r = await fetch('/demo/drop-connection', { method: 'POST', cache: 'no-store' });
      if (r.status !== 202) {
        line(`the server did not drop it: ${r.status} ${(await r.text()).trim()}`);
        return;
      }
      cuts += 1;
      line(`connection dropped (cut ${cuts})`);
      status.dataset.state = 'connecting';
      status.textContent = 'resuming…';
      // Re-attaches are counted as they happen; look for a few seconds.
      let resumed = 0;
      let now = before;
      for (let i = 0; i < 20; i++) {
        await new Promise((done) => setTimeout(done, 250));
        try {
          now = await stats();
        } catch {
          continue; // the new connection is still being made
        }
        resumed = (now.resumes ?? 0) - (before.resumes ?? 0);
        if (resumed > 0 && i >= 3) break;
      }
      const refused = (now.resumes_refused ?? 0) - (before.resumes_refused ?? 0);
      line(`${resumed} socket${resumed === 1 ? '' : 's'} resumed${refused ? `, ${refused} refused` : ''}`);
      status.dataset.state = refused ? 'bad' : 'open';
      status.textContent = `${cuts} cut${cuts === 1 ? '' : 's'} · ${now.resumes ?? 0} resumes on the server`;
    } catch (e) {
      line(`cut failed: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
}
