import { execFileSync } from 'node:child_process';
import { chownSync, readdirSync, statSync } from 'node:fs';
import { SYSTEM_PATH } from '../toolchain/system-commands.ts';

/**
 * Gives the sandbox's uid its directory. A tree owned by someone else (a workspace
 * restored from another machine, or from before per-user uids) is handed over
 * whole, once; after that the top directory's owner says it is done.
 */
export function chownIfNeeded(dir: string, uid: number): void {
  if (statSync(dir).uid === uid) return;
  if (readdirSync(dir).length === 0) { chownSync(dir, uid, uid); return; }
  // -R without -L never follows a symlink out of the tree.
  execFileSync('/bin/chown', ['-R', '--no-dereference', `${uid}:${uid}`, dir], { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
}
