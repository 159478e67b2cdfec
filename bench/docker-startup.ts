// runtime: docker start-up, against a baseline measured in the same run:
// the same image's code-server started with a plain `docker run`-equivalent
// (no gateway: create + start a container, poll /healthz on its socket).
//   - warm create → running through the gateway (median of BENCH_RUNS)
//   - the same with runtime: local, for comparison
// Run: npm run bench:docker   (prints a markdown table; docs/performance.md records it)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, startGatewayProcess } from '../test/helpers/gateway-process.ts';
import { dockerClient } from '../src/runtime/docker/docker-client.ts';
import { ensureDockerEngine } from '../src/toolchain/docker-engine.ts';
import { DEFAULT_IMAGE } from '../src/config.ts';
import { probe } from '../src/supervisor/health.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const { docker } = dockerClient();

async function gatewayCreates(driver: 'docker' | 'local'): Promise<number> {
  const dataDir = mkdtempSync('/tmp/cy-bd-');
  writeFileSync(join(dataDir, 'codeyard.yaml'), `runtime:\n  driver: ${driver}\n`);
  const gw = await startGatewayProcess({ dataDir });
  try {
    const api = await Api.login(gw.url);
    const times: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const t0 = performance.now();
      const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
      if (r.body?.state !== 'running') throw new Error(r.text);
      if (i > 0) times.push(performance.now() - t0); // the first warms caches
      await api.call('DELETE', `/api/sandboxes/${r.body.sandboxID}`);
    }
    return median(times);
  } finally {
    await gw.destroy();
  }
}

async function directContainer(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 1; i++) {
    const dir = mkdtempSync('/tmp/cy-bd-direct-');
    mkdirSync(join(dir, 'run'));
    const { chownSync } = await import('node:fs');
    chownSync(join(dir, 'run'), 1000, 1000);
    const t0 = performance.now();
    const c = await docker.createContainer({
      Image: DEFAULT_IMAGE, User: '1000:1000',
      Cmd: ['/opt/codeyard/node/bin/node', '/opt/codeyard/code-server/node_modules/code-server/out/node/entry.js', '--auth', 'none',
        '--disable-telemetry', '--disable-update-check', '--socket', '/run/codeyard/ide.sock', '/tmp'],
      HostConfig: { Binds: [`${join(dir, 'run')}:/run/codeyard`] },
    });
    await c.start();
    const endpoint = { socketPath: join(dir, 'run', 'ide.sock') };
    while (!(await probe(endpoint, '/healthz'))) await new Promise((r) => setTimeout(r, 25));
    if (i > 0) times.push(performance.now() - t0);
    await c.remove({ force: true });
    rmSync(dir, { recursive: true, force: true });
  }
  return median(times);
}

await ensureDockerEngine(docker, () => {});
const direct = await directContainer();
const viaDocker = await gatewayCreates('docker');
const viaLocal = await gatewayCreates('local');
console.log(`| figure | value |\n| --- | --- |`);
console.log(`| baseline: container of the image created and started by hand → /healthz (median of ${RUNS}) | ${seconds(direct)} s |`);
console.log(`| runtime docker: create → running through the gateway (median of ${RUNS}) | ${seconds(viaDocker)} s |`);
console.log(`| ratio docker create / baseline | ${(viaDocker / direct).toFixed(2)}× |`);
console.log(`| runtime local (bubblewrap): create → running, same run (median of ${RUNS}) | ${seconds(viaLocal)} s |`);
