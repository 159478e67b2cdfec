import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SetupError } from './errors.ts';
import { identify, isAlive, type ProcessIdentity } from './runtime/local/process-identity.ts';

const LOCK_FILE = 'gateway.pid';

interface LockInfo extends ProcessIdentity {
  port: number;
}

/** The gateway serving this data dir now, if any (a pid file whose process still runs, not a recycled pid). */
export function runningGateway(dataDir: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')) as LockInfo;
    return isAlive(info) ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One gateway per data dir: two would both supervise, reap and restart the same
 * sandboxes, and a restore under a live gateway would be silently undone.
 * Returns the release function.
 */
export function lockDataDir(dataDir: string, port: number): () => void {
  const other = runningGateway(dataDir);
  if (other && other.pid !== process.pid) {
    throw new SetupError(`another codeyard gateway (pid ${other.pid}, port ${other.port}) is serving ${dataDir}: stop it first, or use another --data-dir`);
  }
  const me = identify(process.pid)!;
  const file = join(dataDir, LOCK_FILE);
  writeFileSync(file, JSON.stringify({ ...me, port }) + '\n', { mode: 0o600 });
  return () => {
    if (runningGateway(dataDir)?.pid === process.pid) rmSync(file, { force: true });
  };
}
