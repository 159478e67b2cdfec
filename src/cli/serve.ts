import { loadConfig, type ConfigSources } from '../config.ts';
import { createLogger } from '../logger.ts';
import { mkdirSync } from 'node:fs';
import { startGateway } from '../gateway.ts';
import { lockDataDir } from '../gateway-lock.ts';

/** `codeyard serve`: runs until SIGINT/SIGTERM, then closes cleanly. Sandboxes keep running and are adopted on the next start. */
export async function runServe(sources: ConfigSources, opts: { stopSandboxes?: boolean } = {}): Promise<void> {
  const config = loadConfig(sources);
  const log = createLogger(config.logLevel);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(config.dataDir, config.port);
  const gateway = await startGateway(config, { log });
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
