import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CODE_SERVER_VERSION, NODE_VERSION, OPENCODE_VERSION } from './versions.ts';

/** The toolchain cache shared by every data dir: CODEYARD_TOOLCHAIN_DIR, else $XDG_CACHE_HOME/codeyard. */
export function toolchainDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CODEYARD_TOOLCHAIN_DIR) return env.CODEYARD_TOOLCHAIN_DIR;
  const cache = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'codeyard');
}

export interface Toolchain {
  dir: string;
  /** Where the pinned Node is provisioned when the machine's is too old. */
  pinnedNodeDir: string;
  /** Prefix of the Node that runs the gateway; code-server runs on the same one. */
  nodeDir: string;
  nodeBin: string;
  codeServerDir: string;
  codeServerEntry: string;
  /** opencode's binary lives in <opencodeDir>/bin. */
  opencodeDir: string;
}

export function toolchainPaths(dir = toolchainDir()): Toolchain {
  const nodeBin = realpathSync(process.execPath);
  const nodeDir = dirname(dirname(nodeBin));
  // Native modules are built for one Node ABI; a different Node gets its own build.
  const codeServerDir = join(dir, `code-server-${CODE_SERVER_VERSION}-abi${process.versions.modules}`);
  return {
    dir,
    pinnedNodeDir: join(dir, `node-v${NODE_VERSION}`),
    nodeDir,
    nodeBin,
    codeServerDir,
    // The package's own entry point, run with our node: no shell wrapper in between.
    codeServerEntry: join(codeServerDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    opencodeDir: join(dir, `opencode-${OPENCODE_VERSION}`),
  };
}
