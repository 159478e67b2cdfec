// The proxy figures: WebSocket echo round trips and HTTP requests through each
// path to one backend — direct, a bare Node proxy, codeyard, nginx and
// configurable-http-proxy — with the same load generators in one run. All
// proxies run side by side (idle but for the one measured), and each test
// goes round the paths in turn, `rounds` times: load from other programs on
// the machine then falls on every path alike, and each figure is the median
// of its rounds. Besides wall-clock figures, the proxy's own CPU time per
// request or echo is read from /proc: it does not depend on who else runs.
import { join } from 'node:path';
import { Api } from '../../test/helpers/gateway-process.ts';
import { toolchainPaths } from '../../src/toolchain/paths.ts';
import { runForResult, startParty, treeCpuSeconds, type Party } from './processes.ts';
import { startChp, startNginx } from './peer-proxies.ts';

const HERE = import.meta.dirname;
export const BENCH_ADMIN_PASSWORD = 'codeyard-bench-admin-pw';

export type PathName = 'direct' | 'bare' | 'codeyard' | 'nginx' | 'chp';
export const PATHS: PathName[] = ['direct', 'bare', 'codeyard', 'nginx', 'chp'];

/** Connections of the WebSocket throughput phase, each in a closed loop of echoes. */
export const WS_CONNECTIONS = 8;
/** Connections of every HTTP load (the figure). */
const HTTP_CONNECTIONS = 50;

export interface WsResult { p50Us: number; p99Us: number; msgsPerSec: number; samples: number; proxyCpuUsPerMsg: number | null }
export interface HttpResult { requestsPerSec: number; p50Ms: number; p99Ms: number; errors: number; non2xx: number; bytesPerSec: number; proxyCpuUsPerRequest: number | null }
export interface PathResult { wsSmall: WsResult; wsLarge: WsResult; httpSmall: HttpResult; httpAsset: HttpResult }
export type ProxyResults = Record<PathName, PathResult> & { rounds: Record<PathName, PathResult>[] };

export interface ProxyBenchPlan {
  rounds: number;
  wsSmallCount: number;
  wsLargeCount: number;
  wsDurationMs: number;
  httpSeconds: number;
  /** The 19 MB asset needs longer than a 1 KiB answer for 50 connections to finish a few each. */
  httpAssetSeconds: number;
}

/** Where a path starts, and what a browser would send along (the gateway's session cookie). */
interface Target { base: string; headers: Record<string, string>; party?: Party }

/** The real workbench's largest JavaScript file: what an asset request through the proxy carries. */
export function workbenchAsset(): string {
  return join(toolchainPaths().codeServerDir, 'node_modules/code-server/lib/vscode/out/vs/code/browser/workbench/workbench.js');
}

export function startBackend(): Promise<Party<{ port: number }>> {
  return startParty('backend', process.execPath, [join(HERE, 'backend.ts'), workbenchAsset()]);
}

/** codeyard's gateway in front of the backend, logged in and with one sandbox whose endpoint is the backend. */
export async function startCodeyard(backendPort: number, nodeArgs: string[] = []): Promise<Target & { party: Party; api: Api; sandboxID: string }> {
  const party = await startParty<{ url: string }>('codeyard', process.execPath, [...nodeArgs, join(HERE, 'codeyard-gateway.ts'), String(backendPort), BENCH_ADMIN_PASSWORD]);
  try {
    const api = await Api.login(party.ready.url, 'admin', BENCH_ADMIN_PASSWORD);
    const created = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
    if (created.body?.state !== 'running') throw new Error(`bench sandbox did not start: ${created.text}`);
    const sandboxID = created.body.sandboxID as string;
    return { party, api, sandboxID, base: `${party.ready.url}/vscode-proxy/${sandboxID}`, headers: { cookie: api.headers.cookie! } };
  } catch (err) {
    await party.stop();
    throw err;
  }
}

async function startPath(path: PathName, backendPort: number): Promise<Target> {
  switch (path) {
    case 'direct': return { base: `http://127.0.0.1:${backendPort}`, headers: {} };
    case 'bare': {
      const party = await startParty<{ port: number }>('bare Node proxy', process.execPath, [join(HERE, 'bare-proxy.ts'), String(backendPort)]);
      return { party, base: `http://127.0.0.1:${party.ready.port}`, headers: {} };
    }
    case 'codeyard': return startCodeyard(backendPort);
    case 'nginx': { const party = await startNginx(backendPort); return { party, base: party.url, headers: {} }; }
    case 'chp': { const party = await startChp(backendPort); return { party, base: party.url, headers: {} }; }
  }
}

export function wsLoad<T>(job: Record<string, unknown>, timeoutMs: number): Promise<T> {
  return runForResult<T>('ws load', process.execPath, [join(HERE, 'ws-load.ts'), JSON.stringify(job)], timeoutMs);
}

function httpLoad(url: string, headers: Record<string, string>, seconds: number): Promise<Omit<HttpResult, 'proxyCpuUsPerRequest'>> {
  const job = { url, headers, connections: HTTP_CONNECTIONS, durationSeconds: seconds };
  return runForResult('http load', process.execPath, [join(HERE, 'http-load.ts'), JSON.stringify(job)], seconds * 1000 + 30_000);
}

/** Runs `load` and returns its result with the CPU the proxy spent per operation (µs). */
async function withProxyCpu<T>(target: Target, load: () => Promise<T>, operations: (r: T) => number): Promise<{ result: T; cpuUsPerOp: number | null }> {
  const pid = target.party?.pid;
  const before = pid ? treeCpuSeconds(pid) : 0;
  const result = await load();
  return { result, cpuUsPerOp: pid ? ((treeCpuSeconds(pid) - before) * 1e6) / Math.max(1, operations(result)) : null };
}

async function measure(path: PathName, target: Target, plan: ProxyBenchPlan): Promise<PathResult> {
  const origin = new URL(target.base).origin;
  const ws = { url: `${target.base.replace(/^http/, 'ws')}/echo`, headers: { ...target.headers, origin } };
  const wsTimeout = plan.wsDurationMs + 60_000;
  const wsRun = async (size: number, count: number): Promise<WsResult> => {
    const { result, cpuUsPerOp } = await withProxyCpu(target,
      () => wsLoad<Omit<WsResult, 'proxyCpuUsPerMsg'>>({ mode: 'roundtrip', ...ws, size, count, connections: WS_CONNECTIONS, durationMs: plan.wsDurationMs }, wsTimeout),
      // Warm-up and latency echoes, then the throughput phase's.
      (r) => 200 + r.samples + r.msgsPerSec * (plan.wsDurationMs / 1000));
    return { ...result, proxyCpuUsPerMsg: cpuUsPerOp };
  };
  const httpRun = async (what: string, seconds: number): Promise<HttpResult> => {
    const { result, cpuUsPerOp } = await withProxyCpu(target, () => httpLoad(`${target.base}/${what}`, target.headers, seconds), (r) => r.requestsPerSec * seconds);
    if (result.errors || result.non2xx) throw new Error(`${path}: HTTP /${what} had ${result.errors} errors and ${result.non2xx} non-2xx answers`);
    return { ...result, proxyCpuUsPerRequest: cpuUsPerOp };
  };
  return {
    wsSmall: await wsRun(64, plan.wsSmallCount),
    wsLarge: await wsRun(65536, plan.wsLargeCount),
    httpSmall: await httpRun('small', plan.httpSeconds),
    httpAsset: await httpRun('asset', plan.httpAssetSeconds),
  };
}

export async function proxyBench(plan: ProxyBenchPlan, log: (line: string) => void): Promise<ProxyResults> {
  const backend = await startBackend();
  const targets = new Map<PathName, Target>();
  try {
    for (const path of PATHS) targets.set(path, await startPath(path, backend.ready.port));
    const rounds: Record<PathName, PathResult>[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      const results = {} as Record<PathName, PathResult>;
      for (const path of PATHS) {
        const r = results[path] = await measure(path, targets.get(path)!, plan);
        log(`round ${round + 1}/${plan.rounds} ${path}: ws 64 B p50 ${r.wsSmall.p50Us.toFixed(0)} µs, ws 64 KiB p50 ${r.wsLarge.p50Us.toFixed(0)} µs, ` +
          `http 1 KiB ${r.httpSmall.requestsPerSec.toFixed(0)} req/s p50 ${r.httpSmall.p50Ms} ms, asset ${r.httpAsset.requestsPerSec.toFixed(1)} req/s`);
      }
      rounds.push(results);
    }
    return { ...medianOfRounds(rounds), rounds };
  } finally {
    for (const t of targets.values()) await t.party?.stop();
    await backend.stop();
  }
}

/** Every figure as the median of its rounds. */
function medianOfRounds(rounds: Record<PathName, PathResult>[]): Record<PathName, PathResult> {
  const med = (xs: (number | null)[]) => {
    const ns = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
    return ns.length ? ns[Math.floor(ns.length / 2)]! : null;
  };
  const combine = <T extends object>(items: T[]): T =>
    Object.fromEntries(Object.keys(items[0]!).map((k) => [k, med(items.map((i) => (i as Record<string, number | null>)[k]!))])) as T;
  return Object.fromEntries(PATHS.map((path) => [path, {
    wsSmall: combine(rounds.map((r) => r[path].wsSmall)),
    wsLarge: combine(rounds.map((r) => r[path].wsLarge)),
    httpSmall: combine(rounds.map((r) => r[path].httpSmall)),
    httpAsset: combine(rounds.map((r) => r[path].httpAsset)),
  }])) as Record<PathName, PathResult>;
}
