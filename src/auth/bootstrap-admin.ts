import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { AuthService } from './auth-service.ts';
import { randomToken } from './secrets.ts';

export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

/**
 * On first start (no users) create `admin`. Its password is CODEYARD_ADMIN_PASSWORD, or
 * generated, printed once and kept in <dataDir>/initial-admin-password (0600).
 */
export async function bootstrapAdmin(opts: {
  store: Store; auth: AuthService; dataDir: string; log: Logger; envPassword?: string;
}): Promise<void> {
  if (opts.store.users.count() > 0) return;
  const password = opts.envPassword || randomToken(18);
  // Following the defaults, which give admins no limit (a demoted admin gets the users' defaults).
  await opts.auth.createUser('admin', password, 'admin', { maxSandboxes: 'default', maxMemoryMB: 'default', maxCpu: 'default' });
  if (opts.envPassword) {
    opts.log.info({ username: 'admin' }, 'created admin with the password from CODEYARD_ADMIN_PASSWORD');
    return;
  }
  const file = join(opts.dataDir, INITIAL_PASSWORD_FILE);
  writeFileSync(file, password + '\n', { mode: 0o600 });
  // Printed once, on stderr, outside the JSON log stream so it is never shipped to a log collector.
  process.stderr.write(`\ncodeyard: created user "admin" with password: ${password}\n` +
    `          (also saved in ${file}, mode 0600; keep it safe: it is the only admin account)\n\n`);
  opts.log.info({ username: 'admin', passwordFile: file }, 'created admin with a generated password');
}
