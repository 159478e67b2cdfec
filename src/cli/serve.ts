import { loadConfig, type ConfigSources } from '../config.ts';
import { createLogger } from '../logger.ts';
import { mkdirSync } from 'node:fs';
import { startGateway } from '../gateway.ts';
import { lockDataDir } from '../gateway-lock.ts';
import { retryAfterReleasingReserve } from '../store/storage-guard.ts';
import { storageError } from '../store/storage-errors.ts';

/** `codeyard serve`: runs until SIGINT/SIGTERM, then closes cleanly. Sandboxes keep running and are adopted on the next start. */
export async function runServe(sources: ConfigSources, opts: { stopSandboxes?: boolean } = {}): Promise<void> {
  const config = loadConfig(sources);
  const log = createLogger(config.logLevel);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // A start that fails for a full disk says which disk and what to do, not just ENOSPC or SQLITE_FULL.
  const explained = (err: unknown) => storageError(err, config.dataDir) ?? err;
  // On a full disk the pid file may not fit: the reserve is given back for it (see storage.reserveMB).
  let unlock: () => void;
  try {
    unlock = retryAfterReleasingReserve(config.dataDir, log, 'the gateway.pid lock', () => lockDataDir(config.dataDir, config.port));
  } catch (err) {
    throw explained(err);
  }
  const gateway = await startGateway(config, { log }).catch((err: unknown) => { throw explained(err); });
  process.stderr.write(`codeyard is listening on ${gateway.url}  (data: ${config.dataDir})\n`);
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    await gateway.close({ stopSandboxes: opts.stopSandboxes });
    unlock();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
