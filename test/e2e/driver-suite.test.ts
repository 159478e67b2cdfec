// The driver contract (src/runtime/interface.ts), the same checks against
// every driver: the local one (bubblewrap) and the docker one (the real
// engine and workspace image), with real code-server in both.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, get as httpGet } from 'node:http';
import { pino } from 'pino';
import type { Runtime, SandboxSpec } from '../../src/runtime/interface.ts';
import { LocalRuntime } from '../../src/runtime/local/local-runtime.ts';
import { DockerRuntime } from '../../src/runtime/docker/docker-runtime.ts';
import { dockerClient } from '../../src/runtime/docker/docker-client.ts';
import { sandboxDirs } from '../../src/runtime/local/sandbox-dirs.ts';
import { findTemplate } from '../../src/templates/catalog.ts';
import { toolchainPaths } from '../../src/toolchain/paths.ts';
import { waitForHealthy } from '../../src/supervisor/health.ts';
import { ensureDockerEngine } from '../../src/toolchain/docker-engine.ts';
import { DEFAULT_IMAGE } from '../../src/config.ts';
import { OPENCODE_VERSION } from '../../src/toolchain/versions.ts';
import { freePort, removeDataDir, tempDataDir } from '../helpers/gateway-process.ts';

const log = pino({ level: 'silent' });
const template = findTemplate('vscode')!;

const drivers: Record<string, (dataDir: string) => Promise<Runtime>> = {
  local: async (dataDir) => new LocalRuntime({
    dataDir, toolchain: toolchainPaths(), isolation: 'bubblewrap', uidBase: 200000, maxProcesses: 4096, socketWaitMs: 60_000, log,
  }),
  docker: async (dataDir) => {
    const { docker, where } = dockerClient();
    await ensureDockerEngine(docker, () => {});
    return new DockerRuntime({ docker, where, dataDir, image: DEFAULT_IMAGE, uid: 1000, maxProcesses: 4096, socketWaitMs: 60_000, networks: {}, log });
  },
};

for (const [name, make] of Object.entries(drivers)) {
  describe(`driver: ${name}`, () => {
    const dataDir = tempDataDir();
    const id = `drv${name.padEnd(6, 'x')}00000000000`.slice(0, 20);
    let runtime: Runtime;
    let spec: SandboxSpec;
    after(async () => {
      await runtime?.remove(spec).catch(() => {});
      removeDataDir(dataDir);
    });

    test('create and start: its service answers on the endpoint the driver hands back', { timeout: 120_000 }, async () => {
      runtime = await make(dataDir);
      spec = {
        sandboxID: id, templateID: 'vscode', seq: 1, ownerId: 7, owner: 'suite', workspace: null, network: 'outbound', memoryMB: 1024, cpuCount: 1,
        envVars: { SUITE_VAR: 'from-spec' }, command: (l) => template.command(l, {}), services: template.services, driverState: {},
      };
      assert.equal(await runtime.available?.() ?? undefined, undefined);
      await runtime.create(spec);
      const started = await runtime.start(spec);
      spec.driverState = started.driverState;
      assert.equal(started.limits, 'enforced');
      const outcome = await waitForHealthy({ endpoint: started.endpoints.ide!, path: '/healthz', timeoutMs: 60_000, isAlive: async () => (await runtime.inspect(spec)).running });
      assert.equal(outcome, 'healthy');
      assert.equal((await runtime.inspect(spec)).running, true);
      assert.ok((await runtime.list()).includes(id));
    });

    test('exec: exit code, stdout and stderr apart, cwd, env, timeout', { timeout: 60_000 }, async () => {
      const r = await runtime.exec(spec, { cmd: 'pwd; echo "$SUITE_VAR $EXTRA"; echo oops >&2; exit 3', envs: { EXTRA: 'per-exec' }, timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
      assert.deepEqual({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut }, { exitCode: 3, stdout: '/home/coder/workspace\nfrom-spec per-exec\n', stderr: 'oops\n', timedOut: false });
      const argv = await runtime.exec(spec, { cmd: ['sh', '-c', 'id -un'], cwd: '/tmp', timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
      assert.equal(argv.stdout, 'coder\n');
      const agent = await runtime.exec(spec, { cmd: 'opencode --version', timeoutMs: 30_000, maxOutputBytes: 1 << 20 });
      assert.equal(agent.stdout.trim(), OPENCODE_VERSION, `opencode on PATH: ${agent.stderr}`);
      const slow = await runtime.exec(spec, { cmd: 'sleep 30', timeoutMs: 500, maxOutputBytes: 1 << 20 });
      assert.equal(slow.timedOut, true);
      assert.match(slow.stderr, /killed after timeoutMs=500/);
    });

    test('log, usage, pause and resume', { timeout: 60_000 }, async () => {
      assert.match(runtime.readLog(id, 0).text, /code-server/);
      assert.match(runtime.logTail(id, 4000), /\S/);
      const usage = await runtime.usage(spec);
      assert.ok((usage.memoryBytes ?? 0) > 10_000_000, JSON.stringify(usage));
      assert.equal(await runtime.pause(spec), true);
      await runtime.resume(spec);
      const r = await runtime.exec(spec, { cmd: 'echo after-resume', timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
      assert.equal(r.stdout, 'after-resume\n');
    });

    test('port endpoints: a server the sandbox runs is dialled; a port it does not hold is refused', { timeout: 60_000 }, async () => {
      const port = await freePort();
      const r = await runtime.exec(spec, { cmd: `echo served > p.txt; setsid nohup python3 -m http.server ${port} --bind 0.0.0.0 >/dev/null 2>&1 & sleep 1`, timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
      assert.equal(r.exitCode, 0, r.stderr);
      // Local sandboxes have a network of their own: a unix socket into it; docker: the container's address.
      const endpoint = await runtime.portEndpoint!(spec, port);
      assert.ok(name === 'local' ? 'socketPath' in endpoint : 'host' in endpoint, JSON.stringify(endpoint));
      const body = await new Promise<string>((resolve, reject) => {
        httpGet({ ...endpoint, path: '/p.txt' }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b)); }).on('error', reject);
      });
      assert.equal(body, 'served\n');
      // A server outside the sandbox, on the host: never the sandbox's port (local), never reachable (docker).
      const outside = createServer((_q, res) => res.end('host'));
      const outsidePort = await freePort();
      await new Promise<void>((done) => outside.listen(outsidePort, '0.0.0.0', done));
      try {
        const dialled = await runtime.portEndpoint!(spec, outsidePort).then(async (e) => {
          // Docker hands back the container's address: nothing of the host's answers there.
          return new Promise<string>((resolve) => {
            httpGet({ ...e, path: '/', timeout: 2000 }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b)); })
              .on('error', () => resolve('refused')).on('timeout', function (this: { destroy(): void }) { this.destroy(); resolve('refused'); });
          });
        }, (err: Error) => err.message);
        assert.doesNotMatch(dialled, /^host$/, 'a preview never reaches a server outside the sandbox');
      } finally {
        outside.close();
      }
      await runtime.exec(spec, { cmd: `pkill -f "http.server ${port}" || true`, timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
    });

    test('stop keeps the files, start brings it back, remove takes everything', { timeout: 120_000 }, async () => {
      await runtime.exec(spec, { cmd: 'echo kept > kept.txt', timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
      await runtime.stop(spec);
      assert.equal((await runtime.inspect(spec)).running, false);
      const exit = await runtime.lastExit(spec);
      assert.ok(exit, 'how it ended is known');
      const again = await runtime.start(spec);
      spec.driverState = again.driverState;
      assert.equal(await waitForHealthy({ endpoint: again.endpoints.ide!, path: '/healthz', timeoutMs: 60_000, isAlive: async () => (await runtime.inspect(spec)).running }), 'healthy');
      assert.equal((await runtime.exec(spec, { cmd: 'cat kept.txt', timeoutMs: 10_000, maxOutputBytes: 1 << 20 })).stdout, 'kept\n');
      await runtime.remove(spec);
      assert.equal((await runtime.inspect(spec)).running, false);
      assert.ok(!(await runtime.list()).includes(id));
      assert.ok(!existsSync(sandboxDirs(dataDir, id).base));
    });
  });
}
