// codeyard's benchmarks in one run: the proxy (WebSocket and HTTP, against
// direct, a bare Node proxy, nginx and configurable-http-proxy), sandbox
// start-up (local, and docker where it is available), and scale (idle
// WebSockets, sandboxes admitted). Prints one markdown table and writes the
// figures as JSON under test-results/bench/.
//   npm run bench                 the full run (~10 minutes)
//   npm run bench -- --quick      about a minute: fewer samples, no browser, no docker, admission computed
//   npm run bench -- --only proxy,scale    some sections (proxy, startup, docker, scale, netns)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { proxyBench } from './lib/proxy-bench.ts';
import { startupBench } from './lib/startup-bench.ts';
import { netnsBench } from './lib/netns-bench.ts';
import { dockerStartupBench, dockerUnavailable } from './lib/docker-startup.ts';
import { admissionBench, admissionComputed, idleSocketsBench } from './lib/scale-bench.ts';
import { machine, markdownTable, rows, type BenchResults } from './lib/report.ts';

const SECTIONS = ['proxy', 'startup', 'docker', 'scale', 'netns'] as const;
const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = values.quick;
const only = new Set(values.only ? values.only.split(',').map((s) => s.trim()) : SECTIONS);
for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section "${s}"; sections: ${SECTIONS.join(', ')}`);

const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0)} s] ${line}\n`);
const started = performance.now();
const before = machine();
const results: BenchResults = {};

if (only.has('proxy')) {
  log('proxy: direct, bare Node proxy, codeyard, nginx, configurable-http-proxy');
  results.proxy = await proxyBench(quick
    ? { rounds: 1, wsSmallCount: 1000, wsLargeCount: 300, wsDurationMs: 1000, httpSeconds: 2, httpAssetSeconds: 4 }
    : { rounds: 3, wsSmallCount: 3000, wsLargeCount: 1000, wsDurationMs: 3000, httpSeconds: 5, httpAssetSeconds: 8 }, log);
}
if (only.has('startup')) {
  log('start-up: local runtime');
  results.startup = await startupBench({ runs: quick ? 3 : 5, browser: !quick }, log);
}
if (only.has('docker')) {
  const why = quick ? '--quick' : await dockerUnavailable();
  if (!why) log('start-up: docker runtime');
  results.docker = why ? { skipped: why } : await dockerStartupBench(5);
}
if (only.has('netns')) {
  log('network: a namespace per sandbox against the host\'s network');
  results.netns = await netnsBench(quick ? { rounds: 2, httpSeconds: 2, connections: 10 } : { rounds: 5, httpSeconds: 5, connections: 10 }, log);
}
if (only.has('scale')) {
  log('scale: idle WebSockets');
  results.idleSockets = await idleSocketsBench(quick ? 2000 : 5000, log);
  if (quick) {
    results.admission = { computed: admissionComputed(), measured: { skipped: '--quick' } };
  } else {
    log('scale: sandboxes until admission refuses');
    results.admission = await admissionBench(log);
  }
}

const table = markdownTable(rows(results));
const after = machine();
const seconds = Math.round((performance.now() - started) / 1000);
console.log(table);
console.log(`\n${quick ? 'npm run bench -- --quick' : 'npm run bench'} · ${seconds} s · ${before.cpu}, ${before.memoryGiB} GiB, Debian ${before.debian}, Linux ${before.kernel}, Node ${before.node}, nginx ${before.nginx}, CHP ${before.configurableHttpProxy} · load average before ${(before.loadAverage as number[]).join(' ')}, after ${(after.loadAverage as number[]).join(' ')}`);
const dir = join(import.meta.dirname, '..', 'test-results', 'bench');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
writeFileSync(file, JSON.stringify({ quick, seconds, machine: before, loadAverageAfter: after.loadAverage, results, rows: rows(results), table }, null, 2));
log(`written: ${file}`);
