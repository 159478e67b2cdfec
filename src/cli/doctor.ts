import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadConfig, type Config, type ConfigSources } from '../config.ts';
import { toolchainPaths } from '../toolchain/paths.ts';
import { CODE_SERVER_VERSION, MIN_NODE_MAJOR, OPENCODE_VERSION } from '../toolchain/versions.ts';
import { opencodeVersion } from '../toolchain/opencode-install.ts';
import { codeServerVersion } from '../toolchain/code-server-install.ts';
import { Cgroups } from '../runtime/local/cgroups.ts';
import { INITIAL_PASSWORD_FILE } from '../auth/bootstrap-admin.ts';
import { resolveCommand } from '../toolchain/system-commands.ts';
import { dockerClient } from '../runtime/docker/docker-client.ts';
import { checkDockerReady } from '../runtime/docker/docker-runtime.ts';
import { describeDisk, diskSpace, freeSpaceAdvice } from '../store/storage-errors.ts';
import { RESERVE_FILE } from '../store/storage-guard.ts';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What the operator should do when it failed. */
  fix?: string;
  /** A warning does not fail the doctor. */
  warnOnly?: boolean;
}

/** `codeyard doctor`: every precondition of `serve`, each with what to do about it. Exit 1 on any failure. */
export async function runDoctor(sources: ConfigSources): Promise<number> {
  const config = loadConfig(sources);
  const checks: Check[] = [
    checkNode(),
    checkCodeServer(),
    checkOpencode(),
    ...(config.runtime.driver === 'docker' ? [await checkDocker(config)] : [...checkIsolation(config), checkCgroups()]),
    checkDataDir(config),
    checkDisk(config),
    await checkPort(config),
  ];
  for (const c of checks) {
    const mark = paint(c.ok ? '32' : c.warnOnly ? '33' : '31', c.ok ? '✓' : c.warnOnly ? '!' : '✗');
    process.stdout.write(`${mark} ${c.name}: ${c.detail}\n`);
    if (!c.ok && c.fix) process.stdout.write(`    → ${c.fix}\n`);
  }
  const failed = checks.filter((c) => !c.ok && !c.warnOnly).length;
  process.stdout.write(failed ? `\n${failed} problem(s) found.\n` : '\nall checks passed.\n');
  return failed ? 1 : 0;
}

const paint = (color: string, text: string) => (process.stdout.isTTY ? `\x1b[${color}m${text}\x1b[0m` : text);

function checkNode(): Check {
  const major = Number(process.versions.node.split('.')[0]);
  return { name: 'node', ok: major >= MIN_NODE_MAJOR, detail: `${process.version} at ${process.execPath}`, fix: 'run `npm run setup` to provision Node 24' };
}

async function checkDocker(config: Config): Promise<Check> {
  const { docker, where } = dockerClient(config.runtime.docker.host);
  const problem = await checkDockerReady(docker, where, config.runtime.docker.image);
  return {
    name: 'docker', ok: problem === undefined,
    detail: problem ?? `engine at ${where}, image ${config.runtime.docker.image}`,
    fix: problem?.includes('image build') ? 'codeyard image build (--base-from-debootstrap without a registry)' : 'start the engine (dockerd, systemctl start docker) or set DOCKER_HOST; `codeyard setup --with-docker` does both as root',
  };
}

function checkOpencode(): Check {
  const t = toolchainPaths();
  const v = opencodeVersion(t);
  return {
    name: 'opencode', ok: v === OPENCODE_VERSION, warnOnly: true,
    detail: v ? `${v} in ${t.opencodeDir}` : `not installed in ${t.opencodeDir}`,
    fix: `run \`codeyard setup\` to install opencode ${OPENCODE_VERSION} (sandboxes work without it, minus the agent)`,
  };
}

function checkCodeServer(): Check {
  const t = toolchainPaths();
  const v = codeServerVersion(t);
  return {
    name: 'code-server', ok: v === CODE_SERVER_VERSION,
    detail: v ? `${v} in ${t.codeServerDir}` : `not installed in ${t.codeServerDir}`,
    fix: `run \`codeyard setup\` to install code-server ${CODE_SERVER_VERSION}`,
  };
}

function checkIsolation(config: Config): Check[] {
  if (config.runtime.local.isolation === 'none') {
    return [{ name: 'isolation', ok: false, warnOnly: true, detail: 'runtime.local.isolation is none: sandboxes run as plain processes with the gateway\'s rights', fix: 'install bubblewrap and remove `isolation: none` from the config' }];
  }
  // slirp4netns and ip give each sandbox its own network with a way out (runtime.local.network: namespace).
  const packages: Record<string, string> = { bwrap: 'bubblewrap', timeout: 'coreutils', slirp4netns: 'slirp4netns', ip: 'iproute2' };
  const needed = ['bwrap', 'setpriv', 'nsenter', 'timeout', ...(config.runtime.local.network === 'namespace' ? ['slirp4netns', 'ip'] : [])];
  const tools = needed.map((tool): Check => {
    const found = resolveCommand(tool);
    return { name: tool, ok: found !== undefined, detail: found ?? 'not found', fix: `apt-get install ${packages[tool] ?? 'util-linux'} (or run \`codeyard setup\` as root)` };
  });
  if (!tools[0]!.ok) return tools;
  const trial = spawnSync('bwrap', ['--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64',
    '--proc', '/proc', '--dev', '/dev', '--unshare-pid', '--unshare-ipc', '--unshare-net',
    ...(process.getuid?.() === 0 ? [] : ['--unshare-user']), '--', '/usr/bin/true'], { encoding: 'utf8' });
  tools.push({
    name: 'namespaces', ok: trial.status === 0,
    detail: trial.status === 0 ? 'bubblewrap can create mount, PID, IPC and network namespaces' : `bwrap failed: ${trial.stderr.trim()}`,
    fix: 'allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces>0) or run the gateway as root',
  });
  return tools;
}

function checkCgroups(): Check {
  const status = new Cgroups().status();
  return status.ok
    ? { name: 'cgroups', ok: true, detail: `v${status.version}: memoryMB and cpuCount are enforced` }
    : { name: 'cgroups', ok: false, warnOnly: true, detail: `memoryMB and cpuCount are NOT enforced (sandbox records say limits: "not-enforced"): ${status.reason}`, fix: 'run the gateway as root on a host with cgroup v2 (memory, cpu) or v1 memory and cpu hierarchies' };
}

function checkDataDir(config: Config): Check {
  const dir = config.dataDir;
  if (!existsSync(dir)) return { name: 'data dir', ok: true, detail: `${dir} will be created (mode 0700) on first start` };
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return { name: 'data dir', ok: false, detail: `${dir} is not writable`, fix: `chown it to the user running codeyard, or pick another --data-dir` };
  }
  const mode = statSync(dir).mode & 0o777;
  const pw = join(dir, INITIAL_PASSWORD_FILE);
  const pwMode = existsSync(pw) ? statSync(pw).mode & 0o777 : 0o600;
  const ok = (mode & 0o077) === 0 && (pwMode & 0o077) === 0;
  return {
    name: 'data dir', ok,
    detail: `${dir} mode ${mode.toString(8)}${existsSync(pw) ? `, ${INITIAL_PASSWORD_FILE} mode ${pwMode.toString(8)}` : ''}`,
    fix: `chmod 700 ${dir}${existsSync(pw) ? ` && chmod 600 ${pw}` : ''}`,
  };
}

/** Free space on the data dir's disk, which workspaces share with the store (see storage.minFreeMB). */
function checkDisk(config: Config): Check {
  const dir = config.dataDir;
  try {
    const space = diskSpace(dir);
    const ok = space.freeBytes >= config.storage.minFreeMB * 1024 * 1024;
    const reserve = config.storage.reserveMB === 0 ? 'no reserve (storage.reserveMB: 0)'
      : existsSync(join(dir, RESERVE_FILE)) ? `reserve ${join(dir, RESERVE_FILE)} in place` : 'reserve not in place (made when the gateway has room for it)';
    return {
      name: 'disk', ok,
      detail: `${describeDisk(space)}; storage.minFreeMB is ${config.storage.minFreeMB} MB; ${reserve}`,
      fix: `${freeSpaceAdvice(dir)}; or lower storage.minFreeMB`,
    };
  } catch (err) {
    return { name: 'disk', ok: false, detail: `cannot read the free space of ${dir}: ${(err as Error).message}`, fix: 'check that the data dir\'s filesystem is mounted' };
  }
}

function checkPort(config: Config): Promise<Check> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve({
      name: 'port', ok: false, warnOnly: err.code === 'EADDRINUSE',
      detail: `${config.host}:${config.port}: ${err.code === 'EADDRINUSE' ? 'in use (fine if codeyard is already running there)' : err.message}`,
      fix: 'stop whatever holds it (ss -ltnp), or choose --port / CODEYARD_PORT',
    }));
    server.listen(config.port, config.host, () => server.close(() => resolve({ name: 'port', ok: true, detail: `${config.host}:${config.port} is free` })));
  });
}
