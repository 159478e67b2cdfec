import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../logger.ts';
import { SetupError, InvalidInputError } from '../../errors.ts';
import type { Toolchain } from '../../toolchain/paths.ts';
import type { Endpoint, ExecRequest, ExecResult, Runtime, SandboxLayout, SandboxSpec, StartResult } from '../interface.ts';
import { captureOutput } from '../capture-output.ts';
import { Cgroups, type CgroupHandle } from './cgroups.ts';
import { bwrapArgs, dropPrivileges, INSIDE_UID } from './bwrap-args.ts';
import { hostLayout, insideLayout, sandboxDirs, sandboxEnv, type SandboxDirs } from './sandbox-dirs.ts';
import { identify, isAlive, waitUntilGone, type ProcessIdentity } from './process-identity.ts';

export type Isolation = 'bubblewrap' | 'none';

export interface LocalRuntimeOptions {
  dataDir: string;
  toolchain: Toolchain;
  isolation: Isolation;
  /** First host uid for sandboxes when the gateway is root. */
  uidBase: number;
  log: Logger;
}

interface LocalDriverState {
  /** The bwrap (or, without isolation, the main) process we spawned. */
  outer?: ProcessIdentity;
  /** PID 1 of the sandbox's PID namespace: killing it kills every process inside. */
  init?: ProcessIdentity;
  cgroup?: CgroupHandle;
  uid?: number;
}

// Linux caps sun_path at 108 bytes including the terminator.
const MAX_SOCKET_PATH = 107;
const INFO_FD_TIMEOUT_MS = 10_000;

// Joins the cgroups named before `--`, then becomes the command after it, so
// every process the sandbox ever forks is inside its limits from the start.
const JOIN_CGROUPS = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"';

export class LocalRuntime implements Runtime {
  readonly name = 'local';
  private readonly cgroups = new Cgroups();
  private readonly asRoot = process.getuid?.() === 0;

  private readonly opts: LocalRuntimeOptions;

  constructor(opts: LocalRuntimeOptions) {
    this.opts = opts;
    if (opts.isolation === 'bubblewrap' && !commandExists('bwrap')) {
      throw new SetupError('bubblewrap (bwrap) is not installed: run `codeyard setup` as root (or apt-get install bubblewrap), ' +
        'or set runtime.local.isolation: none to run sandboxes without isolation');
    }
  }

  cgroupStatus() {
    return this.cgroups.status();
  }

  async create(spec: SandboxSpec): Promise<void> {
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
    const socket = join(dirs.run, 'ide.sock');
    if (socket.length > MAX_SOCKET_PATH) {
      throw new SetupError(`sandbox socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter data dir`);
    }
    const uid = this.sandboxUid(spec);
    for (const dir of [dirs.base, dirs.home, dirs.workspace, dirs.run, dirs.etc]) {
      mkdirSync(dir, { recursive: true, mode: dir === dirs.base ? 0o711 : 0o700 });
    }
    if (this.asRoot && this.opts.isolation === 'bubblewrap') {
      for (const dir of [dirs.home, dirs.workspace, dirs.run]) chownIfNeeded(dir, uid);
    }
    writeFileSync(join(dirs.etc, 'passwd'), passwdFor(uid));
    writeFileSync(join(dirs.etc, 'group'), groupFor(uid));
  }

  async start(spec: SandboxSpec): Promise<StartResult> {
    await this.create(spec);
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
    const previous = spec.driverState as LocalDriverState;
    if (isAlive(previous.init ?? previous.outer)) {
      return { endpoints: this.endpoints(spec, dirs), driverState: previous as Record<string, unknown>, limits: previous.cgroup ? 'enforced' : 'not-enforced' };
    }
    rmSync(join(dirs.run, 'ide.sock'), { force: true });

    const layout = this.layout(dirs);
    const env = sandboxEnv(layout, spec.envVars);
    const uid = this.sandboxUid(spec);

    let cgroup: CgroupHandle | undefined;
    let limitsReason: string | undefined;
    try {
      cgroup = this.cgroups.create(spec.sandboxID, spec.memoryMB, spec.cpuCount);
    } catch (err) {
      limitsReason = (err as Error).message;
      this.opts.log.warn({ sandboxID: spec.sandboxID, reason: limitsReason }, 'memory/CPU limits not enforced; see `codeyard doctor`');
    }

    const argv = this.opts.isolation === 'bubblewrap'
      ? ['bwrap', ...bwrapArgs({ dirs, toolchain: this.opts.toolchain, hostname: `sbx-${spec.sandboxID}`, env, asRoot: this.asRoot }),
        '--', ...(this.asRoot ? dropPrivileges(uid) : []), ...spec.command(layout)]
      : ['env', '-i', ...envPairs(env), ...spec.command(layout)];

    const logFd = openSync(dirs.log, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', JOIN_CGROUPS, 'codeyard-join', ...(cgroup?.procsFiles ?? []), '--', ...argv], {
        detached: true,
        cwd: this.opts.isolation === 'none' ? dirs.workspace : '/',
        stdio: ['ignore', logFd, logFd, 'pipe'],
      });
    } finally {
      closeSync(logFd);
    }
    child.unref();
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on('error', () => {});
    const outer = identify(child.pid!);
    const init = this.opts.isolation === 'bubblewrap' ? await readInitPid(child, () => this.logTail(spec.sandboxID)) : outer;
    const driverState: LocalDriverState = { outer, init, cgroup, uid };
    this.opts.log.info({ sandboxID: spec.sandboxID, pid: init?.pid, isolation: this.opts.isolation }, 'sandbox process started');
    return {
      endpoints: this.endpoints(spec, dirs),
      driverState: driverState as Record<string, unknown>,
      limits: cgroup ? 'enforced' : 'not-enforced',
      limitsReason,
    };
  }

  async stop(spec: SandboxSpec): Promise<void> {
    const state = spec.driverState as LocalDriverState;
    const procs = [state.init, state.outer].filter((p): p is ProcessIdentity => p !== undefined);
    for (const p of procs) {
      if (!isAlive(p)) continue;
      // Without a PID namespace the main process leads its own process group: kill the group.
      const target = this.opts.isolation === 'none' ? -p.pid : p.pid;
      try { process.kill(target, 'SIGKILL'); } catch { /* gone */ }
    }
    if (state.cgroup) this.cgroups.destroy(state.cgroup);
    if (!(await waitUntilGone(procs, 5000))) {
      throw new SetupError(`sandbox ${spec.sandboxID} processes ${procs.map((p) => p.pid).join(', ')} survived SIGKILL; check them with ps`);
    }
    rmSync(join(sandboxDirs(this.opts.dataDir, spec.sandboxID).run, 'ide.sock'), { force: true });
  }

  async remove(spec: SandboxSpec): Promise<void> {
    await this.stop(spec);
    rmSync(sandboxDirs(this.opts.dataDir, spec.sandboxID).base, { recursive: true, force: true });
  }

  async inspect(spec: SandboxSpec) {
    const state = spec.driverState as LocalDriverState;
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
    return { running: isAlive(state.init ?? state.outer), endpoints: this.endpoints(spec, dirs) };
  }

  async exec(spec: SandboxSpec, req: ExecRequest): Promise<ExecResult> {
    const state = spec.driverState as LocalDriverState;
    const dirs = sandboxDirs(this.opts.dataDir, spec.sandboxID);
    const layout = this.layout(dirs);
    const cwd = req.cwd ?? layout.workspace;
    const env = sandboxEnv(layout, { ...spec.envVars, ...req.envs });
    const command = typeof req.cmd === 'string' ? ['/bin/bash', '-c', req.cmd] : req.cmd;
    // timeout(1) signals the whole process group it started, so pipelines and
    // background children of the command die with it.
    const seconds = Math.max(0.001, req.timeoutMs / 1000).toFixed(3);
    const inner = ['env', '-i', `--chdir=${cwd}`, ...envPairs(env), 'timeout', '-k', '2', seconds, ...command];

    let argv: string[];
    if (this.opts.isolation === 'bubblewrap') {
      if (!isAlive(state.init)) throw new InvalidInputError(`sandbox ${spec.sandboxID} is not running: start it before exec`);
      argv = ['nsenter', `--target=${state.init!.pid}`, '--mount', '--pid', '--ipc', '--uts',
        ...(this.asRoot ? [] : ['--user', '--preserve-credentials']),
        '--root', '--',
        ...(this.asRoot ? dropPrivileges(state.uid ?? this.sandboxUid(spec)) : []), ...inner];
    } else {
      if (!existsSync(cwd)) throw new InvalidInputError(`cwd: ${cwd} does not exist in the sandbox`);
      argv = inner;
    }

    const child = spawn('/bin/sh', ['-c', JOIN_CGROUPS, 'codeyard-join', ...(state.cgroup?.procsFiles ?? []), '--', ...argv], {
      cwd: this.opts.isolation === 'none' ? cwd : '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = captureOutput(child.stdout!, req.maxOutputBytes);
    const err = captureOutput(child.stderr!, req.maxOutputBytes);
    const startedAt = Date.now();
    // Backstop in case timeout(1) itself cannot run.
    const backstop = setTimeout(() => child.kill('SIGKILL'), req.timeoutMs + 5000);
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
    }).finally(() => clearTimeout(backstop));
    const timedOut = (exitCode === 124 || exitCode === 137) && Date.now() - startedAt >= req.timeoutMs;
    let stderr = err.text();
    if (timedOut) stderr += `\n[codeyard: command killed after timeoutMs=${req.timeoutMs}]\n`;
    return { exitCode, stdout: out.text(), stderr, timedOut, truncated: out.truncated() || err.truncated() };
  }

  async list(): Promise<string[]> {
    const dir = join(this.opts.dataDir, 'sandboxes');
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  logTail(sandboxID: string, bytes = 4000): string {
    try {
      const text = readFileSync(sandboxDirs(this.opts.dataDir, sandboxID).log, 'utf8');
      return text.slice(-bytes);
    } catch {
      return '';
    }
  }

  private layout(dirs: SandboxDirs): SandboxLayout {
    return this.opts.isolation === 'bubblewrap' ? insideLayout() : hostLayout(dirs, this.opts.toolchain);
  }

  private endpoints(spec: SandboxSpec, dirs: SandboxDirs): Record<string, Endpoint> {
    return Object.fromEntries(Object.entries(spec.services).map(([name, s]) => [name, { socketPath: join(dirs.run, s.socketName) }]));
  }

  /** As root each sandbox gets its own host uid; otherwise everything runs as the gateway's user. */
  private sandboxUid(spec: SandboxSpec): number {
    if (this.asRoot && this.opts.isolation === 'bubblewrap') return this.opts.uidBase + spec.seq;
    return this.opts.isolation === 'bubblewrap' ? INSIDE_UID : process.getuid?.() ?? INSIDE_UID;
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

function chownIfNeeded(dir: string, uid: number): void {
  if (statSync(dir).uid !== uid) chownSync(dir, uid, uid);
}

function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** bwrap reports the sandbox's PID 1 (as seen from the host) as JSON on --info-fd. */
function readInitPid(child: ChildProcess, logTail: () => string): Promise<ProcessIdentity> {
  const info = child.stdio[3] as NodeJS.ReadableStream;
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new SetupError(`bubblewrap did not start the sandbox (${why}). Its output:\n${logTail() || '(none)'}\n` +
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
