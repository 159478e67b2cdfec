// Scale: what idle WebSockets cost the gateway, and how many real sandboxes
// this machine admits before the memory admission check refuses the next.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Api, sandboxProcesses, startGatewayProcess } from '../../test/helpers/gateway-process.ts';
import { loadConfig } from '../../src/config.ts';
import { cpuSeconds, rssKiB, sleep } from './processes.ts';
import { startBackend, startCodeyard } from './proxy-bench.ts';

const HERE = import.meta.dirname;
/** Idle clients hold their sockets at most this long, whatever happens to the bench. */
const IDLE_HOLD_MS = 300_000;
/** Never start more real sandboxes than this, whatever the admission rule allows. */
const SANDBOX_CAP = 16;
/** What one idle sandbox is budgeted at when checking there is room to measure (MiB). */
const SANDBOX_BUDGET_MB = 400;

export interface IdleSocketPoint { sockets: number; rssMiB: number; cpuPercent: number }
export interface AdmissionResults {
  /** What the rule allows with the default config on this machine. */
  computed: { count: number; memoryShare: number; defaultMemoryMB: number; totalMiB: number };
  measured: { running: number; refusal: string; gatewayRssMiB: number; sandboxRssMiB: number; sandboxCgroupMiB: number | null } | { skipped: string };
}

export async function idleSocketsBench(windowMs: number, log: (line: string) => void): Promise<IdleSocketPoint[]> {
  const backend = await startBackend();
  const codeyard = await startCodeyard(backend.ready.port);
  const clients: ChildProcess[] = [];
  try {
    const pid = codeyard.party.pid;
    const ws = { url: `${codeyard.base.replace(/^http/, 'ws')}/idle`, headers: { ...codeyard.headers, origin: new URL(codeyard.base).origin } };
    const points: IdleSocketPoint[] = [];
    let open = 0;
    for (const target of [0, 10, 1000]) {
      if (target > open) {
        clients.push(await openIdle(ws, target - open));
        open = target;
      }
      await sleep(1000); // let the handshakes' garbage go
      const cpu0 = cpuSeconds(pid);
      await sleep(windowMs);
      const cpuPercent = ((cpuSeconds(pid) - cpu0) / (windowMs / 1000)) * 100;
      points.push({ sockets: open, rssMiB: rssKiB(pid) / 1024, cpuPercent });
      log(`idle WebSockets: ${open} open, gateway RSS ${(rssKiB(pid) / 1024).toFixed(0)} MiB, CPU ${cpuPercent.toFixed(1)} %`);
    }
    return points;
  } finally {
    const codes = await Promise.all(clients.map((c) => {
      const exited = c.exitCode !== null ? c.exitCode : new Promise<number | null>((r) => c.once('exit', r));
      c.stdin!.end();
      return exited;
    }));
    if (codes.some((code) => code !== 0)) log('warning: the gateway closed some idle WebSockets during the measurement');
    await codeyard.party.stop();
    await backend.stop();
  }
}

/** A ws-load process holding `count` idle connections; resolves once all are open. */
function openIdle(ws: { url: string; headers: Record<string, string> }, count: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(HERE, 'ws-load.ts'), JSON.stringify({ mode: 'idle', ...ws, count, holdMs: IDLE_HOLD_MS })], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`idle WebSockets did not open in 60 s:\n${err}`)); }, 60_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      if ((JSON.parse(line) as { open: number }).open !== count) return reject(new Error(`opened fewer than ${count}: ${line}`));
      resolve(child);
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`idle client exited (${code}):\n${err}`)); });
  });
}

/** What the admission rule allows with the default config on this machine. */
export function admissionComputed(): AdmissionResults['computed'] {
  const { sandboxes } = loadConfig({ env: {}, flags: { dataDir: '/nonexistent-codeyard-bench' } });
  const totalMiB = meminfoKiB('MemTotal') / 1024;
  return {
    count: Math.floor((totalMiB * sandboxes.memoryShare) / sandboxes.defaultMemoryMB),
    memoryShare: sandboxes.memoryShare, defaultMemoryMB: sandboxes.defaultMemoryMB, totalMiB: Math.round(totalMiB),
  };
}

/**
 * Real VS Code sandboxes on a gateway with the default config, created until
 * the admission check refuses one (bounded by SANDBOX_CAP and by the memory
 * actually available); then the memory one idle sandbox uses.
 */
export async function admissionBench(log: (line: string) => void): Promise<AdmissionResults> {
  const computed = admissionComputed();
  if (computed.count + 1 > SANDBOX_CAP) return { computed, measured: { skipped: `the rule allows ${computed.count}, more than the bench's cap of ${SANDBOX_CAP} real sandboxes` } };
  const availableMiB = meminfoKiB('MemAvailable') / 1024;
  if (availableMiB < (computed.count * SANDBOX_BUDGET_MB) + 2048) return { computed, measured: { skipped: `only ${Math.round(availableMiB)} MiB available` } };
  const gw = await startGatewayProcess({ env: { CODEYARD_LOG_LEVEL: 'warn' } });
  try {
    const api = await Api.login(gw.url);
    const ids: string[] = [];
    let refusal = '';
    for (let i = 0; i <= computed.count && !refusal; i++) {
      const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
      if (r.status === 503) refusal = r.body.message;
      else if (r.body?.state === 'running') ids.push(r.body.sandboxID);
      else throw new Error(`sandbox ${i + 1} did not start: ${r.text}`);
    }
    log(`admission: ${ids.length} sandboxes running; next: ${refusal || 'admitted (no refusal)'}`);
    await sleep(5000); // let them settle into idle
    const rss = ids.map((id) => sandboxProcesses(id).reduce((sum, pid) => sum + rssKiB(pid), 0) / 1024);
    const cgroups = ids.map((id) => cgroupMiB(id)).filter((x): x is number => x !== null);
    return {
      computed,
      measured: {
        running: ids.length, refusal, gatewayRssMiB: rssKiB(gw.process.pid!) / 1024,
        sandboxRssMiB: mean(rss), sandboxCgroupMiB: cgroups.length ? mean(cgroups) : null,
      },
    };
  } finally {
    await gw.destroy();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function meminfoKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** A local sandbox's charged memory (cgroup v1 or v2), page cache included. */
function cgroupMiB(sandboxID: string): number | null {
  for (const file of [`/sys/fs/cgroup/memory/codeyard/${sandboxID}/memory.usage_in_bytes`, `/sys/fs/cgroup/codeyard/${sandboxID}/memory.current`]) {
    try { return Number(readFileSync(file, 'utf8')) / 1048576; } catch { /* the other layout */ }
  }
  return null;
}
