import { linkSync, lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RuntimeFailureError } from '../errors.ts';

const SOCKET_POLL_MS = 25;

/**
 * Waits for the sandbox to create its service socket in its run directory,
 * then hard-links it into a directory only the gateway writes, and checks the
 * link is a socket owned by the sandbox's uid. The proxy dials the pinned
 * path: a sandbox that swaps its socket for a symlink to a host socket
 * (Docker's, systemd's) cannot redirect the gateway.
 */
export async function pinSocket(o: {
  sandboxID: string; socketName: string; runDir: string; endpointsDir: string; uid: number;
  deadline: number; waitMs: number; alive: () => Promise<boolean> | boolean; logTail: () => string;
}): Promise<string> {
  const created = join(o.runDir, o.socketName);
  const pinned = join(o.endpointsDir, o.socketName);
  for (;;) {
    const st = lstatOrUndefined(created);
    if (st?.isSocket()) break;
    if (st && !st.isSocket()) throw new RuntimeFailureError(`sandbox ${o.sandboxID}: ${o.socketName} is not a socket`);
    if (!(await o.alive())) {
      throw new RuntimeFailureError(`sandbox ${o.sandboxID}: its main process exited before listening. Last log lines:\n${o.logTail()}`);
    }
    if (Date.now() > o.deadline) throw new RuntimeFailureError(`sandbox ${o.sandboxID}: no ${o.socketName} after ${o.waitMs / 1000}s`);
    await sleep(SOCKET_POLL_MS);
  }
  rmSync(pinned, { force: true });
  linkSync(created, pinned);
  const st = lstatSync(pinned);
  if (!st.isSocket() || st.uid !== o.uid) {
    rmSync(pinned, { force: true });
    throw new RuntimeFailureError(`sandbox ${o.sandboxID}: ${o.socketName} was replaced while starting (not a socket of uid ${o.uid})`);
  }
  return pinned;
}

function lstatOrUndefined(path: string) {
  try { return lstatSync(path); } catch { return undefined; }
}
