// Start-up and memory figures for the foundation, measured against the real
// gateway, real code-server in bubblewrap and a real Chromium:
//   - cold start: create → workbench usable in the browser (first sandbox of a fresh gateway)
//   - warm create → running, against a baseline measured in the same run:
//     code-server started directly on a unix socket, no gateway, no bubblewrap
//   - gateway RSS with 0 and 5 running sandboxes; RSS of one idle sandbox
// Run: npm run bench   (prints a markdown table; docs/performance.md records it)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { Api, freePort, sandboxProcesses, startGatewayProcess } from '../test/helpers/gateway-process.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { toolchainPaths } from '../src/toolchain/paths.ts';

const WARM_RUNS = Number(process.env.BENCH_RUNS ?? 5);

const rssKiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function createRunning(api: Api): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  if (r.body?.state !== 'running') throw new Error(`sandbox did not start: ${r.text}`);
  return { id: r.body.sandboxID, ms: performance.now() - t0 };
}

/** Baseline: code-server on a unix socket, started by hand, until /healthz answers. */
async function directCodeServerStart(): Promise<number> {
  const t = toolchainPaths();
  const dir = mkdtempSync('/tmp/cy-bench-');
  const socket = join(dir, 'cs.sock');
  const t0 = performance.now();
  const child = spawn(t.nodeBin, [t.codeServerEntry, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--socket', socket, '--user-data-dir', join(dir, 'data'), '--extensions-dir', join(dir, 'ext'), dir],
  { stdio: 'ignore', env: { HOME: dir, PATH: process.env.PATH } });
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ socketPath: socket, path: '/healthz' }, (res) => { res.resume(); resolve(res.statusCode === 200); });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) break;
    if (performance.now() - t0 > 60_000) throw new Error('direct code-server did not start');
    await sleep(25);
  }
  const ms = performance.now() - t0;
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

/** Baseline for the cold figure: code-server started by hand on a TCP port, opened directly in Chromium. */
async function directWorkbenchLoad(): Promise<number> {
  const t = toolchainPaths();
  const dir = mkdtempSync('/tmp/cy-bench-');
  const port = await freePort();
  const browser = await launchChromium();
  const page = await browser.newPage();
  const t0 = performance.now();
  writeFileSync(join(dir, 'README.md'), '');
  const child = spawn(t.nodeBin, [t.codeServerEntry, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--bind-addr', `127.0.0.1:${port}`, '--user-data-dir', join(dir, 'data'), '--extensions-dir', join(dir, 'ext'), dir],
  { stdio: 'ignore', env: { HOME: dir, PATH: process.env.PATH } });
  try {
    for (;;) {
      try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break; } catch { /* not yet */ }
      await sleep(25);
    }
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).waitFor({ timeout: 120_000 });
    return performance.now() - t0;
  } finally {
    child.kill('SIGKILL');
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const directColdMs = await directWorkbenchLoad();
const gw = await startGatewayProcess({ env: { CODEYARD_LOG_LEVEL: 'warn' } });
try {
  const api = await Api.login(gw.url);
  await sleep(1000);
  const gatewayIdleRss = rssKiB(gw.process.pid!);

  // Cold: the first sandbox of a fresh gateway, until the workbench shows the workspace.
  const browser = await launchChromium();
  const context = await browser.newContext();
  await context.addCookies([{ name: 'codeyard_session', value: api.sessionToken, domain: '127.0.0.1', path: '/' }]);
  const page = await context.newPage();
  const t0 = performance.now();
  const first = await createRunning(api);
  await api.call('POST', `/api/sandboxes/${first.id}/exec`, { cmd: 'touch README.md' });
  await page.goto(`${gw.url}/vscode-proxy/${first.id}/`);
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).waitFor({ timeout: 120_000 });
  const coldMs = performance.now() - t0;
  await context.close();
  await browser.close();

  const warm: number[] = [];
  const ids = [first.id];
  for (let i = 0; i < WARM_RUNS; i++) {
    const s = await createRunning(api);
    warm.push(s.ms);
    if (ids.length < 5) ids.push(s.id);
    else await api.call('DELETE', `/api/sandboxes/${s.id}`);
  }
  const direct: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) direct.push(await directCodeServerStart());

  await sleep(5000); // let the five settle into idle
  const gatewayBusyRss = rssKiB(gw.process.pid!);
  const idle = ids[1]!;
  const idleRss = sandboxProcesses(idle).reduce((sum, pid) => sum + rssKiB(pid), 0);
  const cgroupBytes = (() => {
    try { return Number(readFileSync(`/sys/fs/cgroup/memory/codeyard/${idle}/memory.usage_in_bytes`, 'utf8')); } catch { return NaN; }
  })();

  const warmMedian = median(warm);
  const directMedian = median(direct);
  console.log(`| figure | value |
| --- | --- |
| cold start: create → workbench shows the workspace in Chromium | ${seconds(coldMs)} s |
| baseline: code-server started by hand, opened directly (no gateway, no bubblewrap) | ${seconds(directColdMs)} s |
| ratio cold start / baseline | ${(coldMs / directColdMs).toFixed(2)}× |
| warm create → running (median of ${WARM_RUNS}) | ${seconds(warmMedian)} s |
| baseline: code-server alone on a socket → /healthz (median of ${WARM_RUNS}) | ${seconds(directMedian)} s |
| ratio warm create / baseline | ${(warmMedian / directMedian).toFixed(2)}× |
| gateway RSS, 0 sandboxes | ${(gatewayIdleRss / 1024).toFixed(0)} MiB |
| gateway RSS, 5 running sandboxes | ${(gatewayBusyRss / 1024).toFixed(0)} MiB |
| one idle sandbox, RSS summed over its processes | ${(idleRss / 1024).toFixed(0)} MiB |
| one idle sandbox, cgroup memory usage (incl. page cache) | ${Number.isNaN(cgroupBytes) ? 'n/a' : (cgroupBytes / 1048576).toFixed(0) + ' MiB'} |

warm runs (s): ${warm.map(seconds).join(', ')}; baseline runs (s): ${direct.map(seconds).join(', ')}`);
} finally {
  await gw.destroy();
}
