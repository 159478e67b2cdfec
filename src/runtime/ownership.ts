import { execFileSync } from 'node:child_process';
import { lchownSync, lstatSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { RuntimeFailureError } from '../errors.ts';
import { SYSTEM_PATH } from '../toolchain/system-commands.ts';

/**
 * Gives the sandbox's uid its directory. A tree owned by someone else (a workspace
 * restored from another machine, or from before per-user uids) is handed over
 * whole, once; after that the top directory's owner says it is done. Nothing
 * here follows a symlink: the gateway runs as root and these trees are the
 * sandbox's to shape.
 */
export function chownIfNeeded(dir: string, uid: number): void {
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new RuntimeFailureError(`${dir} is not a directory (a symlink or file stands there): move it away, then start the sandbox again`);
  if (st.uid === uid) return;
  if (readdirSync(dir).length === 0) { lchownSync(dir, uid, uid); return; }
  // -R without -L never follows a symlink out of the tree.
  execFileSync('/bin/chown', ['-R', '--no-dereference', `${uid}:${uid}`, dir], { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A directory inside the sandbox's own home that something is mounted on (its
 * workspace). The sandbox may have put a symlink or a file there: that entry is
 * moved aside under a new name (rename(2) moves the link itself, and nothing
 * the user wrote is lost), and a real directory made in its place.
 */
export function ensureMountPoint(path: string, uid: number | undefined): void {
  const st = lstatOrUndefined(path);
  if (st && !st.isDirectory()) renameSync(path, `${path}.moved-by-codeyard-${Date.now()}`);
  if (!st || !st.isDirectory()) {
    try { mkdirSync(path, { mode: 0o755 }); } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Raced with the sandbox: whatever it put there now is refused below.
    }
  }
  if (uid !== undefined) chownIfNeeded(path, uid);
}

function lstatOrUndefined(path: string) {
  try { return lstatSync(path); } catch { return undefined; }
}
