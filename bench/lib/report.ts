// One markdown table for every figure of a run, each with its reference and
// target, and the machine it ran on.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { WS_CONNECTIONS, type ProxyResults, type PathName } from './proxy-bench.ts';
import type { StartupResults } from './startup-bench.ts';
import type { DockerStartupResults } from './docker-startup.ts';
import type { AdmissionResults, IdleSocketPoint } from './scale-bench.ts';
import type { NetnsResults } from './netns-bench.ts';
import { NGINX } from './peer-proxies.ts';

export interface Row {
  figure: string;
  codeyard: string;
  /** Direct to the backend, or the baseline without the gateway. */
  direct?: string;
  bare?: string;
  nginx?: string;
  chp?: string;
  /** codeyard against the reference the target names. */
  ratio?: string;
  target?: string;
  met?: boolean;
}

export interface BenchResults {
  proxy?: ProxyResults;
  startup?: StartupResults | { skipped: string };
  docker?: DockerStartupResults | { skipped: string };
  idleSockets?: IdleSocketPoint[];
  admission?: AdmissionResults;
  netns?: NetnsResults;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const us = (x: number) => `${x.toFixed(0)} µs`;
const msg = (x: number) => x.toFixed(0);
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const times = (x: number) => `${x.toFixed(2)}×`;

export function rows(r: BenchResults): Row[] {
  const out: Row[] = [];
  if (r.proxy) out.push(...proxyRows(r.proxy));
  if (r.startup) out.push(...startupRows(r.startup));
  if (r.docker) out.push(...dockerRows(r.docker));
  if (r.idleSockets) out.push(...idleRows(r.idleSockets));
  if (r.admission) out.push(...admissionRows(r.admission));
  if (r.netns) out.push(...netnsRows(r.netns));
  return out;
}

/** The network namespace against sharing the host's network (runtime.local.network: host), same run, interleaved. */
function netnsRows(n: NetnsResults): Row[] {
  const rounds = n.namespace.createToRunningMs.length;
  const create = { ns: median(n.namespace.createToRunningMs), host: median(n.host.createToRunningMs) };
  const p50 = { ns: median(n.namespace.http.map((h) => h.p50Ms)), host: median(n.host.http.map((h) => h.p50Ms)) };
  const rps = { ns: median(n.namespace.http.map((h) => h.requestsPerSec)), host: median(n.host.http.map((h) => h.requestsPerSec)) };
  const mean = { ns: median(n.namespace.http.map((h) => h.meanMs)), host: median(n.host.http.map((h) => h.meanMs)) };
  return [
    { figure: `local: create → running, own network vs host's (median of ${rounds})`, codeyard: sec(create.ns), direct: `${sec(create.host)} (network: host)`, ratio: `${times(create.ns / create.host)} host` },
    { figure: `local: port preview HTTP 1 KiB p50, own network vs host's (median of ${rounds})`, codeyard: `${msg(p50.ns)} ms`, direct: `${msg(p50.host)} ms (network: host)`, ratio: `${times(p50.ns / Math.max(p50.host, 1))} host` },
    { figure: `local: port preview HTTP 1 KiB mean latency, own network vs host's (median of ${rounds})`, codeyard: `${mean.ns.toFixed(2)} ms`, direct: `${mean.host.toFixed(2)} ms (network: host)`, ratio: `${times(mean.ns / mean.host)} host` },
    { figure: `local: port preview HTTP 1 KiB req/s, own network vs host's (median of ${rounds})`, codeyard: rps.ns.toFixed(0), direct: `${rps.host.toFixed(0)} (network: host)`, ratio: `${times(rps.ns / rps.host)} host` },
  ];
}

function proxyRows(p: ProxyResults): Row[] {
  const each = (f: (r: ProxyResults[PathName]) => number, fmt: (x: number) => string) =>
    ({ codeyard: fmt(f(p.codeyard)), direct: fmt(f(p.direct)), bare: fmt(f(p.bare)), nginx: fmt(f(p.nginx)), chp: fmt(f(p.chp)) });
  const cpuFmt = (x: number | null) => (x === null ? '—' : `${x.toFixed(0)} µs`);
  const eachCpu = (f: (r: ProxyResults[PathName]) => number | null) =>
    ({ codeyard: cpuFmt(f(p.codeyard)), direct: '—', bare: cpuFmt(f(p.bare)), nginx: cpuFmt(f(p.nginx)), chp: cpuFmt(f(p.chp)) });
  const ratioOf = (a: number | null, b: number | null, what: string) => (a === null || b === null ? undefined : `${times(a / b)} ${what}`);
  const out: Row[] = [];
  for (const [key, label] of [['wsSmall', '64 B'], ['wsLarge', '64 KiB']] as const) {
    const p50 = (r: ProxyResults[PathName]) => r[key].p50Us;
    const p99 = (r: ProxyResults[PathName]) => r[key].p99Us;
    const c50 = p50(p.codeyard);
    out.push({
      figure: `WebSocket ${label} echo round trip, p50`, ...each(p50, us), ratio: `${times(c50 / p50(p.direct))} direct`,
      target: '≤ 1.3× direct, ≤ nginx, ≤ CHP', met: c50 <= 1.3 * p50(p.direct) && c50 <= p50(p.nginx) && c50 <= p50(p.chp),
    });
    out.push({
      figure: `WebSocket ${label} echo round trip, p99`, ...each(p99, us), ratio: `${times(p99(p.codeyard) / p99(p.direct))} direct`,
      target: '≤ 2× direct', met: p99(p.codeyard) <= 2 * p99(p.direct),
    });
    const rate = (r: ProxyResults[PathName]) => r[key].msgsPerSec;
    out.push({ figure: `WebSocket ${label} echoes/s (${WS_CONNECTIONS} connections)`, ...each(rate, msg), ratio: `${times(rate(p.codeyard) / rate(p.direct))} direct` });
    const cpu = (r: ProxyResults[PathName]) => r[key].proxyCpuUsPerMsg;
    out.push({ figure: `WebSocket ${label}: proxy CPU per echo`, ...eachCpu(cpu), ratio: ratioOf(cpu(p.codeyard), cpu(p.bare), 'bare Node') });
  }
  for (const [key, label] of [['httpSmall', '1 KiB response'], ['httpAsset', 'workbench.js (19 MB)']] as const) {
    const rps = (r: ProxyResults[PathName]) => r[key].requestsPerSec;
    const p50 = (r: ProxyResults[PathName]) => r[key].p50Ms;
    const p99 = (r: ProxyResults[PathName]) => r[key].p99Ms;
    const perSec = (x: number) => (x < 100 ? x.toFixed(1) : x.toFixed(0));
    const msFmt = (x: number) => `${x} ms`;
    out.push({
      figure: `HTTP ${label}: requests/s, 50 connections`, ...each(rps, perSec), ratio: `${times(rps(p.codeyard) / rps(p.chp))} CHP`,
      target: '≥ CHP', met: rps(p.codeyard) >= rps(p.chp),
    });
    out.push({
      figure: `HTTP ${label}: p50 latency`, ...each(p50, msFmt), ratio: `${times(p50(p.codeyard) / p50(p.bare))} bare Node`,
      target: '≤ 1.3× bare Node proxy', met: p50(p.codeyard) <= 1.3 * p50(p.bare),
    });
    out.push({ figure: `HTTP ${label}: p99 latency`, ...each(p99, msFmt), ratio: `${times(p99(p.codeyard) / p99(p.direct))} direct` });
    const cpu = (r: ProxyResults[PathName]) => r[key].proxyCpuUsPerRequest;
    out.push({ figure: `HTTP ${label}: proxy CPU per request`, ...eachCpu(cpu), ratio: ratioOf(cpu(p.codeyard), cpu(p.bare), 'bare Node') });
  }
  return out;
}

function startupRows(s: StartupResults | { skipped: string }): Row[] {
  if ('skipped' in s) return [{ figure: 'sandbox start (local runtime)', codeyard: `skipped: ${s.skipped}` }];
  const n = s.createToRunningMs.length;
  const out: Row[] = [
    {
      figure: `local: create → running (median of ${n})`, codeyard: sec(median(s.createToRunningMs)),
      direct: `${sec(median(s.baselineCodeServerMs))} (code-server by hand → /healthz)`,
      ratio: `${times(median(s.createToRunningMs) / median(s.baselineCodeServerMs))} by hand`, target: '≤ 1 s', met: median(s.createToRunningMs) <= 1000,
    },
    { figure: `local: stopped → running (median of ${n})`, codeyard: sec(median(s.stoppedToRunningMs)), target: '≤ 1 s', met: median(s.stoppedToRunningMs) <= 1000 },
  ];
  if (s.createToUsableMs && s.stoppedToUsableMs) {
    out.push({
      figure: `local: create → workbench usable in Chromium (median of ${n})`, codeyard: sec(median(s.createToUsableMs)),
      direct: s.baselineWorkbenchMs === null ? undefined : `${sec(s.baselineWorkbenchMs)} (code-server by hand, opened directly)`,
      ratio: s.baselineWorkbenchMs === null ? undefined : `${times(median(s.createToUsableMs) / s.baselineWorkbenchMs)} by hand`,
      target: '≤ 6 s', met: median(s.createToUsableMs) <= 6000,
    });
    out.push({ figure: `local: stopped → workbench usable in Chromium (median of ${n})`, codeyard: sec(median(s.stoppedToUsableMs)) });
  } else {
    out.push({ figure: 'local: create → workbench usable in Chromium', codeyard: 'skipped: --quick (no browser)' });
  }
  return out;
}

function dockerRows(d: DockerStartupResults | { skipped: string }): Row[] {
  if ('skipped' in d) return [{ figure: 'docker: create → running', codeyard: `skipped: ${d.skipped}` }];
  return [{
    figure: `docker: create → running (median of ${d.createToRunningMs.length})`, codeyard: sec(median(d.createToRunningMs)),
    direct: `${sec(median(d.baselineMs))} (container by hand → /healthz)`, ratio: `${times(median(d.createToRunningMs) / median(d.baselineMs))} by hand`,
  }];
}

function idleRows(points: IdleSocketPoint[]): Row[] {
  const base = points[0]!;
  return points.map((p) => ({
    figure: `gateway with ${p.sockets} idle WebSockets through it: RSS, CPU`,
    codeyard: `${p.rssMiB.toFixed(0)} MiB, ${p.cpuPercent.toFixed(1)} %`,
    ...(p.sockets === 1000 ? { ratio: `+${(p.rssMiB - base.rssMiB).toFixed(0)} MiB`, target: '≤ +64 MiB', met: p.rssMiB - base.rssMiB <= 64 } : {}),
  }));
}

function admissionRows(a: AdmissionResults): Row[] {
  const rule = `${a.computed.count} (${(a.computed.memoryShare * 100).toFixed(0)} % of ${(a.computed.totalMiB / 1024).toFixed(1)} GiB ÷ ${a.computed.defaultMemoryMB} MiB)`;
  if ('skipped' in a.measured) {
    return [{ figure: 'sandboxes running before admission refuses the next (default config)', codeyard: `${rule}, computed; measuring skipped: ${a.measured.skipped}` }];
  }
  const m = a.measured;
  return [
    { figure: 'sandboxes running before admission refuses the next (default config)', codeyard: `${m.running} measured; rule: ${rule}`, target: 'next create → 503', met: m.refusal !== '' },
    { figure: `one idle VS Code sandbox: RSS summed over its processes / cgroup charge (mean of ${m.running})`, codeyard: `${m.sandboxRssMiB.toFixed(0)} MiB / ${m.sandboxCgroupMiB === null ? 'n/a' : `${m.sandboxCgroupMiB.toFixed(0)} MiB`}` },
    { figure: `gateway RSS with ${m.running} running sandboxes`, codeyard: `${m.gatewayRssMiB.toFixed(0)} MiB` },
  ];
}

export function markdownTable(all: Row[]): string {
  const head = '| figure | codeyard | direct / by hand | bare Node proxy | nginx | CHP | codeyard vs | target |\n| --- | --- | --- | --- | --- | --- | --- | --- |';
  const cell = (s: string | undefined) => s ?? '';
  return [head, ...all.map((r) => `| ${r.figure} | ${r.codeyard} | ${cell(r.direct)} | ${cell(r.bare)} | ${cell(r.nginx)} | ${cell(r.chp)} | ${cell(r.ratio)} | ${r.target ? `${r.target} ${r.met ? '✓' : '✗'}` : ''} |`)].join('\n');
}

/** The machine and the versions a run measured. */
export function machine(): Record<string, string | number | number[]> {
  // nginx -v answers on stderr.
  const version = (cmd: string, args: string[]) => { const r = spawnSync(cmd, args, { encoding: 'utf8' }); return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || 'unknown'; };
  const pkg = (name: string) => { try { return (JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version; } catch { return 'unknown'; } };
  return {
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    kernel: release(),
    debian: (() => { try { return readFileSync('/etc/debian_version', 'utf8').trim(); } catch { return 'unknown'; } })(),
    node: process.version,
    nginx: version(NGINX, ['-v']).replace('nginx version: ', ''),
    configurableHttpProxy: pkg('configurable-http-proxy'),
    autocannon: pkg('autocannon'),
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  };
}
