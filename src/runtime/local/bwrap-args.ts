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
  isolatedNetwork?: boolean;
}

/** uid `coder` has inside the sandbox when bwrap makes its own user namespace (non-root gateway). */
export const INSIDE_UID = 1000;

/**
 * The sandbox's view of the world: system directories read-only, its own home and
 * workspace read-write, fresh /proc, /dev, /tmp and /run, and nothing else of the
 * host (no /root, no data dir, no other sandbox).
 */
export function bwrapArgs(o: BwrapOptions): string[] {
  const args = [
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
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
    '--proc', '/proc',
    '--dev', '/dev',
    // A private /tmp anyone inside may write to, sticky like any /tmp.
    '--perms', '1777', '--tmpfs', '/tmp',
    '--tmpfs', '/run',
    '--bind', o.dirs.run, INSIDE.runDir,
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
  // Its own network namespace: only loopback inside; out through the gateway's egress proxy.
  if (o.isolatedNetwork) args.push('--unshare-net');
  if (!o.asRoot) args.push('--unshare-user', '--uid', String(INSIDE_UID), '--gid', String(INSIDE_UID), '--cap-drop', 'ALL');
  args.push('--info-fd', '3');
  return args;
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
