// A driver whose every sandbox is one existing server (the bench backend): the
// gateway's real routing, auth and piping run, and nothing is started.
import type { Endpoint, ExecResult, Runtime, SandboxSpec, StartResult } from '../../src/runtime/interface.ts';

export class FixedEndpointRuntime implements Runtime {
  readonly name = 'bench-fixed-endpoint';
  private readonly endpoint: Endpoint;
  private readonly running = new Set<string>();

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
  }

  async create(): Promise<void> {}
  async start(spec: SandboxSpec): Promise<StartResult> {
    this.running.add(spec.sandboxID);
    return { endpoints: this.endpoints(spec), driverState: {}, limits: 'not-enforced', limitsReason: 'bench runtime' };
  }
  async stop(spec: SandboxSpec): Promise<void> { this.running.delete(spec.sandboxID); }
  async remove(spec: SandboxSpec): Promise<void> { this.running.delete(spec.sandboxID); }
  async inspect(spec: SandboxSpec) { return { running: this.running.has(spec.sandboxID), endpoints: this.endpoints(spec) }; }
  async exec(): Promise<ExecResult> { return { exitCode: 0, stdout: '', stderr: '', timedOut: false, truncated: false }; }
  async list(): Promise<string[]> { return [...this.running]; }
  async stopOrphan(): Promise<number> { return 0; }
  logTail(): string { return ''; }
  readLog(): { text: string; offset: number } { return { text: '', offset: 0 }; }
  async lastExit() { return undefined; }
  async oomKilled(): Promise<boolean> { return false; }
  async pause(): Promise<boolean> { return false; }
  async resume(): Promise<void> {}
  async usage() { return { memoryBytes: null, cpuSeconds: null }; }

  private endpoints(spec: SandboxSpec): Record<string, Endpoint> {
    return Object.fromEntries(Object.keys(spec.services).map((service) => [service, this.endpoint]));
  }
}
