// Starts the real gateway as a child process (`codeyard serve`) on a free port
// with a fresh data dir, and gives tests a logged-in API client for it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Cgroups } from '../../src/runtime/local/cgroups.ts';
import { localCgroupName } from '../../src/runtime/local/local-runtime.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const ADMIN_PASSWORD = 'codeyard-test-admin-pw';

export interface RunningGateway {
  url: string;
  dataDir: string;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
  /** Deletes every sandbox (they outlive a stopped gateway by design), stops, removes the data dir. */
  destroy: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A short data dir under /tmp: sandbox sockets live in it and sun_path is 108 bytes. */
export function tempDataDir(): string {
  return mkdtempSync('/tmp/cy-');
}

/** A real gateway process; `config` (YAML) is written to <dataDir>/codeyard.yaml first. */
export async function startGatewayProcess(opts: { dataDir?: string; config?: string; env?: Record<string, string>; args?: string[]; port?: number; scheme?: 'http' | 'https' } = {}): Promise<RunningGateway> {
  const dataDir = opts.dataDir ?? tempDataDir();
  if (opts.config !== undefined) writeFileSync(join(dataDir, 'codeyard.yaml'), opts.config);
  const port = opts.port ?? await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'serve', '--data-dir', dataDir, '--port', String(port), ...(opts.args ?? [])], {
    env: { ...process.env, CODEYARD_ADMIN_PASSWORD: ADMIN_PASSWORD, CODEYARD_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const url = `${opts.scheme ?? 'http'}://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err); else resolve();
    };
    const timer = setTimeout(() => { child.kill('SIGKILL'); finish(new Error(`gateway did not start in 30s:\n${out}`)); }, 30_000);
    child.once('exit', (code) => finish(new Error(`gateway exited with ${code}:\n${out}`)));
    const poll = async () => {
      if (settled) return;
      try {
        if ((await fetch(`${url}/healthz`)).ok) return finish();
      } catch { /* not yet */ }
      setTimeout(poll, 100);
    };
    void poll();
  });
  child.removeAllListeners('exit');
  return {
    url, dataDir, process: child, output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
    destroy: async () => {
      if (child.exitCode === null) {
        const api = await Api.login(url).catch(() => undefined);
        const list = api ? (await api.call('GET', '/api/sandboxes')).body ?? [] : [];
        for (const s of list) await api!.call('DELETE', `/api/sandboxes/${s.sandboxID}`);
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      for (const entry of (() => { try { return readdirSync(join(dataDir, 'sandboxes')); } catch { return []; } })()) {
        for (const pid of sandboxProcesses(entry, dataDir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
        for (const group of [entry, localCgroupName(dataDir, entry)]) await new Cgroups().removeFor(group);
      }
      removeDataDir(dataDir);
    },
  };
}

export function removeDataDir(dir: string): void {
  // A data dir with hard workspace limits has its workspaces' filesystem mounted inside it: unmount first.
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('/bin/umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
}

/** A JSON API client holding a session cookie or an API key. */
export class Api {
  readonly base: string;
  headers: Record<string, string>;

  constructor(base: string, headers: Record<string, string> = {}) {
    this.base = base;
    this.headers = headers;
  }

  static async login(base: string, username = 'admin', password = ADMIN_PASSWORD): Promise<Api> {
    const res = await fetch(`${base}/api/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
    });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    return new Api(base, { cookie });
  }

  get sessionToken(): string {
    return this.headers.cookie!.split('=')[1]!;
  }

  async call(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
    const res = await fetch(this.base + path, {
      method,
      headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...extraHeaders },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
    return { status: res.status, body: parsed, text };
  }
}

/**
 * Every host process of a local sandbox: the bwrap processes whose arguments name
 * its directory, and everything living in the PID namespace they created.
 */
export function sandboxProcesses(sandboxID: string, dataDir = ''): number[] {
  const hostNs = readlinkSync('/proc/self/ns/pid');
  const procs = listProcs();
  // Spawned processes carry CODEYARD_SANDBOX=<dataDir>/sandboxes/<id> in their environment (bwrap's command line names no host path).
  const dir = `${dataDir}/sandboxes/${sandboxID}`;
  const mentioning = procs.filter((p) => p.cmdline.includes(`${dir}/`) || p.environ.includes(`${dir}\0`));
  const namespaces = new Set(mentioning.map((p) => p.pidNs).filter((ns) => ns && ns !== hostNs));
  return procs.filter((p) => mentioning.includes(p) || namespaces.has(p.pidNs)).map((p) => p.pid);
}

function listProcs(): { pid: number; cmdline: string; environ: string; pidNs: string }[] {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push({
        pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8'),
        environ: (() => { try { return readFileSync(`/proc/${entry}/environ`, 'utf8'); } catch { return ''; } })(),
        pidNs: readlinkSync(`/proc/${entry}/ns/pid`),
      });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** Sends a WebSocket upgrade request; resolves with 101 or the status the server refused it with. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers,
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode ?? 0); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
}

