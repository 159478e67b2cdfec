import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SYSTEM_PATH } from '../toolchain/system-commands.ts';

const execFileP = promisify(execFile);

/** Runs a system tool (cp, tar) with a fixed PATH; its stderr becomes the error. */
async function tool(cmd: string, args: string[]): Promise<void> {
  try {
    await execFileP(cmd, args, { env: { PATH: SYSTEM_PATH, LC_ALL: 'C' }, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim().slice(0, 1000)}`);
  }
}

/** Copies a tree with owners, modes, times, links and sparse files as they are (a copy-on-write clone where the filesystem can). */
export function copyTree(from: string, to: string): Promise<void> {
  return tool('cp', ['-a', '--reflink=auto', '--', from, to]);
}

/** Packs the contents of `dir` into a gzipped tar, numeric owners kept (they are sandbox uids, not names). */
export function packDir(dir: string, file: string): Promise<void> {
  return tool('tar', ['--create', '--gzip', '--numeric-owner', '--file', file, '--directory', dir, '.']);
}

/** Unpacks a gzipped tar into `dir`, with the owners and modes it recorded. */
export function unpackInto(file: string, dir: string): Promise<void> {
  return tool('tar', ['--extract', '--gzip', '--numeric-owner', '--same-permissions', '--file', file, '--directory', dir]);
}
