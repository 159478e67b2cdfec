import { createWriteStream, existsSync, mkdirSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from '../../logger.ts';
import { ConflictError, SetupError, UpstreamUnavailableError } from '../../errors.ts';
import { chownIfNeeded, ensureMountPoint } from '../ownership.ts';
import { signalName } from '../signal-name.ts';
import type { Endpoint, ExecRequest, ExecResult, Runtime, SandboxSpec, StartResult } from '../interface.ts';
import { captureOutput } from '../capture-output.ts';
import { pinSocket } from '../socket-pin.ts';
import { readFileFrom, tailFile } from '../main-log.ts';
import { AGENT_DIR, insideLayout, sandboxDirs, sandboxEnv, type SandboxDirs } from '../local/sandbox-dirs.ts';
import { HostListeners } from '../host-listeners.ts';
import { expandSystemEnv, writeGatewayFiles } from '../run-files.ts';
import { engineError, isNotFound } from './docker-client.ts';

export interface DockerRuntimeOptions {
  docker: Docker;
  /** Where the engine is, for messages. */
  where: string;
  dataDir: string;
  image: string;
  /** uid/gid of `coder` in the image; workspace files on the host belong to it. */
  uid: number;
  maxProcesses: number;
  socketWaitMs: number;
  /** Per template: `none` gives its containers no network. */
  networks: Record<string, 'default' | 'none' | undefined>;
  log: Logger;
}

const LOG_TAIL_BYTES = 4_000;
const STOP_GRACE_S = 3;
/** timeout(1)'s grace between TERM and KILL for an exec that overran. */
const EXEC_KILL_AFTER_S = 2;
const EXEC_BACKSTOP_MS = 5_000;

/**
 * Sandboxes as containers of the workspace image: one per sandbox, labelled
 * so reconciliation finds them, limited from the sandbox record, no
 * capabilities, no new privileges, read-only root; the workspace and home
 * bind-mounted from the host (owned by the image's uid), and code-server's
 * socket in a bind-mounted run directory, pinned like the local runtime's.
 * Stop removes the container (the files are on the host); start makes a new
 * one, so an upgraded image is picked up on the next start.
 */
export class DockerRuntime implements Runtime {
  readonly name = 'docker';
  private readonly opts: DockerRuntimeOptions;
  /** Label that tells this gateway's containers from another's on the same engine. */
  private readonly instance: string;
  /** Followers copying each container's output into the gateway-owned main.log. */
  private readonly followers = new Map<string, { stream: NodeJS.ReadableStream; file: WriteStream }>();
  /** Per sandbox: its egress proxy (no network but the gateway's) or its relay to the gateway (the model proxy). */
  private readonly listeners = new HostListeners();
  /** Exit status of containers this gateway removed (their record is gone with them). */
  private readonly exits = new Map<string, { exitCode: number | null; signal: string | null; oomKilled: boolean }>();

  constructor(opts: DockerRuntimeOptions) {
    this.opts = opts;
    this.instance = createHash('sha256').update(opts.dataDir).digest('hex').slice(0, 12);
  }

  private containerName(sandboxID: string): string {
    return `codeyard-${sandboxID}`;
  }

  private dirs(spec: SandboxSpec): SandboxDirs {
    return sandboxDirs(this.opts.dataDir, spec.sandboxID, spec.workspace);
  }

  async available(): Promise<string | undefined> {
    return checkDockerReady(this.opts.docker, this.opts.where, this.opts.image);
  }

  async create(spec: SandboxSpec): Promise<void> {
    const dirs = this.dirs(spec);
    for (const dir of [dirs.base, dirs.home, dirs.workspace, dirs.run, dirs.endpoints]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(dirs.gateway, { recursive: true, mode: 0o755 });
    // Files the container writes belong to the image's uid on the host, never to root.
    for (const dir of [dirs.home, dirs.workspace, dirs.run]) chownIfNeeded(dir, this.opts.uid);
    ensureMountPoint(join(dirs.home, 'workspace'), this.opts.uid);
  }

  async start(spec: SandboxSpec): Promise<StartResult> {
    const dirs = this.dirs(spec);
    const existing = await this.inspectContainer(spec.sandboxID);
    if (existing?.State.Running) {
      this.follow(spec.sandboxID, existing.Id);
      return { endpoints: this.endpoints(spec, dirs), driverState: { containerId: existing.Id, init: { pid: existing.State.Pid } }, limits: 'enforced' };
    }
    if (existing) await this.removeContainer(spec.sandboxID);
    for (const s of Object.values(spec.services)) {
      rmSync(join(dirs.run, s.socketName), { force: true });
      rmSync(join(dirs.endpoints, s.socketName), { force: true });
    }
    const layout = insideLayout();
    writeGatewayFiles(dirs.gateway, spec.runFiles);
    // An isolated sandbox (the browser) has no network of its own: out only through the gateway's egress proxy.
    const isolated = spec.network === 'isolated';
    const network = this.opts.networks[spec.templateID] === 'none' || isolated ? 'none' : 'bridge';
    if (isolated && this.opts.networks[spec.templateID] !== 'none') await this.listeners.openEgress(spec.sandboxID, dirs.gateway, this.opts.log);
    if (spec.gatewayPort) await this.listeners.openGatewayRelay(spec.sandboxID, dirs.gateway, spec.gatewayPort, spec.seq);
    let container: Docker.Container;
    try {
      container = await this.opts.docker.createContainer({
        name: this.containerName(spec.sandboxID),
        Image: this.opts.image,
        // The model proxy is on the host's loopback: a relay inside makes 127.0.0.1:<port> lead to it.
        Cmd: spec.gatewayPort ? [layout.nodeBin, `${layout.agentDir}/gateway-relay.mjs`, String(spec.gatewayPort), `${layout.gatewayDir}/gateway.sock`, '--', ...spec.command(layout)] : spec.command(layout),
        Env: Object.entries(sandboxEnv(layout, { ...spec.envVars, ...expandSystemEnv(spec.systemEnv, layout) })).map(([k, v]) => `${k}=${v}`),
        User: `${this.opts.uid}:${this.opts.uid}`,
        WorkingDir: layout.workspace,
        Hostname: `sbx-${spec.sandboxID}`,
        Labels: {
          'codeyard.instance': this.instance,
          'codeyard.sandbox': spec.sandboxID,
          'codeyard.user': spec.owner,
          'codeyard.workspace': spec.workspace?.name ?? '',
          'codeyard.template': spec.templateID,
        },
        HostConfig: {
          Binds: [`${dirs.home}:${layout.home}`, `${dirs.workspace}:${layout.workspace}`, `${dirs.run}:${layout.runDir}`, `${dirs.gateway}:${layout.gatewayDir}:ro`, `${AGENT_DIR}:${layout.agentDir}:ro`],
          Memory: spec.memoryMB * 1024 * 1024,
          MemorySwap: spec.memoryMB * 1024 * 1024,
          NanoCpus: Math.round(spec.cpuCount * 1e9),
          PidsLimit: this.opts.maxProcesses,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges:true'],
          ReadonlyRootfs: true,
          // exec: Docker's default tmpfs is noexec, which breaks tools that run what they build there (go test).
          Tmpfs: { '/tmp': 'rw,exec,nosuid,nodev,mode=1777', '/var/tmp': 'rw,exec,nosuid,nodev,mode=1777' },
          NetworkMode: network,
          RestartPolicy: { Name: 'no' },
          Init: false,
        },
      });
    } catch (err) {
      if (isNotFound(err)) throw new SetupError(`the workspace image ${this.opts.image} is not on the Docker engine at ${this.opts.where}: build it with \`codeyard image build --tag ${this.opts.image}\` (add --base-from-debootstrap with no registry)`);
      throw engineError(err, this.opts.where, `creating the container of sandbox ${spec.sandboxID}`);
    }
    try {
      await container.start();
    } catch (err) {
      await this.removeContainer(spec.sandboxID).catch(() => {});
      throw engineError(err, this.opts.where, `starting the container of sandbox ${spec.sandboxID}`);
    }
    this.exits.delete(spec.sandboxID);
    this.follow(spec.sandboxID, container.id);
    const deadline = Date.now() + this.opts.socketWaitMs;
    const endpoints: Record<string, Endpoint> = {};
    try {
      for (const [name, service] of Object.entries(spec.services)) {
        endpoints[name] = {
          socketPath: await pinSocket({
            sandboxID: spec.sandboxID, socketName: service.socketName, runDir: dirs.run, endpointsDir: dirs.endpoints, uid: this.opts.uid,
            deadline, waitMs: this.opts.socketWaitMs,
            alive: async () => (await this.inspectContainer(spec.sandboxID))?.State.Running === true,
            logTail: () => this.logTail(spec.sandboxID, 1500),
          }),
        };
      }
    } catch (err) {
      await this.recordExit(spec.sandboxID);
      throw err;
    }
    this.opts.log.info({ sandboxID: spec.sandboxID, container: container.id.slice(0, 12), network }, 'sandbox container started');
    const pid = (await this.inspectContainer(spec.sandboxID))?.State.Pid;
    return { endpoints, driverState: { containerId: container.id, init: { pid } }, limits: 'enforced' };
  }

  async stop(spec: SandboxSpec): Promise<void> {
    await this.removeContainer(spec.sandboxID);
    const dirs = this.dirs(spec);
    for (const s of Object.values(spec.services)) {
      rmSync(join(dirs.run, s.socketName), { force: true });
      rmSync(join(dirs.endpoints, s.socketName), { force: true });
    }
  }

  async remove(spec: SandboxSpec): Promise<void> {
    await this.removeContainer(spec.sandboxID);
    rmSync(sandboxDirs(this.opts.dataDir, spec.sandboxID).base, { recursive: true, force: true });
    this.exits.delete(spec.sandboxID);
  }

  async inspect(spec: SandboxSpec) {
    const c = await this.inspectContainer(spec.sandboxID);
    const running = c?.State.Running === true;
    if (running) this.follow(spec.sandboxID, c!.Id);
    // Adopted after a gateway restart: its way out went with the old gateway.
    if (running && spec.network === 'isolated' && this.opts.networks[spec.templateID] !== 'none' && !this.listeners.has(spec.sandboxID, 'egress')) await this.listeners.openEgress(spec.sandboxID, this.dirs(spec).gateway, this.opts.log);
    if (running && spec.gatewayPort && !this.listeners.has(spec.sandboxID, 'gateway')) await this.listeners.openGatewayRelay(spec.sandboxID, this.dirs(spec).gateway, spec.gatewayPort, spec.seq);
    return { running, endpoints: this.endpoints(spec, this.dirs(spec)) };
  }

  async exec(spec: SandboxSpec, req: ExecRequest): Promise<ExecResult> {
    const c = await this.inspectContainer(spec.sandboxID);
    if (!c?.State.Running) throw new ConflictError(`sandbox ${spec.sandboxID} is not running: start it before exec`);
    const layout = insideLayout();
    const command = typeof req.cmd === 'string' ? ['/bin/bash', '-c', req.cmd] : req.cmd;
    const seconds = Math.max(0.001, req.timeoutMs / 1000).toFixed(3);
    let stream: NodeJS.ReadWriteStream;
    let exec: Docker.Exec;
    try {
      exec = await this.opts.docker.getContainer(c.Id).exec({
        Cmd: ['timeout', '-k', String(EXEC_KILL_AFTER_S), seconds, ...command],
        Env: Object.entries(sandboxEnv(layout, { ...expandSystemEnv(spec.systemEnv, layout), ...spec.envVars, ...req.envs })).map(([k, v]) => `${k}=${v}`),
        WorkingDir: req.cwd ?? layout.workspace,
        User: `${this.opts.uid}:${this.opts.uid}`,
        AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false,
      });
      stream = await exec.start({ hijack: true, stdin: false });
    } catch (err) {
      throw engineError(err, this.opts.where, `exec in sandbox ${spec.sandboxID}`);
    }
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.opts.docker.modem.demuxStream(stream, stdout, stderr);
    const out = captureOutput(stdout, req.maxOutputBytes);
    const err = captureOutput(stderr, req.maxOutputBytes);
    const startedAt = Date.now();
    await new Promise<void>((resolve) => {
      const backstop = setTimeout(() => { (stream as unknown as { destroy: () => void }).destroy(); resolve(); }, req.timeoutMs + EXEC_BACKSTOP_MS);
      stream.once('end', () => { clearTimeout(backstop); resolve(); });
      stream.once('close', () => { clearTimeout(backstop); resolve(); });
      stream.once('error', () => { clearTimeout(backstop); resolve(); });
    });
    stdout.end();
    stderr.end();
    const info = await exec.inspect().catch(() => undefined);
    const exitCode = info?.ExitCode ?? 137;
    const timedOut = (exitCode === 124 || exitCode === 137) && Date.now() - startedAt >= req.timeoutMs;
    let stderrText = err.text();
    if (timedOut) stderrText += `\n[codeyard: command killed after timeoutMs=${req.timeoutMs}]\n`;
    // A process killed while its container lives on: the memory limit, most likely (a dying container is said by the lifecycle).
    if (exitCode === 137 && !timedOut && (await this.inspectContainer(spec.sandboxID).catch(() => undefined))?.State.Running) {
      stderrText += `\n[codeyard: a process was killed (SIGKILL), most likely for running out of memory (memoryMB=${spec.memoryMB})]\n`;
    }
    return { exitCode, stdout: out.text(), stderr: stderrText, timedOut, truncated: out.truncated() || err.truncated() };
  }

  async list(): Promise<string[]> {
    try {
      const containers = await this.opts.docker.listContainers({ all: true, filters: { label: [`codeyard.instance=${this.instance}`] } });
      return containers.map((c) => c.Labels['codeyard.sandbox']!).filter(Boolean);
    } catch (err) {
      throw engineError(err, this.opts.where, 'listing sandbox containers');
    }
  }

  async stopOrphan(sandboxID: string): Promise<number> {
    const c = await this.inspectContainer(sandboxID);
    if (!c) return 0;
    await this.removeContainer(sandboxID);
    return 1;
  }

  logTail(sandboxID: string, bytes = LOG_TAIL_BYTES): string {
    return tailFile(sandboxDirs(this.opts.dataDir, sandboxID).log, bytes);
  }

  readLog(sandboxID: string, offset: number): { text: string; offset: number } {
    return readFileFrom(sandboxDirs(this.opts.dataDir, sandboxID).log, offset);
  }

  async lastExit(spec: SandboxSpec) {
    await this.recordExit(spec.sandboxID);
    const e = this.exits.get(spec.sandboxID);
    return e && { exitCode: e.exitCode, signal: e.signal };
  }

  async oomKilled(spec: SandboxSpec): Promise<boolean> {
    await this.recordExit(spec.sandboxID);
    return this.exits.get(spec.sandboxID)?.oomKilled ?? false;
  }

  async pause(spec: SandboxSpec): Promise<boolean> {
    try {
      await this.opts.docker.getContainer(this.containerName(spec.sandboxID)).pause();
      return true;
    } catch {
      return false;
    }
  }

  async resume(spec: SandboxSpec): Promise<void> {
    await this.opts.docker.getContainer(this.containerName(spec.sandboxID)).unpause().catch(() => {});
  }

  async usage(spec: SandboxSpec) {
    try {
      const s = await this.opts.docker.getContainer(this.containerName(spec.sandboxID)).stats({ stream: false }) as unknown as {
        memory_stats?: { usage?: number; stats?: { cache?: number; inactive_file?: number } };
        cpu_stats?: { cpu_usage?: { total_usage?: number } };
      };
      const usage = s.memory_stats?.usage;
      const cache = s.memory_stats?.stats?.inactive_file ?? s.memory_stats?.stats?.cache ?? 0;
      const cpu = s.cpu_stats?.cpu_usage?.total_usage;
      return { memoryBytes: usage === undefined ? null : usage - cache, cpuSeconds: cpu === undefined ? null : cpu / 1e9 };
    } catch {
      return { memoryBytes: null, cpuSeconds: null };
    }
  }

  /** The container's state, or undefined when there is none. */
  /** A container on the bridge network has an address of its own: dial the port there (a server bound to the container's loopback only cannot be reached). */
  async portEndpoint(spec: SandboxSpec, port: number): Promise<Endpoint> {
    const c = await this.inspectContainer(spec.sandboxID);
    if (!c?.State.Running) throw new UpstreamUnavailableError(`sandbox ${spec.sandboxID} is not running: start it, then reload`);
    const address = Object.values(c.NetworkSettings.Networks ?? {}).map((n) => n.IPAddress).find(Boolean);
    if (!address) throw new UpstreamUnavailableError(`sandbox ${spec.sandboxID} has no network (template ${spec.templateID}): its ports cannot be previewed`);
    return { host: address, port };
  }

  private async inspectContainer(sandboxID: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.opts.docker.getContainer(this.containerName(sandboxID)).inspect();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw engineError(err, this.opts.where, `inspecting the container of sandbox ${sandboxID}`);
    }
  }

  /** Keeps how the container ended (exit code, signal, OOM), before removal erases it. */
  private async recordExit(sandboxID: string): Promise<void> {
    const c = await this.inspectContainer(sandboxID).catch(() => undefined);
    if (!c || c.State.Running) return;
    const code = c.State.ExitCode;
    const signal = code > 128 ? signalName(code - 128) : null;
    this.exits.set(sandboxID, { exitCode: signal ? null : code, signal, oomKilled: c.State.OOMKilled === true });
  }


  private async removeContainer(sandboxID: string): Promise<void> {
    this.unfollow(sandboxID);
    // The gateway's listeners for the sandbox go with its container.
    this.listeners.closeAll(sandboxID);
    const container = this.opts.docker.getContainer(this.containerName(sandboxID));
    try {
      await container.stop({ t: STOP_GRACE_S });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== 304 && status !== 404) throw engineError(err, this.opts.where, `stopping the container of sandbox ${sandboxID}`);
    }
    // How it ended (exit code, signal, OOM) goes with the container: keep it.
    await this.recordExit(sandboxID);
    try {
      await container.remove({ force: true });
    } catch (err) {
      if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 409) throw engineError(err, this.opts.where, `removing the container of sandbox ${sandboxID}`);
    }
  }

  /** Copies the container's output into main.log (a file the container cannot touch), from now on. */
  private follow(sandboxID: string, containerId: string): void {
    if (this.followers.has(sandboxID)) return;
    const logPath = sandboxDirs(this.opts.dataDir, sandboxID).log;
    mkdirSync(sandboxDirs(this.opts.dataDir, sandboxID).base, { recursive: true, mode: 0o700 });
    const since = existsSync(logPath) ? Math.floor(statSync(logPath).mtimeMs / 1000) + 1 : 0;
    const file = createWriteStream(logPath, { flags: 'a', mode: 0o600 });
    const entry = { stream: undefined as unknown as NodeJS.ReadableStream, file };
    this.followers.set(sandboxID, entry);
    this.opts.docker.getContainer(containerId).logs({ follow: true, stdout: true, stderr: true, since }).then((stream) => {
      if (this.followers.get(sandboxID) !== entry) { (stream as unknown as { destroy: () => void }).destroy(); return; }
      entry.stream = stream;
      this.opts.docker.modem.demuxStream(stream, file, file);
      stream.on('end', () => { if (this.followers.get(sandboxID) === entry) this.unfollow(sandboxID); });
      stream.on('error', () => this.unfollow(sandboxID));
    }, () => this.unfollow(sandboxID));
  }

  private unfollow(sandboxID: string): void {
    const f = this.followers.get(sandboxID);
    if (!f) return;
    this.followers.delete(sandboxID);
    (f.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    f.file.end();
  }

  private endpoints(spec: SandboxSpec, dirs: SandboxDirs): Record<string, Endpoint> {
    return Object.fromEntries(Object.entries(spec.services).map(([name, s]) => [name, { socketPath: join(dirs.endpoints, s.socketName) }]));
  }
}

const PING_TIMEOUT_MS = 5_000;

/** For `doctor` and the gateway's start: is the engine there, and the image? */
export async function checkDockerReady(docker: Docker, where: string, image: string): Promise<string | undefined> {
  try {
    // An engine that accepts the connection and never answers must not hang the gateway's start.
    await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS).unref())]);
  } catch (err) {
    return engineError(err, where, 'checking it answers').message;
  }
  try {
    await docker.getImage(image).inspect();
  } catch (err) {
    if (isNotFound(err)) return `the workspace image ${image} is not built: run \`codeyard image build --tag ${image}\` (with --base-from-debootstrap where no registry is reachable)`;
    return engineError(err, where, 'looking for the workspace image').message;
  }
  return undefined;
}

