// A stand-in driver for unit tests of the API and lifecycle: each "sandbox" is
// an in-process HTTP server on a unix socket answering /healthz. End-to-end
// tests use the real LocalRuntime instead.
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecRequest, ExecResult, Runtime, SandboxSpec, StartResult } from '../../src/runtime/interface.ts';

export class FakeRuntime implements Runtime {
  readonly name = 'fake';
  readonly servers = new Map<string, Server>();
  readonly dir = mkdtempSync(join(tmpdir(), 'cy-fake-'));
  failNextStart = false;
  /** The next sandbox started answers its health check with 503 until told otherwise. */
  unhealthyNextStart = false;
  readonly unhealthy = new Set<string>();
  calls: string[] = [];

  /** The last spec each sandbox was created with. */
  readonly specs = new Map<string, SandboxSpec>();
  async create(spec: SandboxSpec): Promise<void> { this.calls.push(`create ${spec.sandboxID}`); this.specs.set(spec.sandboxID, spec); }

  async start(spec: SandboxSpec): Promise<StartResult> {
    this.calls.push(`start ${spec.sandboxID}`);
    const socketPath = join(this.dir, `${spec.sandboxID}.sock`);
    if (this.failNextStart) {
      this.failNextStart = false;
      return { endpoints: { ide: { socketPath } }, driverState: { dead: true }, limits: 'enforced' };
    }
    if (this.unhealthyNextStart) {
      this.unhealthyNextStart = false;
      this.unhealthy.add(spec.sandboxID);
    }
    // Answers with what it received, so tests can see exactly what the proxy forwards.
    const server = createServer((req, res) => {
      if (req.url === '/healthz') {
        if (this.unhealthy.has(spec.sandboxID)) res.statusCode = 503;
        return void res.end('ok');
      }
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body }));
      });
    });
    await new Promise<void>((r) => server.listen(socketPath, r));
    this.servers.set(spec.sandboxID, server);
    return { endpoints: { ide: { socketPath } }, driverState: { fake: true }, limits: 'not-enforced', limitsReason: 'fake' };
  }

  async stop(spec: SandboxSpec): Promise<void> {
    this.calls.push(`stop ${spec.sandboxID}`);
    const s = this.servers.get(spec.sandboxID);
    this.servers.delete(spec.sandboxID);
    if (s) await new Promise((r) => s.close(r));
  }

  async remove(spec: SandboxSpec): Promise<void> {
    await this.stop(spec);
    this.calls.push(`remove ${spec.sandboxID}`);
  }

  async inspect(spec: SandboxSpec) {
    return { running: this.servers.has(spec.sandboxID), endpoints: { ide: { socketPath: join(this.dir, `${spec.sandboxID}.sock`) } } };
  }

  async exec(spec: SandboxSpec, req: ExecRequest): Promise<ExecResult> {
    return { exitCode: 0, stdout: JSON.stringify(req.cmd), stderr: '', timedOut: false, truncated: false };
  }

  async list(): Promise<string[]> { return [...this.servers.keys()]; }

  async stopOrphan(): Promise<number> { return 0; }

  async closeAll(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => new Promise((r) => s.close(r))));
    this.servers.clear();
  }

  readLog(): { text: string; offset: number } { return { text: 'fake log line\n', offset: 14 }; }
  async lastExit() { return { exitCode: 1, signal: null }; }
  async oomKilled(): Promise<boolean> { return false; }
  async usage() { return { memoryBytes: null, cpuSeconds: null }; }
  readonly paused = new Set<string>();
  async pause(spec: SandboxSpec): Promise<boolean> { this.paused.add(spec.sandboxID); return true; }
  async resume(spec: SandboxSpec): Promise<void> { this.paused.delete(spec.sandboxID); }

  logTail(): string { return 'fake log: main process exited'; }
}
