import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig, publicBaseUrl } from '../config.ts';
import { createLogger } from '../logger.ts';
import { restoreBackup } from '../backup/restore.ts';
import { ApiClient } from './api-client.ts';
import type { GlobalFlags } from './main.ts';

/** `codeyard backup <file>` (through the running gateway) and `codeyard restore <file>` (gateway stopped). */
export function backupCommands(program: Command, globals: () => GlobalFlags): void {
  program.command('backup').description('write a backup of workspaces and the database (through the running gateway, which pauses sandboxes while it copies)')
    .argument('<file.tar.gz>')
    .option('--user <username>', 'only this user\'s workspaces (no database)')
    .option('--url <url>', 'gateway URL (default: from config)')
    .option('--api-key <key>', 'an admin\'s API key (default: $CODEYARD_API_KEY, else the admin password file)')
    .action(async (file: string, opts: { user?: string; url?: string; apiKey?: string }) => {
      const client = new ApiClient(loadConfig(globals()), opts);
      const started = Date.now();
      const query = opts.user ? `?user=${encodeURIComponent(opts.user)}` : '';
      const { bytes, headers } = await client.download('POST', `/api/backups${query}`, resolve(file));
      console.log(`wrote ${file}: ${headers.get('x-codeyard-workspaces')} workspace(s)${opts.user ? ` of ${opts.user}` : ' and the database'}, ` +
        `${(bytes / 1024 / 1024).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

  program.command('restore').description('restore a backup into the data dir; stop the gateway first (what it replaces is moved aside, not deleted)')
    .argument('<file.tar.gz>')
    .action(async (file: string) => {
      const config = loadConfig(globals());
      const url = publicBaseUrl(config);
      const running = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false);
      if (running) throw new Error(`the gateway at ${url} is running: stop it first (it holds the database), then restore, then start it again`);
      const summary = await restoreBackup({ dataDir: config.dataDir, file: resolve(file), log: createLogger(config.logLevel) });
      console.log(`restored ${summary.database ? 'the database and ' : ''}${summary.workspaces.length} workspace(s): ${summary.workspaces.join(', ') || '(none)'}`);
      if (summary.savedTo) console.log(`what it replaced was moved to ${summary.savedTo}`);
      console.log('start the gateway (codeyard serve): sandboxes on restored workspaces see the restored files');
    });
}
