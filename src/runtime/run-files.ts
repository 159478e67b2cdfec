import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The gateway's environment for a sandbox, with `${RUN_DIR}` standing for the run directory as the sandbox sees it. */
export function expandSystemEnv(env: Record<string, string> | undefined, runDir: string): Record<string, string> {
  return Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, v.replaceAll('${RUN_DIR}', runDir)]));
}

/** Writes the gateway's files for this start into the run directory: readable by the sandbox's user alone. */
export function writeRunFiles(runDir: string, files: Record<string, string> | undefined, uid: number, chown: boolean): void {
  for (const [name, content] of Object.entries(files ?? {})) {
    const path = join(runDir, name);
    writeFileSync(path, content, { mode: 0o600 });
    if (chown) chownSync(path, uid, uid);
  }
}
