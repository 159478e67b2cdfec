import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The gateway's environment for a sandbox, with `${RUN_DIR}` and `${GATEWAY_DIR}`
 * standing for those directories as the sandbox sees them.
 */
export function expandSystemEnv(env: Record<string, string> | undefined, dirs: { runDir: string; gatewayDir: string }): Record<string, string> {
  return Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, v.replaceAll('${RUN_DIR}', dirs.runDir).replaceAll('${GATEWAY_DIR}', dirs.gatewayDir)]));
}

/**
 * Prepares the directory of what the gateway provides a sandbox and writes this
 * start's files there. The directory is root's (or the gateway user's) and
 * bound read-only into the sandbox, so nothing here can be a symlink the
 * sandbox planted: a write by path is safe. Each file is replaced whole
 * (write, then rename), so a sandbox reading it never sees half of one.
 */
export function writeGatewayFiles(gatewayDir: string, files: Record<string, string> | undefined): void {
  mkdirSync(gatewayDir, { recursive: true, mode: 0o755 });
  for (const [name, content] of Object.entries(files ?? {})) {
    const path = join(gatewayDir, name);
    writeFileSync(`${path}.partial`, content, { mode: 0o644 });
    renameSync(`${path}.partial`, path);
  }
}
