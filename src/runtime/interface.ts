// The contract every driver implements. The SandboxService is its only caller;
// drivers never talk HTTP to users, they hand back endpoints the proxy dials.

/** Where one service of a sandbox listens: a unix socket, or host:port. */
export type Endpoint = { socketPath: string } | { host: string; port: number };

/** Paths as the sandbox's own processes see them. */
export interface SandboxLayout {
  home: string;
  workspace: string;
  /** Directory holding the sandbox's service sockets (writable by the sandbox). */
  runDir: string;
  /** What the gateway provides for the sandbox (opencode.json, gateway.sock, egress.sock), read-only to it. */
  gatewayDir: string;
  nodeBin: string;
  codeServerEntry: string;
  /** Where `opencode` is (on PATH in the sandbox). */
  opencodeBinDir: string;
  /** The gateway's own helper scripts that run inside sandboxes (sandbox-agent/). */
  agentDir: string;
}

/** A service the sandbox's main process offers on a socket in layout.runDir. */
export interface ServiceSpec {
  socketName: string;
  healthPath: string;
}

/** A persistent workspace, as storage knows it: `<dataDir>/users/<owner>/<name>/{workspace,config}` locally. */
export interface WorkspaceRef {
  owner: string;
  name: string;
}

export interface SandboxSpec {
  sandboxID: string;
  templateID: string;
  /** Small stable number per sandbox, never reused. */
  seq: number;
  /** The owner's user id: the local driver derives the host uid from it, so a user's files keep one owner across sandboxes. */
  ownerId: number;
  /** The owner's username, for labels and logs. */
  owner: string;
  /** The persistent workspace mounted as home and workspace; null: throwaway ones, deleted with the sandbox. */
  workspace: WorkspaceRef | null;
  /**
   * `outbound`: a network of its own with a way out to the world (NAT), never to the host's loopback or
   * another sandbox; `isolated`: a network of its own reaching out only through the gateway's egress proxy.
   */
  network: 'outbound' | 'isolated';
  memoryMB: number;
  cpuCount: number;
  envVars: Record<string, string>;
  /** The main process's argv, for the paths the sandbox sees. */
  command: (layout: SandboxLayout) => string[];
  /** Services by name; the first is the one whose health means "running". */
  services: Record<string, ServiceSpec>;
  /** The driver's own state from the store (empty before the first start). */
  driverState: Record<string, unknown>;
  /** Files the gateway provides for this start (opencode's config), in layout.gatewayDir, read-only to the sandbox. */
  runFiles?: Record<string, string>;
  /** Environment the gateway sets (not the user's envVars, not shown to them). */
  systemEnv?: Record<string, string>;
  /** The gateway's port on the host's loopback; inside the sandbox 127.0.0.1:<port> leads to it through gateway.sock (the model proxy). */
  gatewayPort?: number;
}

export interface StartResult {
  endpoints: Record<string, Endpoint>;
  driverState: Record<string, unknown>;
  limits: 'enforced' | 'not-enforced';
  /** Why limits are not enforced; the gateway logs it (`codeyard doctor` explains it too). */
  limitsReason?: string;
}

export interface ExecRequest {
  cmd: string | string[];
  cwd?: string;
  envs?: Record<string, string>;
  timeoutMs: number;
  maxOutputBytes: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
}

export interface Runtime {
  readonly name: string;
  /** Why the driver cannot work right now (its engine is down), or undefined when it can. */
  available?(): Promise<string | undefined>;
  /** Prepares storage (workspace, home). Idempotent. */
  create(spec: SandboxSpec): Promise<void>;
  /** Starts the main process; resolves once spawned (health is the supervisor's job). */
  start(spec: SandboxSpec): Promise<StartResult>;
  /** Stops every process of the sandbox; keeps its files. Idempotent. */
  stop(spec: SandboxSpec): Promise<void>;
  /** Stops and deletes everything the sandbox held. Idempotent. */
  remove(spec: SandboxSpec): Promise<void>;
  /** Whether its processes are alive, and where its services listen. */
  inspect(spec: SandboxSpec): Promise<{ running: boolean; endpoints: Record<string, Endpoint> }>;
  exec(spec: SandboxSpec, req: ExecRequest): Promise<ExecResult>;
  /** Sandbox IDs the runtime still holds resources for, for reconciliation at startup. */
  list(): Promise<string[]>;
  /** Stops the processes of a sandbox the store has no record of (files stay); returns how many it stopped. */
  stopOrphan(sandboxID: string): Promise<number>;
  /** A tail of the main process's log, for error messages. */
  logTail(sandboxID: string, bytes?: number): string;
  /** The main process's log from byte `offset` on (for following it); offset is where the next read starts. */
  readLog(sandboxID: string, offset: number): { text: string; offset: number };
  /** How the last main process this gateway started for the sandbox ended, if it saw it end. */
  lastExit(spec: SandboxSpec): Promise<{ exitCode: number | null; signal: string | null } | undefined>;
  /** Whether the kernel OOM-killed a process of the sandbox during its current run. */
  oomKilled(spec: SandboxSpec): Promise<boolean>;
  /** Freezes every process of the sandbox (for a consistent snapshot of its files); false if it cannot. */
  pause(spec: SandboxSpec): Promise<boolean>;
  resume(spec: SandboxSpec): Promise<void>;
  /**
   * Where to dial a TCP port the sandbox's own processes listen on (a dev server, for a port
   * preview). Throws UpstreamUnavailableError, saying what to do, when nothing of the sandbox's listens there.
   */
  portEndpoint?(spec: SandboxSpec, port: number): Promise<Endpoint>;
  /** What the sandbox uses now, where the driver can tell. */
  usage(spec: SandboxSpec): Promise<{ memoryBytes: number | null; cpuSeconds: number | null }>;
}
