import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, readFileSync, renameSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../logger.ts';
import { ConflictError, InvalidInputError, RuntimeFailureError, SetupError, UpstreamUnavailableError } from '../../errors.ts';
import type { Toolchain } from '../../toolchain/paths.ts';
import { resolveCommand, SYSTEM_PATH } from '../../toolchain/system-commands.ts';
import type { Endpoint, ExecRequest, ExecResult, Runtime, SandboxLayout, SandboxSpec, StartResult } from '../interface.ts';
import { captureOutput } from '../capture-output.ts';
import { pinSocket } from '../socket-pin.ts';
import { expandSystemEnv, writeGatewayFiles } from '../run-files.ts';
import { HostListeners } from '../host-listeners.ts';
import { chownIfNeeded, ensureMountPoint } from '../ownership.ts';
import { signalName } from '../signal-name.ts';
import { readFileFrom, tailFile } from '../main-log.ts';
import { Cgroups, type CgroupHandle } from './cgroups.ts';
import { BWRAP_FDS, bwrapArgs, bwrapCommandLine, dropPrivileges, encodeArgs, INSIDE_UID } from './bwrap-args.ts';
import { hostLayout, insideLayout, sandboxDirs, sandboxEnv, type SandboxDirs } from './sandbox-dirs.ts';
import { identify, isAlive, waitUntilGone, type ProcessIdentity } from './process-identity.ts';
import { cgroupPids, listenerOf, listenersOn, processTree } from './listening-ports.ts';
import { noUserNamespacesFilter } from './seccomp.ts';
import { connectNetwork, enterNetwork, networkTools, sandboxResolvConf, type NetworkTools } from './sandbox-network.ts';
import { PortRelays } from './port-relays.ts';

export type Isolation = 'bubblewrap' | 'none';

export interface LocalRuntimeOptions {
  dataDir: string;
  toolchain: Toolchain;
  isolation: Isolation;
  /** First host uid for sandboxes when the gateway is root. */
  uidBase: number;
  /** cgroup pids.max per sandbox. */
  maxProcesses: number;
  /** How long start() waits for the main process to create its service sockets. */
  socketWaitMs: number;
  /** runtime.local.network: host — sandboxes share the host's network (measurements, single-user machines). */
  sharedNetwork?: boolean;
  /** Per template: `none` gives its sandboxes a network namespace with no way out at all. */
  networks?: Record<string, 'default' | 'none' | undefined>;
  log: Logger;
}

interface LocalDriverState {
  /** The bwrap (or, without isolation, the main) process we spawned. */
  outer?: ProcessIdentity;
  /** PID 1 of the sandbox's PID namespace: killing it kills every process inside. */
  init?: ProcessIdentity;
  cgroup?: CgroupHandle;
  uid?: number;
  /** slirp4netns, the sandbox's way out of its network namespace. */
  net?: ProcessIdentity;
}

/** Per-user uids start here above uidBase; below it are the per-sandbox uids of earlier versions, still in use by their sandboxes. */
const USER_UID_OFFSET = 1_000_000;
// Linux caps sun_path at 108 bytes including the terminator.
const MAX_SOCKET_PATH = 107;
const INFO_FD_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 5_000;
/** timeout(1)'s grace between TERM and KILL for an exec that overran. */
const EXEC_KILL_AFTER_S = 2;
/** Our own backstop beyond timeoutMs, should timeout(1) itself hang. */
const EXEC_BACKSTOP_MS = 5_000;
/** After an exec's process exits, how long its output pipes may stay open (a background child holding them). */
const EXEC_DRAIN_MS = 200;
const LOG_TAIL_BYTES = 4_000;
/** How long lastExit waits for the exit event of a main process already gone. */
const EXIT_EVENT_WAIT_MS = 1_000;
/** main.log is rotated (one old copy kept) at start once it is this big. */
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

// Joins the cgroups named before `--`, then becomes the command after it, so
// every process the sandbox ever forks is inside its limits from the start.
const JOIN_CGROUPS = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"';

/**
 * The environment of the processes the gateway spawns for a sandbox: nothing of
 * the gateway's, and a marker naming the sandbox's directory. The marker is how
 * a process is known to be this data dir's (a database restored from another
 * one names pids that are not ours); bwrap's command line no longer holds host
 * paths, and a root process's environment is not readable by the sandbox.
 */
const MARKER = 'CODEYARD_SANDBOX';
function spawnEnv(base: string): Record<string, string> {
  return { PATH: SYSTEM_PATH, [MARKER]: base };
}

/** `argv` run by a shell that first joins the sandbox's cgroups (JOIN_CGROUPS); without cgroups, as it is. */
function inCgroups(cgroup: CgroupHandle | undefined, argv: string[]): string[] {
  return ['/bin/sh', '-c', JOIN_CGROUPS, 'codeyard-join', ...(cgroup?.procsFiles ?? []), '--', ...argv];
}

export class LocalRuntime implements Runtime {
  readonly name = 'local';
  private readonly cgroups = new Cgroups();
  private readonly asRoot = process.getuid?.() === 0;
  private readonly opts: LocalRuntimeOptions;
  private readonly bin: { bwrap: string; nsenter: string; env: string; timeout: string };
  /** How main processes this gateway started have ended (bwrap passes on its child's status; 128+N is signal N). */
  private readonly exits = new Map<string, { exitCode: number | null; signal: string | null }>();
  /** Whether the kernel OOM-killed something in a run whose cgroup is already gone. */
  private readonly oomSeen = new Map<string, boolean>();
  /** The gateway's listeners for sandboxes: egress proxies (browser) and relays to the gateway (opencode). */
  private readonly listeners = new HostListeners();
  private readonly portRelays = new PortRelays();
  private readonly net: NetworkTools = networkTools();

  constructor(opts: LocalRuntimeOptions) {
    this.opts = opts;
    if (opts.isolation === 'none' && this.asRoot) {
      throw new SetupError('runtime.local.isolation: none is refused when the gateway runs as root: every sandbox user would be root on the host. ' +
        'Install bubblewrap (apt-get install bubblewrap), or run codeyard as an unprivileged user');
    }
    const bwrap = resolveCommand('bwrap');
    if (opts.isolation === 'bubblewrap' && !bwrap) {
      throw new SetupError('bubblewrap (bwrap) is not installed: run `codeyard setup` as root (or apt-get install bubblewrap), ' +
        'or, as an unprivileged user, set runtime.local.isolation: none to run sandboxes without isolation');
    }
    this.bin = {
      bwrap: bwrap ?? 'bwrap',
      nsenter: resolveCommand('nsenter') ?? '/usr/bin/nsenter',
      env: '/usr/bin/env',
      timeout: '/usr/bin/timeout',
    };
  }

  async create(spec: SandboxSpec): Promise<void> {
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID, spec.workspace);
    for (const s of Object.values(spec.services)) {
      const socket = join(dirs.endpoints, s.socketName);
      if (socket.length > MAX_SOCKET_PATH) {
        throw new SetupError(`sandbox socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter data dir`);
      }
    }
    const uid = this.sandboxUid(spec);
    for (const dir of [dirs.base, dirs.home, dirs.workspace, dirs.run, dirs.etc, dirs.endpoints]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    mkdirSync(dirs.gateway, { recursive: true, mode: 0o755 });
    if (this.asRoot) {
      for (const dir of [dirs.home, dirs.workspace, dirs.run]) chownIfNeeded(dir, uid);
    }
    // The workspace's mount point inside the home: the user's, and a real directory whatever they put there.
    ensureMountPoint(join(dirs.home, 'workspace'), this.asRoot ? uid : undefined);
    // etc/ is the gateway's alone (base is 0700): writing by path is safe here.
    writeFileSync(join(dirs.etc, 'passwd'), passwdFor(uid));
    writeFileSync(join(dirs.etc, 'group'), groupFor(uid));
    writeFileSync(join(dirs.etc, 'resolv.conf'), sandboxResolvConf());
  }

  async start(spec: SandboxSpec): Promise<StartResult> {
    if (spec.network === 'isolated' && this.opts.isolation === 'none') {
      // Its unauthenticated listener (Chromium's DevTools) would sit on the host's loopback for anyone to use.
      throw new SetupError(`template ${spec.templateID} needs its own network namespace, which isolation: none cannot give: use bubblewrap (or runtime: docker)`);
    }
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID, spec.workspace);
    const previous = spec.driverState as LocalDriverState;
    if (this.ours(spec.sandboxID, previous.init ?? previous.outer)) {
      return { endpoints: this.endpoints(spec, dirs), driverState: previous as Record<string, unknown>, limits: previous.cgroup ? 'enforced' : 'not-enforced' };
    }
    for (const s of Object.values(spec.services)) {
      rmSync(join(dirs.run, s.socketName), { force: true });
      rmSync(join(dirs.endpoints, s.socketName), { force: true });
    }

    const layout = this.layout(dirs);
    const uid = this.sandboxUid(spec);
    let cgroup: CgroupHandle | undefined;
    let limitsReason: string | undefined;
    try {
      cgroup = this.cgroups.create(this.cgroupName(spec.sandboxID), { memoryMB: spec.memoryMB, cpuCount: spec.cpuCount, maxProcesses: this.opts.maxProcesses });
    } catch (err) {
      limitsReason = (err as Error).message;
    }

    const bubblewrap = this.opts.isolation === 'bubblewrap';
    const ownNetwork = this.ownNetwork(spec);
    writeGatewayFiles(dirs.gateway, spec.runFiles);
    // opencode reaches the model proxy at 127.0.0.1:<gatewayPort>: in a network of its own, a relay inside leads there.
    const relayToGateway = ownNetwork && spec.gatewayPort !== undefined;
    if (relayToGateway) await this.listeners.openGatewayRelay(spec.sandboxID, dirs.gateway, spec.gatewayPort!, spec.seq);
    if (spec.network === 'isolated' && bubblewrap) await this.listeners.openEgress(spec.sandboxID, dirs.gateway, this.opts.log);
    const command = relayToGateway
      ? [layout.nodeBin, `${layout.agentDir}/gateway-relay.mjs`, String(spec.gatewayPort), `${layout.gatewayDir}/gateway.sock`, '--', ...spec.command(layout)]
      : spec.command(layout);
    // The user's environment is applied by env(1) after the privilege drop, never by a root process.
    const main = [this.bin.env, '-i', ...envPairs(sandboxEnv(layout, { ...spec.envVars, ...expandSystemEnv(spec.systemEnv, layout) })), ...command];
    const argv = bubblewrap
      ? [this.bin.bwrap, ...bwrapCommandLine(), '--', ...(this.asRoot ? dropPrivileges(uid) : []), ...main]
      : main;

    if ((lstatOrUndefined(dirs.log)?.size ?? 0) > LOG_ROTATE_BYTES) renameSync(dirs.log, `${dirs.log}.1`);
    const logFd = openSync(dirs.log, 'a', 0o600);
    let child: ChildProcess;
    try {
      const [shell, ...args] = inCgroups(cgroup, argv);
      child = spawn(shell!, args, {
        detached: true,
        cwd: bubblewrap ? '/' : dirs.workspace,
        env: spawnEnv(dirs.base),
        stdio: ['ignore', logFd, logFd, 'pipe', 'pipe', 'pipe', 'pipe'],
      });
    } finally {
      closeSync(logFd);
    }
    this.exits.delete(spec.sandboxID);
    this.oomSeen.delete(spec.sandboxID);
    child.once('exit', (code, signal) => {
      const bySignal = code !== null && code > 128 ? signalName(code - 128) : null;
      this.exits.set(spec.sandboxID, { exitCode: bySignal ? null : code, signal: signal ?? bySignal });
    });
    const spawnFailed = new Promise<never>((_, reject) => child.once('error', (err) => reject(new RuntimeFailureError(`cannot spawn the sandbox: ${err.message}`))));
    spawnFailed.catch(() => {});
    child.unref();
    for (const n of [3, 4, 5, 6]) (child.stdio as unknown as (Writable | null)[])[n]?.on('error', () => {});
    const fd = (n: number) => (child.stdio as unknown as Writable[])[n]!;
    const block = fd(BWRAP_FDS.block);
    if (bubblewrap) {
      // Options, then the filter that refuses new user namespaces; the command waits on `block`.
      fd(BWRAP_FDS.args).end(encodeArgs(bwrapArgs({ dirs, toolchain: this.opts.toolchain, hostname: `sbx-${spec.sandboxID}`, asRoot: this.asRoot, ownNetwork })));
      fd(BWRAP_FDS.seccomp).end(noUserNamespacesFilter());
    } else {
      for (const n of [BWRAP_FDS.block, BWRAP_FDS.seccomp, BWRAP_FDS.args]) fd(n).end();
    }

    const state: LocalDriverState = { outer: child.pid ? identify(child.pid) : undefined, cgroup, uid };
    try {
      state.init = bubblewrap
        ? await Promise.race([readInitPid(child, () => this.logTail(spec.sandboxID)), spawnFailed])
        : state.outer;
      if (bubblewrap) {
        // The network is ready before the first instruction of the sandbox's command runs.
        if (ownNetwork && spec.network === 'outbound' && this.opts.networks?.[spec.templateID] !== 'none') {
          state.net = await Promise.race([connectNetwork({
            tools: this.net, pid: state.init!.pid, asRoot: this.asRoot, env: spawnEnv(dirs.base),
            wrap: (a) => inCgroups(cgroup, a),
          }), spawnFailed]);
        }
        block.end('go');
      }
      const endpoints = await Promise.race([this.pinSockets(spec, dirs, state), spawnFailed]);
      this.opts.log.info({ sandboxID: spec.sandboxID, pid: state.init?.pid, isolation: this.opts.isolation }, 'sandbox process started');
      return { endpoints, driverState: state as Record<string, unknown>, limits: cgroup ? 'enforced' : 'not-enforced', limitsReason };
    } catch (err) {
      // Nothing of a failed start may outlive it.
      await this.kill(spec.sandboxID, state).catch(() => {});
      throw err;
    }
  }

  async stop(spec: SandboxSpec): Promise<void> {
    await this.kill(spec.sandboxID, spec.driverState as LocalDriverState);
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
    for (const s of Object.values(spec.services)) {
      rmSync(join(dirs.run, s.socketName), { force: true });
      rmSync(join(dirs.endpoints, s.socketName), { force: true });
    }
  }

  async remove(spec: SandboxSpec): Promise<void> {
    await this.kill(spec.sandboxID, spec.driverState as LocalDriverState);
    rmSync(sandboxDirs(this.opts.dataDir, spec.sandboxID).base, { recursive: true, force: true });
  }

  async inspect(spec: SandboxSpec) {
    const state = spec.driverState as LocalDriverState;
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
    const running = this.ours(spec.sandboxID, state.init ?? state.outer);
    // Adopted after a gateway restart: its listeners went with the old gateway.
    if (running && this.opts.isolation === 'bubblewrap') {
      if (spec.network === 'isolated' && !this.listeners.has(spec.sandboxID, 'egress')) await this.listeners.openEgress(spec.sandboxID, dirs.gateway, this.opts.log);
      if (this.ownNetwork(spec) && spec.gatewayPort !== undefined && !this.listeners.has(spec.sandboxID, 'gateway')) await this.listeners.openGatewayRelay(spec.sandboxID, dirs.gateway, spec.gatewayPort, spec.seq);
    }
    return { running, endpoints: this.endpoints(spec, dirs) };
  }


  async exec(spec: SandboxSpec, req: ExecRequest): Promise<ExecResult> {
    const state = spec.driverState as LocalDriverState;
    if (!this.ours(spec.sandboxID, state.init ?? state.outer)) throw new ConflictError(`sandbox ${spec.sandboxID} is not running: start it before exec`);
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID, spec.workspace);
    const layout = this.layout(dirs);
    const cwd = req.cwd ?? layout.workspace;
    const env = sandboxEnv(layout, { ...expandSystemEnv(spec.systemEnv, layout), ...spec.envVars, ...req.envs });
    const command = typeof req.cmd === 'string' ? ['/bin/bash', '-c', req.cmd] : req.cmd;
    // timeout(1) signals the process group it leads, so pipelines die with the command.
    const seconds = Math.max(0.001, req.timeoutMs / 1000).toFixed(3);
    const inner = [this.bin.env, '-i', `--chdir=${cwd}`, ...envPairs(env), this.bin.timeout, '-k', String(EXEC_KILL_AFTER_S), seconds, ...command];

    let argv: string[];
    if (this.opts.isolation === 'bubblewrap') {
      // Into every namespace of the sandbox (its network included); then a bwrap that only
      // installs the same seccomp filter as the sandbox's own processes have (no new user namespaces).
      argv = [this.bin.nsenter, `--target=${state.init!.pid}`, '--mount', '--pid', '--ipc', '--uts', ...(this.ownNetwork(spec) ? ['--net'] : []),
        ...(this.asRoot ? [] : ['--user', '--preserve-credentials']), '--root', '--',
        this.bin.bwrap, '--dev-bind', '/', '/', '--seccomp', '3', '--',
        ...(this.asRoot ? dropPrivileges(state.uid ?? this.sandboxUid(spec)) : []), ...inner];
    } else {
      if (!existsSync(cwd)) throw new InvalidInputError(`cwd: ${cwd} does not exist in the sandbox`);
      argv = inner;
    }

    const [shell, ...args] = inCgroups(state.cgroup, argv);
    const child = spawn(shell!, args, {
      cwd: this.opts.isolation === 'none' ? cwd : '/',
      env: spawnEnv(dirs.base),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const filterFd = child.stdio[3] as Writable;
    filterFd.on('error', () => {});
    if (this.opts.isolation === 'bubblewrap') filterFd.end(noUserNamespacesFilter()); else filterFd.end();
    const out = captureOutput(child.stdout!, req.maxOutputBytes);
    const err = captureOutput(child.stderr!, req.maxOutputBytes);
    const startedAt = Date.now();
    const oomBefore = state.cgroup ? this.cgroups.oomKills(state.cgroup) : 0;
    const backstop = setTimeout(() => child.kill('SIGKILL'), req.timeoutMs + EXEC_BACKSTOP_MS);
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', (e) => reject(new RuntimeFailureError(`cannot run exec: ${e.message}`)));
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 137 : 1)));
    }).finally(() => clearTimeout(backstop));
    // A background child (`server &`) may hold the pipes open forever: give them a moment, then let go.
    await Promise.race([new Promise((r) => child.once('close', r)), sleep(EXEC_DRAIN_MS)]);
    child.stdout!.destroy();
    child.stderr!.destroy();
    const timedOut = (exitCode === 124 || exitCode === 137) && Date.now() - startedAt >= req.timeoutMs;
    let stderr = err.text();
    if (timedOut) stderr += `\n[codeyard: command killed after timeoutMs=${req.timeoutMs}]\n`;
    if (state.cgroup && this.cgroups.oomKills(state.cgroup) > oomBefore) {
      stderr += `\n[codeyard: a process was killed for running out of memory (memoryMB=${spec.memoryMB})]\n`;
    }
    return { exitCode, stdout: out.text(), stderr, timedOut, truncated: out.truncated() || err.truncated() };
  }

  async list(): Promise<string[]> {
    const dir = join(this.opts.dataDir, 'sandboxes');
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  logTail(sandboxID: string, bytes = LOG_TAIL_BYTES): string {
    return tailFile(sandboxDirs(this.opts.dataDir, sandboxID).log, bytes);
  }

  readLog(sandboxID: string, offset: number): { text: string; offset: number } {
    return readFileFrom(sandboxDirs(this.opts.dataDir, sandboxID).log, offset);
  }

  async stopOrphan(sandboxID: string): Promise<number> {
    // Without a record there are no pids: find the processes marked with its directory.
    const base = sandboxDirs(this.opts.dataDir, sandboxID).base;
    let stopped = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || !belongsTo(Number(entry), base)) continue;
      try { process.kill(Number(entry), 'SIGKILL'); stopped++; } catch { /* gone */ }
    }
    // Its cgroups (named by this data dir and its ID) would otherwise outlive it.
    await this.cgroups.removeFor(this.cgroupName(sandboxID));
    return stopped;
  }

  async lastExit(spec: SandboxSpec) {
    // A death noticed through /proc (or a failed start) can come before Node delivers the child's
    // exit event: give it a moment, so the crash record has the exit code and signal.
    const state = spec.driverState as LocalDriverState;
    for (let waited = 0; !this.exits.has(spec.sandboxID) && waited < EXIT_EVENT_WAIT_MS && !this.ours(spec.sandboxID, state.outer); waited += 20) await sleep(20);
    return this.exits.get(spec.sandboxID);
  }

  async oomKilled(spec: SandboxSpec): Promise<boolean> {
    const { cgroup } = spec.driverState as LocalDriverState;
    return this.oomSeen.get(spec.sandboxID) === true || (cgroup !== undefined && this.cgroups.oomKills(cgroup) > 0);
  }

  async pause(spec: SandboxSpec): Promise<boolean> {
    const { cgroup } = spec.driverState as LocalDriverState;
    return cgroup ? this.cgroups.freeze(cgroup, true) : false;
  }

  async resume(spec: SandboxSpec): Promise<void> {
    const { cgroup } = spec.driverState as LocalDriverState;
    if (cgroup) await this.cgroups.freeze(cgroup, false);
  }

  async portEndpoint(spec: SandboxSpec, port: number): Promise<Endpoint> {
    const state = spec.driverState as LocalDriverState;
    const { outer, cgroup, init } = state;
    if (spec.network === 'isolated') throw new UpstreamUnavailableError(`sandbox ${spec.sandboxID} has a network of its own: its ports cannot be previewed`);
    const nothing = () => new UpstreamUnavailableError(`nothing in sandbox ${spec.sandboxID} listens on port ${port}: start your server there (on 127.0.0.1 or 0.0.0.0), then reload`);
    if (this.ownNetwork(spec)) {
      // Its own network: whatever listens there is its own. Dialled from inside, through a relay only the gateway reaches.
      if (!init || !this.ours(spec.sandboxID, init)) throw nothing();
      const listener = listenersOn(port, `/proc/${init.pid}`)[0];
      if (!listener) throw nothing();
      const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
      const socketPath = await this.portRelays.socketFor({
        sandboxID: spec.sandboxID, endpointsDir: dirs.endpoints, port, host: listener.host, env: spawnEnv(dirs.base),
        enter: inCgroups(cgroup, enterNetwork(this.net, init.pid, this.asRoot)),
      });
      return { socketPath };
    }
    // Sharing the host's network (isolation: none, network: host): the port is the sandbox's only if one of its processes holds the listener.
    const pids = () => (cgroup ? cgroupPids(cgroup.procsFiles[0]!) : processTree(outer!.pid));
    const listener = outer && isAlive(outer) ? listenerOf(pids, port) : undefined;
    if (!listener) throw nothing();
    return { host: listener.host, port };
  }

  async usage(spec: SandboxSpec) {
    const { cgroup } = spec.driverState as LocalDriverState;
    return cgroup ? { memoryBytes: this.cgroups.memoryBytes(cgroup), cpuSeconds: this.cgroups.cpuSeconds(cgroup) } : { memoryBytes: null, cpuSeconds: null };
  }

  /** Kills the sandbox's PID namespace (every process in it), then empties and removes its cgroups. */
  private async kill(sandboxID: string, state: LocalDriverState): Promise<void> {
    this.listeners.closeAll(sandboxID);
    this.portRelays.close(sandboxID);
    const recorded = [state.init, state.outer, state.net].filter((p): p is ProcessIdentity => p !== undefined);
    if (recorded.some((p) => isAlive(p) && !this.ours(sandboxID, p))) {
      // Alive, but not this data dir's (its record came from another gateway's database): never signal it, nor empty its cgroups.
      this.opts.log.warn({ sandboxID, pids: recorded.map((p) => p.pid) }, 'recorded processes belong to another data dir; left alone');
      return;
    }
    for (const p of recorded) {
      if (!isAlive(p)) continue;
      // Without a PID namespace the main process leads its own process group: kill the group.
      const target = this.opts.isolation === 'none' ? -p.pid : p.pid;
      try { process.kill(target, 'SIGKILL'); } catch { /* gone */ }
    }
    if (state.cgroup && this.cgroupIsOurs(sandboxID, state.cgroup)) {
      // The group's OOM counter goes with it: keep the answer for the crash record.
      if (this.cgroups.oomKills(state.cgroup) > 0) this.oomSeen.set(sandboxID, true);
      await this.cgroups.destroy(state.cgroup);
    }
    if (!(await waitUntilGone(recorded, KILL_WAIT_MS))) {
      throw new RuntimeFailureError(`sandbox ${sandboxID}: processes ${recorded.map((p) => p.pid).join(', ')} survived SIGKILL; check them with ps`);
    }
  }

  /**
   * The main process creates its sockets in a directory the sandbox owns, where it
   * could swap one for a symlink to any host socket. So each socket, once it exists,
   * is hard-linked into a directory only the gateway can write, and the proxy dials
   * that link: link(2) never follows a symlink, and the link is checked to be a
   * socket owned by the sandbox.
   */
  private async pinSockets(spec: SandboxSpec, dirs: SandboxDirs, state: LocalDriverState): Promise<Record<string, Endpoint>> {
    const deadline = Date.now() + this.opts.socketWaitMs;
    const uid = this.asRoot ? state.uid! : process.getuid!();
    const endpoints: Record<string, Endpoint> = {};
    for (const [name, service] of Object.entries(spec.services)) {
      endpoints[name] = {
        socketPath: await pinSocket({
          sandboxID: spec.sandboxID, socketName: service.socketName, runDir: dirs.run, endpointsDir: dirs.endpoints, uid,
          deadline, waitMs: this.opts.socketWaitMs, alive: () => isAlive(state.init ?? state.outer), logTail: () => this.logTail(spec.sandboxID, 1500),
        }),
      };
    }
    return endpoints;
  }

  /** Whether `p` runs, and is this data dir's process for the sandbox (not a recycled pid, not another gateway's). */
  private ours(sandboxID: string, p: ProcessIdentity | undefined): boolean {
    return p !== undefined && isAlive(p) && belongsTo(p.pid, sandboxDirs(this.opts.dataDir, sandboxID).base);
  }

  /** A recorded cgroup is emptied only when it is this data dir's: named for it, or (from before the names) holding only our processes. */
  private cgroupIsOurs(sandboxID: string, handle: CgroupHandle): boolean {
    if (handle.dirs.every((d) => d.endsWith(`/${this.cgroupName(sandboxID)}`))) return true;
    const base = sandboxDirs(this.opts.dataDir, sandboxID).base;
    return handle.dirs.every((d) => d.endsWith(`/${sandboxID}`)) && this.cgroups.pids(handle).every((pid) => belongsTo(pid, base));
  }

  private cgroupName(sandboxID: string): string {
    return localCgroupName(this.opts.dataDir, sandboxID);
  }

  /** Whether the sandbox has a network namespace of its own (always, with bubblewrap, unless runtime.local.network: host). */
  private ownNetwork(spec: SandboxSpec): boolean {
    return this.opts.isolation === 'bubblewrap' && (spec.network === 'isolated' || !this.opts.sharedNetwork);
  }

  private layout(dirs: SandboxDirs): SandboxLayout {
    return this.opts.isolation === 'bubblewrap' ? insideLayout() : hostLayout(dirs, this.opts.toolchain);
  }

  private endpoints(spec: SandboxSpec, dirs: SandboxDirs): Record<string, Endpoint> {
    return Object.fromEntries(Object.entries(spec.services).map(([name, s]) => [name, { socketPath: join(dirs.endpoints, s.socketName) }]));
  }

  /**
   * As root each user gets their own host uid (so their workspaces keep one owner
   * from sandbox to sandbox); a sandbox keeps the uid it first ran with. Without
   * root everything runs as the gateway's user.
   */
  private sandboxUid(spec: SandboxSpec): number {
    const recorded = (spec.driverState as LocalDriverState).uid;
    if (this.asRoot) return recorded ?? this.opts.uidBase + USER_UID_OFFSET + spec.ownerId;
    return this.opts.isolation === 'bubblewrap' ? INSIDE_UID : process.getuid!();
  }
}

/** A data dir's cgroup name for a sandbox: two gateways on one machine never share one. */
export function localCgroupName(dataDir: string, sandboxID: string): string {
  return `${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}-${sandboxID}`;
}

/**
 * Whether process `pid` was spawned by this data dir for the sandbox in `base`: its
 * environment carries the marker. Sandboxes started before the marker existed are
 * known by bwrap's arguments, which then named the sandbox's directory.
 */
function belongsTo(pid: number, base: string): boolean {
  try {
    if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${MARKER}=${base}`)) return true;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.startsWith(`${base}/`));
  } catch {
    return false;
  }
}

function envPairs(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function passwdFor(uid: number): string {
  return `root:x:0:0:root:/root:/usr/sbin/nologin\ncoder:x:${uid}:${uid}:codeyard sandbox user:/home/coder:/bin/bash\n` +
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
}

function groupFor(uid: number): string {
  return `root:x:0:\ncoder:x:${uid}:\nnogroup:x:65534:\n`;
}

function lstatOrUndefined(path: string) {
  try { return lstatSync(path); } catch { return undefined; }
}

/** bwrap reports the sandbox's PID 1 (as seen from the host) as JSON on --info-fd. */
function readInitPid(child: ChildProcess, logTail: () => string): Promise<ProcessIdentity> {
  const info = child.stdio[3] as NodeJS.ReadableStream;
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new RuntimeFailureError(`bubblewrap did not start the sandbox (${why}). Its output:\n${logTail() || '(none)'}\n` +
        'Run `codeyard doctor` to check bubblewrap and namespaces.'));
    };
    const timer = setTimeout(() => fail('no child pid reported in time'), INFO_FD_TIMEOUT_MS);
    info.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (!m) return;
      clearTimeout(timer);
      const id = identify(Number(m[1]));
      if (id) resolve(id); else fail('its init process exited at once');
    });
    info.on('end', () => { if (!/"child-pid"/.test(text)) fail('info pipe closed'); });
    child.on('exit', (code) => { if (!/"child-pid"/.test(text)) fail(`bwrap exited with code ${code}`); });
  });
}
