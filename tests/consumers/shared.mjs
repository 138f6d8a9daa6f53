// Shared by the consumer tests: the packed tarball of wasm/pkg and throwaway projects that
// install it (under .work/, recreated each run). Tools run from this directory's node_modules
// (pinned by package-lock.json), found by Node's resolution from .work/NAME upwards.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pkg } from '../browser/harness.mjs';

export const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(here, '.work');

/** Runs a command to completion (5 min at most); throws with its output when it fails. */
export function run(command, args, cwd) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 300000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed (${r.error ?? r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return `${r.stdout}${r.stderr}`;
}

/** A tool's CLI from node_modules, run with this Node. */
export function tool(script, args, cwd) {
  return run(process.execPath, [path.join(here, 'node_modules', script), ...args], cwd);
}

let tarball;
/** `npm pack` of wasm/pkg, once per process: what `npm publish` would upload. */
export function packed() {
  if (!tarball) {
    if (!fs.existsSync(path.join(pkg, 'package.json'))) {
      throw new Error(`${pkg} is missing: run wasm/build.sh first (cargo xtask test --stage pkg)`);
    }
    fs.mkdirSync(work, { recursive: true });
    const out = run('npm', ['pack', '--json', '--pack-destination', work, pkg], here);
    tarball = path.join(work, JSON.parse(out.slice(out.indexOf('[')))[0].filename);
  }
  return tarball;
}

/** A fresh project .work/NAME with h2ws installed from the tarball and `files` copied in. */
export function project(name, files = []) {
  const dir = path.join(work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }, null, 2)}\n`);
  run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', packed()], dir);
  for (const [from, to] of files) fs.cpSync(path.join(here, 'apps', from), path.join(dir, to ?? from), { recursive: true });
  return dir;
}
