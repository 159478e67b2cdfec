import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { throwawayDir } from '../../workspaces/workspace-volume.ts';
import type { SandboxLayout, WorkspaceRef } from '../interface.ts';
import { workspaceDirs } from '../../workspaces/workspace-dirs.ts';
import type { Toolchain } from '../../toolchain/paths.ts';

/** Where a local sandbox's files live on the host. */
export interface SandboxDirs {
  base: string;
  home: string;
  workspace: string;
  /** The sandbox's own sockets (code-server's): it writes here, so the gateway never writes by path here. */
  run: string;
  /** What the gateway provides (opencode.json, gateway.sock, egress.sock): root's, bound read-only into the sandbox. */
  gateway: string;
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
  // A throwaway workspace with a size limit lives on the workspaces' filesystem (storage.workspaceImageMB).
  // Looked up only when asked for: most callers want the log or the base (some on every poll).
  const throwaway = () => (existsSync(throwawayDir(dataDir, sandboxID)) ? throwawayDir(dataDir, sandboxID) : base);
  return {
    base,
    get home() { return persistent ? persistent.config : join(throwaway(), 'home'); },
    get workspace() { return persistent ? persistent.workspace : join(throwaway(), 'workspace'); },
    run: join(base, 'run'),
    gateway: join(base, 'gateway'),
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
  gatewayDir: '/run/codeyard-gateway',
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
    gatewayDir: INSIDE.gatewayDir,
    nodeBin: `${INSIDE.toolchainNode}/bin/node`,
    codeServerEntry: `${INSIDE.toolchainCodeServer}/node_modules/code-server/out/node/entry.js`,
    opencodeBinDir: `${INSIDE.toolchainOpencode}/bin`,
    agentDir: INSIDE.agent,
  };
}

/** With isolation `none` the sandbox sees host paths. */
export function hostLayout(dirs: SandboxDirs, toolchain: Toolchain): SandboxLayout {
  return {
    home: dirs.home, workspace: dirs.workspace, runDir: dirs.run, gatewayDir: dirs.gateway,
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
