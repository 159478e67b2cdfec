import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { runningGateway } from '../gateway-lock.ts';
import { stopLingeringSandboxes } from '../gateway.ts';
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
      const target = resolve(file);
      // Check where it goes before anything is copied: a failed write would leave a partial archive behind.
      if (existsSync(target) && statSync(target).isDirectory()) throw new Error(`${file} is a directory: name the archive file, e.g. ${join(file, 'codeyard.tar.gz')}`);
      if (!existsSync(dirname(target))) throw new Error(`${dirname(target)} does not exist: create it first`);
      const client = new ApiClient(loadConfig(globals()), opts);
      const started = Date.now();
      const query = opts.user ? `?user=${encodeURIComponent(opts.user)}` : '';
      const { bytes, headers } = await client.download('POST', `/api/backups${query}`, target);
      console.log(`wrote ${file}: ${headers.get('x-codeyard-workspaces')} workspace(s)${opts.user ? ` of ${opts.user}` : ' and the database'}, ` +
        `${(bytes / 1024 / 1024).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

  program.command('restore').description('restore a backup into the data dir; stop the gateway first (what it replaces is moved aside, not deleted)')
    .argument('<file.tar.gz>')
    .action(async (file: string) => {
      const config = loadConfig(globals());
      const gateway = runningGateway(config.dataDir);
      if (gateway) throw new Error(`the gateway (pid ${gateway.pid}, port ${gateway.port}) is running on ${config.dataDir}: stop it first (it holds the database), then restore, then start it again`);
      if (!existsSync(resolve(file))) throw new Error(`${file}: no such file`);
      const log = createLogger(config.logLevel);
      const stopped = await stopLingeringSandboxes(config, log);
      if (stopped.length) console.log(`stopped ${stopped.length} sandbox(es) still running on this data dir, so none keeps the old files: ${stopped.join(', ')}`);
      const summary = await restoreBackup({ dataDir: config.dataDir, file: resolve(file), log });
      console.log(`restored ${summary.database ? 'the database and ' : ''}${summary.workspaces.length} workspace(s): ${summary.workspaces.join(', ') || '(none)'}`);
      if (summary.savedTo) console.log(`what it replaced was moved to ${summary.savedTo}`);
      console.log('start the gateway (codeyard serve): sandboxes on restored workspaces see the restored files');
    });
}
