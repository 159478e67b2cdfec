import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Who listens on a TCP port, read from /proc. A sandbox with a network
 * namespace of its own answers for every listener in it; one that shares the
 * host's (isolation: none) owns a port only when one of its processes holds
 * the listening socket (never another program's server on the same port).
 */

export interface Listener {
  /** What to dial for it: loopback of the family it listens on. */
  host: '127.0.0.1' | '::1';
  inode: string;
}

const TCP_LISTEN = '0A';

/**
 * Listening TCP sockets on `port` that accept loopback connections (bound to loopback or to every
 * address), in the network namespace of the process whose /proc directory is `proc` (ours by default).
 */
export function listenersOn(port: number, proc = '/proc/self'): Listener[] {
  const found: Listener[] = [];
  for (const [file, host, loopbackOrAny] of [
    [`${proc}/net/tcp`, '127.0.0.1', /^(0100007F|00000000)$/],
    [`${proc}/net/tcp6`, '::1', /^(00000000000000000000000001000000|00000000000000000000000000000000)$/],
  ] as const) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== TCP_LISTEN) continue;
      const [addr, hexPort] = cols[1]!.split(':');
      if (parseInt(hexPort!, 16) !== port || !loopbackOrAny.test(addr!)) continue;
      found.push({ host, inode: cols[9]! });
    }
  }
  return found;
}

/** `root` and every process descended from it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const tree: number[] = [];
  for (let queue = [root]; queue.length > 0;) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue = queue.concat(children.get(pid) ?? []);
  }
  return tree;
}

/** Inodes of the sockets the processes hold open. */
export function socketInodes(pids: number[]): Set<string> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch { /* closed meanwhile */ }
    }
  }
  return inodes;
}

/** The listener on `port` that one of `pids()` holds, if any (the pids are only listed when something listens at all). */
export function listenerOf(pids: () => number[], port: number): Listener | undefined {
  const listeners = listenersOn(port);
  if (listeners.length === 0) return undefined;
  const held = socketInodes(pids());
  return listeners.find((l) => held.has(l.inode));
}

/** The pids in a cgroup.procs file. */
export function cgroupPids(procsFile: string): number[] {
  try { return readFileSync(procsFile, 'utf8').split('\n').filter(Boolean).map(Number); } catch { return []; }
}
