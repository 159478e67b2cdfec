import { existsSync, lstatSync } from 'node:fs';
import type { SandboxDirs } from './sandbox-dirs.ts';
import { AGENT_DIR, INSIDE } from './sandbox-dirs.ts';
import type { Toolchain } from '../../toolchain/paths.ts';
import { SYSTEM_PATH } from '../../toolchain/system-commands.ts';

export interface BwrapOptions {
  dirs: SandboxDirs;
  toolchain: Toolchain;
  hostname: string;
  /** true when the gateway is root: bwrap mounts as root and setpriv drops to `uid` inside. */
  asRoot: boolean;
  /** false only with runtime.local.network: host (the sandbox then shares the host's network). */
  ownNetwork: boolean;
}

/**
 * The file descriptors bwrap is handed, besides stdio: it reports the sandbox's
 * PID 1 on `info`, waits on `block` until the network is ready, reads the
 * seccomp filter from `seccomp` and its options from `args` (so that no host
 * path ever appears on a command line the sandbox can read in /proc/1/cmdline).
 */
export const BWRAP_FDS = { info: 3, block: 4, seccomp: 5, args: 6 } as const;

/** uid `coder` has inside the sandbox when bwrap makes its own user namespace (non-root gateway). */
export const INSIDE_UID = 1000;

/**
 * The sandbox's view of the world: system directories read-only, its own home and
 * workspace read-write, fresh /proc, /dev, /tmp and /run, a network namespace of
 * its own, and nothing else of the host (no /root, no data dir, no other
 * sandbox). These are bwrap's options, read from BWRAP_FDS.args; the command
 * line is `bwrap` + bwrapCommandLine() + the command.
 */
export function bwrapArgs(o: BwrapOptions): string[] {
  const args = [
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', ...(o.ownNetwork ? ['--unshare-net'] : []),
    '--hostname', o.hostname,
    '--new-session',
    '--ro-bind', '/usr', '/usr',
  ];
  // Merged-/usr systems have /bin -> usr/bin; others get the real directories.
  for (const dir of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    const kind = entryKind(dir);
    if (kind === 'symlink') args.push('--symlink', `usr${dir}`, dir);
    else if (kind === 'dir') args.push('--ro-bind', dir, dir);
  }
  args.push(
    '--ro-bind', '/etc', '/etc',
    '--ro-bind', `${o.dirs.etc}/passwd`, '/etc/passwd',
    '--ro-bind', `${o.dirs.etc}/group`, '/etc/group',
    // A resolver on the host's loopback is not the sandbox's: its own network gets one it can reach.
    ...(o.ownNetwork ? ['--ro-bind', `${o.dirs.etc}/resolv.conf`, '/etc/resolv.conf'] : []),
    '--proc', '/proc',
    '--dev', '/dev',
    // A private /tmp anyone inside may write to, sticky like any /tmp.
    '--perms', '1777', '--tmpfs', '/tmp',
    '--tmpfs', '/run',
    '--bind', o.dirs.run, INSIDE.runDir,
    // What the gateway provides (opencode.json, its sockets): root's, and read-only here.
    '--ro-bind', o.dirs.gateway, INSIDE.gatewayDir,
    '--tmpfs', '/home',
    '--bind', o.dirs.home, INSIDE.home,
    '--bind', o.dirs.workspace, INSIDE.workspace,
    // bwrap would copy the mode of the source's parents (/root is 0700); make the path walkable.
    '--perms', '0755', '--dir', '/opt',
    '--perms', '0755', '--dir', '/opt/codeyard',
    '--ro-bind', o.toolchain.nodeDir, INSIDE.toolchainNode,
    '--ro-bind', o.toolchain.codeServerDir, INSIDE.toolchainCodeServer,
    // opencode, where setup installed it (a missing one leaves an empty directory).
    ...(existsSync(o.toolchain.opencodeDir) ? ['--ro-bind', o.toolchain.opencodeDir, INSIDE.toolchainOpencode] : ['--perms', '0755', '--dir', INSIDE.toolchainOpencode]),
    '--ro-bind', AGENT_DIR, INSIDE.agent,
    '--chdir', INSIDE.workspace,
    // bwrap's own environment, and what it execs before privileges drop: fixed,
    // never the user's (a user PATH or LD_PRELOAD here would run as root).
    '--clearenv', '--setenv', 'PATH', SYSTEM_PATH,
  );
  if (!o.asRoot) args.push('--unshare-user', '--uid', String(INSIDE_UID), '--gid', String(INSIDE_UID), '--cap-drop', 'ALL');
  args.push('--info-fd', String(BWRAP_FDS.info), '--block-fd', String(BWRAP_FDS.block), '--seccomp', String(BWRAP_FDS.seccomp));
  return args;
}

/** What bwrap's own command line holds before `--` and the command: only where to read the rest. */
export function bwrapCommandLine(): string[] {
  return ['--args', String(BWRAP_FDS.args)];
}

/** bwrap reads its options NUL-separated. */
export function encodeArgs(args: string[]): Buffer {
  return Buffer.from(args.map((a) => `${a}\0`).join(''));
}

/** Drops from root to the sandbox's uid with no capabilities and no way back (setuid binaries included). */
export function dropPrivileges(uid: number): string[] {
  return [
    '/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups',
    '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
  ];
}

function entryKind(path: string): 'symlink' | 'dir' | 'missing' {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'missing';
  } catch {
    return 'missing';
  }
}
