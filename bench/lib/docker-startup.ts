// runtime docker: create → running through the gateway, against the same
// image's code-server in a container created and started by hand (no gateway),
// measured in the same run. Runs only when dockerd answers and the image is built.
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, startGatewayProcess } from '../../test/helpers/gateway-process.ts';
import { dockerClient } from '../../src/runtime/docker/docker-client.ts';
import { DEFAULT_IMAGE } from '../../src/config.ts';
import { probe } from '../../src/supervisor/health.ts';
import { sleep } from './processes.ts';

const HEALTH_TIMEOUT_MS = 60_000;

export interface DockerStartupResults { baselineMs: number[]; createToRunningMs: number[] }

/** Why the docker figures cannot be measured here, or undefined when they can. */
export async function dockerUnavailable(): Promise<string | undefined> {
  const { docker } = dockerClient();
  try { await docker.ping(); } catch { return 'dockerd is not running'; }
  try { await docker.getImage(DEFAULT_IMAGE).inspect(); } catch { return `image ${DEFAULT_IMAGE} is not built (codeyard image build)`; }
  return undefined;
}

export async function dockerStartupBench(runs: number): Promise<DockerStartupResults> {
  return { baselineMs: await containerByHand(runs), createToRunningMs: await gatewayCreates(runs) };
}

async function gatewayCreates(runs: number): Promise<number[]> {
  const dataDir = mkdtempSync('/tmp/cy-bd-');
  writeFileSync(join(dataDir, 'codeyard.yaml'), 'runtime:\n  driver: docker\n');
  const gw = await startGatewayProcess({ dataDir, env: { CODEYARD_LOG_LEVEL: 'warn' } });
  try {
    const api = await Api.login(gw.url);
    const times: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      const t0 = performance.now();
      const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
      if (r.body?.state !== 'running') throw new Error(r.text);
      if (i > 0) times.push(performance.now() - t0); // the first warms caches
      await api.call('DELETE', `/api/sandboxes/${r.body.sandboxID}`);
    }
    return times;
  } finally {
    await gw.destroy();
  }
}

async function containerByHand(runs: number): Promise<number[]> {
  const { docker } = dockerClient();
  const times: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const dir = mkdtempSync('/tmp/cy-bd-direct-');
    mkdirSync(join(dir, 'run'));
    chownSync(join(dir, 'run'), 1000, 1000);
    const t0 = performance.now();
    const c = await docker.createContainer({
      Image: DEFAULT_IMAGE, User: '1000:1000',
      Cmd: ['/opt/codeyard/node/bin/node', '/opt/codeyard/code-server/node_modules/code-server/out/node/entry.js', '--auth', 'none',
        '--disable-telemetry', '--disable-update-check', '--socket', '/run/codeyard/ide.sock', '/tmp'],
      HostConfig: { Binds: [`${join(dir, 'run')}:/run/codeyard`] },
    });
    try {
      await c.start();
      const endpoint = { socketPath: join(dir, 'run', 'ide.sock') };
      while (!(await probe(endpoint, '/healthz'))) {
        if (performance.now() - t0 > HEALTH_TIMEOUT_MS) throw new Error('container started by hand did not answer /healthz');
        await sleep(25);
      }
      if (i > 0) times.push(performance.now() - t0);
    } finally {
      await c.remove({ force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return times;
}
