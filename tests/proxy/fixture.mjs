// Real reverse proxies (HAProxy, nginx) and other daemons (redis-server, more devservers) as
// child processes of a node test, on ephemeral 127.0.0.1 ports. The same API as the Rust
// fixture devserver/tests/common/proxy.rs:
//
//   const front = await freePort();
//   const conf = render(deploy('haproxy/haproxy.cfg'), [
//     ['bind :443', `bind 127.0.0.1:${front}`], ['/etc/haproxy/h2ws.pem', pem], ...]);
//   const proxy = await startHaproxy(conf, [front]);   // resolves when port `front` accepts
//   ... proxy.logs() in failure messages ...
//   await proxy.stop();
//
// Why: the recipes in deploy/ are what users copy, so the tests run exactly those files,
// changed only by literal substitutions (ports, addresses, certificate and log paths), each of
// which must match at least once; a recipe edited so that one no longer applies fails loudly.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HAPROXY = '/usr/sbin/haproxy';
export const NGINX = '/usr/sbin/nginx';
export const REDIS = '/usr/bin/redis-server';
/** How long a child may take until its ports accept connections. */
export const START_LIMIT_MS = 15000;

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');

/** The repository's deploy/ directory joined with `rel` (e.g. 'nginx/nginx.conf'). */
export function deploy(rel) {
  return path.join(root, 'deploy', rel);
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The template's text with every [from, to] replaced (all occurrences); throws if one matches nothing. */
export function render(templatePath, substs) {
  let text = readFileSync(templatePath, 'utf8');
  for (const [from, to] of substs) {
    if (!text.includes(from)) {
      throw new Error(`${templatePath}: substitution ${JSON.stringify(from)} → ${JSON.stringify(to)} matches nothing (recipe changed?)`);
    }
    text = text.split(from).join(to);
  }
  return text;
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

/**
 * Spawns `command args` with cwd and logs in a fresh temp dir (`setup(dir)` may write files
 * there first and return extra args), waits up to START_LIMIT_MS until every port accepts, and
 * resolves with { dir, child, ports, logs(), stop() }. stop() sends SIGKILL and waits for the exit.
 */
export async function startService(name, command, args, ports, setup = () => []) {
  const dir = mkdtempSync(path.join(tmpdir(), `h2ws-${name}-`));
  const extra = setup(dir) ?? [];
  const out = openSync(path.join(dir, 'stdout.log'), 'w');
  const err = openSync(path.join(dir, 'stderr.log'), 'w');
  const child = spawn(command, [...args, ...extra], { cwd: dir, stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  let exitInfo = null;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { exitInfo = code ?? signal; resolve(); }));
  child.on('error', (e) => { exitInfo = String(e); });
  const svc = {
    name,
    dir,
    child,
    ports,
    /** stdout, stderr and every *.log of the service (tails), for failure messages. */
    logs() {
      let text = '';
      for (const f of readdirSync(dir).filter((f) => f.endsWith('.log')).sort()) {
        const body = readFileSync(path.join(dir, f), 'utf8');
        text += `--- ${name} ${f}\n${body.slice(-8000)}\n`;
      }
      return text;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      if (!process.env.H2WS_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + START_LIMIT_MS;
  for (const port of ports) {
    for (;;) {
      if (exitInfo !== null) {
        const logs = svc.logs();
        await svc.stop();
        throw new Error(`${name} exited (${exitInfo}) before listening on ${port}:\n${logs}`);
      }
      if (await canConnect(port)) break;
      if (Date.now() > deadline) {
        const logs = svc.logs();
        await svc.stop();
        throw new Error(`${name} not listening on ${port} after ${START_LIMIT_MS} ms:\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return svc;
}

/** HAProxy in the foreground (-db) with this config text; the config is checked (-c) first. */
export async function startHaproxy(config, ports) {
  return startService('haproxy', HAPROXY, ['-db'], ports, (dir) => {
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, config);
    const check = spawnSync(HAPROXY, ['-c', '-f', file], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`haproxy -c rejects the config:\n${check.stdout}${check.stderr}`);
    return ['-f', file];
  });
}

/**
 * nginx with this config text: prefix = its temp dir, one process without a master (killing it
 * leaves no orphaned workers), pid and error log in the temp dir; the config is checked (-t) first.
 */
export async function startNginx(config, ports) {
  return startService('nginx', NGINX, [], ports, (dir) => {
    const file = path.join(dir, 'nginx.conf');
    writeFileSync(file, config);
    const globals = `daemon off; master_process off; pid ${path.join(dir, 'nginx.pid')}; error_log ${path.join(dir, 'error.log')} info;`;
    const args = ['-p', dir, '-c', file, '-g', globals];
    const check = spawnSync(NGINX, ['-t', '-q', ...args], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx -t rejects the config:\n${check.stdout}${check.stderr}`);
    return args;
  });
}

/** redis-server on 127.0.0.1:`port`, no persistence. */
export async function startRedis(port) {
  return startService('redis', REDIS, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], [port],
    (dir) => ['--dir', dir]);
}

/** `host:port` of an `http(s)://host:port` origin. */
function hostPort(origin) {
  return new URL(origin).host;
}

/**
 * deploy/haproxy/haproxy.cfg in front of a devserver from tests/browser/harness.mjs
 * (`startDevserver([], { http: true })`), with `backend` (h2ws_h2, h2ws_h2c or h2ws_http1) as
 * the default back end. Resolves with the service plus `origin` (https://127.0.0.1:PORT).
 */
export async function startHaproxyRecipe(server, backend = 'h2ws_h2') {
  const front = await freePort();
  const conf = render(deploy('haproxy/haproxy.cfg'), [
    ['bind :443', `bind 127.0.0.1:${front}`],
    ['/etc/haproxy/h2ws.pem', server.certPem],
    ['127.0.0.1:8443', hostPort(server.origin)],
    ['127.0.0.1:8080', hostPort(server.httpOrigin)],
    ['default_backend h2ws_h2', `default_backend ${backend}`],
  ]);
  const svc = await startHaproxy(conf, [front]);
  return Object.assign(svc, { origin: `https://127.0.0.1:${front}` });
}

/** deploy/nginx/nginx.conf in front of such a devserver; the same result shape. */
export async function startNginxRecipe(server) {
  const front = await freePort();
  const conf = render(deploy('nginx/nginx.conf'), [
    ['listen 443 ', `listen 127.0.0.1:${front} `],
    ['/etc/nginx/h2ws.pem', server.certPem],
    ['/etc/nginx/h2ws.key', server.certPem],
    ['127.0.0.1:8080', hostPort(server.httpOrigin)],
    ['/var/log/nginx/h2ws.access.log', 'access.log'],
  ]);
  const svc = await startNginx(conf, [front]);
  return Object.assign(svc, { origin: `https://127.0.0.1:${front}` });
}
