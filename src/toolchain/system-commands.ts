import { spawnSync } from 'node:child_process';

/** The PATH every process codeyard spawns gets: system directories only, nothing inherited. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Absolute path of a system command, or undefined. Resolved against SYSTEM_PATH, never the caller's PATH. */
export function resolveCommand(cmd: string, path = process.env.PATH ?? SYSTEM_PATH): string | undefined {
  const r = spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', env: { PATH: path } });
  const found = r.status === 0 ? r.stdout.trim() : '';
  return found.startsWith('/') ? found : undefined;
}
