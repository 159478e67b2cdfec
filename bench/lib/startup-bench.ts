// Sandbox start-up against the real gateway (`codeyard serve`), real
// code-server in bubblewrap and a real Chromium, with baselines measured in
// the same run (code-server started by hand: no gateway, no bubblewrap).
//   create → running; create → workbench usable in the browser;
//   stopped → running; stopped → workbench usable.
// "Usable" is the explorer showing the workspace's README.md. Each browser
// measurement uses a fresh context: an empty cache, as for a first visit.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Browser } from 'playwright-core';
import { Api, freePort, startGatewayProcess } from '../../test/helpers/gateway-process.ts';
import { launchChromium } from '../../test/helpers/browser.ts';
import { toolchainPaths } from '../../src/toolchain/paths.ts';
import { sleep } from './processes.ts';

const OPEN_TIMEOUT_MS = 120_000;
const HEALTH_TIMEOUT_MS = 60_000;

export interface StartupPlan { runs: number; browser: boolean }
export interface StartupResults {
  createToRunningMs: number[];
  stoppedToRunningMs: number[];
  createToUsableMs: number[] | null;
  stoppedToUsableMs: number[] | null;
  baselineCodeServerMs: number[];
  baselineWorkbenchMs: number | null;
}

export async function startupBench(plan: StartupPlan, log: (line: string) => void): Promise<StartupResults> {
  const browser = plan.browser ? await launchChromium() : undefined;
  try {
    const results: StartupResults = {
      createToRunningMs: [], stoppedToRunningMs: [], createToUsableMs: browser ? [] : null, stoppedToUsableMs: browser ? [] : null,
      baselineCodeServerMs: [], baselineWorkbenchMs: null,
    };
    const gw = await startGatewayProcess({ env: { CODEYARD_LOG_LEVEL: 'warn' } });
    try {
      const api = await Api.login(gw.url);
      for (let i = 0; i < plan.runs; i++) {
        const t0 = performance.now();
        const created = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
        if (created.body?.state !== 'running') throw new Error(`sandbox did not start: ${created.text}`);
        results.createToRunningMs.push(performance.now() - t0);
        const id = created.body.sandboxID as string;
        if (browser) {
          await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'touch README.md' });
          await openWorkbench(browser, gw.url, id, api.sessionToken);
          results.createToUsableMs!.push(performance.now() - t0);
        }
        await api.call('POST', `/api/sandboxes/${id}/stop`);
        const t1 = performance.now();
        const started = await api.call('POST', `/api/sandboxes/${id}/start?wait=true`);
        if (started.body?.state !== 'running') throw new Error(`sandbox did not start again: ${started.text}`);
        results.stoppedToRunningMs.push(performance.now() - t1);
        if (browser) {
          await openWorkbench(browser, gw.url, id, api.sessionToken);
          results.stoppedToUsableMs!.push(performance.now() - t1);
        }
        await api.call('DELETE', `/api/sandboxes/${id}`);
        log(`start-up run ${i + 1}/${plan.runs}: create → running ${ms(results.createToRunningMs.at(-1)!)}` +
          (browser ? `, → usable ${ms(results.createToUsableMs!.at(-1)!)}` : '') + `; stopped → running ${ms(results.stoppedToRunningMs.at(-1)!)}` +
          (browser ? `, → usable ${ms(results.stoppedToUsableMs!.at(-1)!)}` : ''));
      }
    } finally {
      await gw.destroy();
    }
    for (let i = 0; i < plan.runs; i++) results.baselineCodeServerMs.push(await codeServerByHand());
    if (browser) results.baselineWorkbenchMs = await workbenchByHand(browser);
    return results;
  } finally {
    await browser?.close();
  }
}

const ms = (x: number) => `${(x / 1000).toFixed(2)} s`;

async function openWorkbench(browser: Browser, gatewayUrl: string, sandboxID: string, sessionToken: string): Promise<void> {
  const context = await browser.newContext();
  try {
    await context.addCookies([{ name: 'codeyard_session', value: sessionToken, domain: '127.0.0.1', path: '/' }]);
    const page = await context.newPage();
    await page.goto(`${gatewayUrl}/vscode-proxy/${sandboxID}/`);
    await explorerShowsReadme(page);
  } finally {
    await context.close();
  }
}

function explorerShowsReadme(page: import('playwright-core').Page): Promise<void> {
  return page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).waitFor({ timeout: OPEN_TIMEOUT_MS });
}

function codeServerArgs(dir: string, listen: string[]): string[] {
  const t = toolchainPaths();
  return [t.codeServerEntry, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    ...listen, '--user-data-dir', join(dir, 'data'), '--extensions-dir', join(dir, 'ext'), dir];
}

/** Baseline: code-server on a unix socket, started by hand, until /healthz answers. */
async function codeServerByHand(): Promise<number> {
  const dir = mkdtempSync('/tmp/cy-bench-cs-');
  const socket = join(dir, 'cs.sock');
  const t0 = performance.now();
  const child = spawn(toolchainPaths().nodeBin, codeServerArgs(dir, ['--socket', socket]), { stdio: 'ignore', detached: true, env: { HOME: dir, PATH: process.env.PATH } });
  try {
    while (!(await healthy(socket))) {
      if (performance.now() - t0 > HEALTH_TIMEOUT_MS) throw new Error('code-server started by hand did not answer /healthz');
      await sleep(25);
    }
    return performance.now() - t0;
  } finally {
    killGroup(child.pid);
    rmSync(dir, { recursive: true, force: true });
  }
}

function healthy(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/healthz' }, (res) => { res.resume(); resolve(res.statusCode === 200); });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Baseline for the browser figure: code-server started by hand on a TCP port, opened directly. */
async function workbenchByHand(browser: Browser): Promise<number> {
  const dir = mkdtempSync('/tmp/cy-bench-cs-');
  const port = await freePort();
  writeFileSync(join(dir, 'README.md'), '');
  const context = await browser.newContext();
  const t0 = performance.now();
  const child = spawn(toolchainPaths().nodeBin, codeServerArgs(dir, ['--bind-addr', `127.0.0.1:${port}`]), { stdio: 'ignore', detached: true, env: { HOME: dir, PATH: process.env.PATH } });
  try {
    for (;;) {
      try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break; } catch { /* not yet */ }
      if (performance.now() - t0 > HEALTH_TIMEOUT_MS) throw new Error('code-server started by hand did not answer');
      await sleep(25);
    }
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await explorerShowsReadme(page);
    return performance.now() - t0;
  } finally {
    killGroup(child.pid);
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** code-server forks an extension host that outlives its parent: the baseline runs in a process group of its own, and the whole group goes. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
}
