import { join } from 'node:path';
import type { SandboxLayout, WorkspaceRef } from '../interface.ts';
import { workspaceDirs } from '../../workspaces/workspace-dirs.ts';
import type { Toolchain } from '../../toolchain/paths.ts';

/** Where a local sandbox's files live on the host. */
export interface SandboxDirs {
  base: string;
  home: string;
  workspace: string;
  run: string;
  etc: string;
  /** Gateway-only: hard links to the service sockets, which the proxy dials. */
  endpoints: string;
  log: string;
}

/**
 * A sandbox's own directories, plus the home and workspace it mounts: those of
 * the persistent workspace when it has one, else throwaway ones next to the rest.
 */
export function sandboxDirs(dataDir: string, sandboxID: string, workspace: WorkspaceRef | null = null): SandboxDirs {
  const base = join(dataDir, 'sandboxes', sandboxID);
  const persistent = workspace && workspaceDirs(dataDir, workspace);
  return {
    base,
    home: persistent ? persistent.config : join(base, 'home'),
    workspace: persistent ? persistent.workspace : join(base, 'workspace'),
    run: join(base, 'run'),
    etc: join(base, 'etc'),
    endpoints: join(base, 'endpoints'),
    log: join(base, 'main.log'),
  };
}

/** The gateway's helper scripts that run inside sandboxes, in this repository. */
export const AGENT_DIR = join(import.meta.dirname, '..', '..', '..', 'sandbox-agent');

/** Paths inside a bubblewrap sandbox: a conventional Linux home for user `coder`. */
export const INSIDE = {
  home: '/home/coder',
  workspace: '/home/coder/workspace',
  runDir: '/run/codeyard',
  toolchainNode: '/opt/codeyard/node',
  toolchainCodeServer: '/opt/codeyard/code-server',
  toolchainOpencode: '/opt/codeyard/opencode',
  agent: '/opt/codeyard/agent',
} as const;

export function insideLayout(): SandboxLayout {
  return {
    home: INSIDE.home,
    workspace: INSIDE.workspace,
    runDir: INSIDE.runDir,
    nodeBin: `${INSIDE.toolchainNode}/bin/node`,
    codeServerEntry: `${INSIDE.toolchainCodeServer}/node_modules/code-server/out/node/entry.js`,
    opencodeBinDir: `${INSIDE.toolchainOpencode}/bin`,
    agentDir: INSIDE.agent,
  };
}

/** With isolation `none` the sandbox sees host paths. */
export function hostLayout(dirs: SandboxDirs, toolchain: Toolchain): SandboxLayout {
  return {
    home: dirs.home, workspace: dirs.workspace, runDir: dirs.run,
    nodeBin: toolchain.nodeBin, codeServerEntry: toolchain.codeServerEntry, opencodeBinDir: `${toolchain.opencodeDir}/bin`,
    agentDir: AGENT_DIR,
  };
}

export function sandboxEnv(layout: SandboxLayout, extra: Record<string, string>): Record<string, string> {
  const nodeBinDir = layout.nodeBin.slice(0, layout.nodeBin.lastIndexOf('/'));
  return {
    HOME: layout.home,
    USER: 'coder',
    LOGNAME: 'coder',
    SHELL: '/bin/bash',
    PATH: `${nodeBinDir}:${layout.opencodeBinDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    LANG: 'C.UTF-8',
    TERM: 'xterm-256color',
    ...extra,
  };
}
