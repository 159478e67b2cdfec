import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Toolchain } from './paths.ts';
import { CODE_SERVER_VERSION } from './versions.ts';

const PROGRESS_EVERY_MS = 15_000;

/** Runs the installed code-server's --version; undefined if it does not run. */
export function codeServerVersion(t: Toolchain): string | undefined {
  if (!existsSync(t.codeServerEntry)) return undefined;
  // A throwaway config/data home: --version must not write into the operator's home.
  const scratch = mkdtempSync(join(tmpdir(), 'codeyard-cs-'));
  try {
    const r = spawnSync(t.nodeBin, [t.codeServerEntry, '--version'], {
      encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, XDG_CONFIG_HOME: scratch, XDG_DATA_HOME: scratch, HOME: scratch },
    });
    // It may log a line or two before the version ("4.139.1 <commit> with Code 1.139.1").
    const line = r.status === 0 ? r.stdout.split('\n').find((l) => /^\d+\.\d+\.\d+\s/.test(l)) : undefined;
    return line?.split(/\s+/)[0];
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Installs code-server from npm into <toolchain>/code-server-<v>-abi<n>, building its
 * native modules for the Node that runs the gateway. Builds in a sibling folder and
 * renames it into place, so an interrupted install never looks whole.
 */
export async function installCodeServer(t: Toolchain, progress: (line: string) => void): Promise<void> {
  mkdirSync(t.dir, { recursive: true });
  removeAbandonedPartials(t.dir);
  const partial = `${t.codeServerDir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  writeFileSync(join(partial, 'package.json'), JSON.stringify({ name: 'codeyard-code-server', private: true }) + '\n');
  const logPath = join(t.dir, `code-server-${CODE_SERVER_VERSION}-install.log`);
  const logFd = openSync(logPath, 'w');
  const started = Date.now();
  const child = spawn('npm', ['install', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`], {
    cwd: partial,
    stdio: ['ignore', logFd, logFd],
    env: {
      ...withoutNpmEnv(process.env),
      PATH: `${t.nodeDir}/bin:${process.env.PATH}`,
      npm_config_nodedir: t.nodeDir,
      // code-server's postinstall runs its own npm install for VS Code's native
      // modules; npm 11 blocks dependency scripts unless told this pinned package may run them.
      npm_config_dangerously_allow_all_scripts: 'true',
      npm_config_update_notifier: 'false',
    },
  });
  closeSync(logFd);
  const ticker = setInterval(() => progress(`  still building code-server ${CODE_SERVER_VERSION} (native modules)… ${Math.round((Date.now() - started) / 1000)}s`), PROGRESS_EVERY_MS);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1))).finally(() => clearInterval(ticker));
  if (code !== 0) {
    rmSync(partial, { recursive: true, force: true });
    const tail = readFileSync(logPath, 'utf8').split('\n').filter((l) => !l.includes('Unknown user config')).slice(-25).join('\n');
    throw new Error(`npm install code-server@${CODE_SERVER_VERSION} failed (exit ${code}). Last lines of ${logPath}:\n${tail}\n` +
      'Native modules need Debian\'s build-essential python3 pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev: run setup as root to install them.');
  }
  rmSync(t.codeServerDir, { recursive: true, force: true });
  renameSync(partial, t.codeServerDir);
  progress(`  built code-server ${CODE_SERVER_VERSION} in ${Math.round((Date.now() - started) / 1000)}s`);
}

/** Partial folders whose installer process is gone are leftovers of an interrupted run. */
function removeAbandonedPartials(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /\.partial-(\d+)$/.exec(name);
    if (m && !existsSync(`/proc/${m[1]}`)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Under `npm test` the environment carries the outer npm's settings, among them
 * npm_config_user_agent naming the outer Node (20): code-server's postinstall
 * reads its Node version from there. The inner npm must start clean.
 */
export function withoutNpmEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE' && k !== 'INIT_CWD'));
}
