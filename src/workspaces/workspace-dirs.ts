import { join } from 'node:path';
import type { WorkspaceRef } from '../runtime/interface.ts';

/** Where a persistent workspace lives on the host. */
export interface WorkspaceDirs {
  /** `<dataDir>/users/<owner>/<name>` */
  base: string;
  /** The project files: /home/coder/workspace inside. */
  workspace: string;
  /** The home directory: VS Code settings and extensions, shell history, dotfiles. */
  config: string;
}

export function userDir(dataDir: string, owner: string): string {
  return join(dataDir, 'users', owner);
}

export function workspaceDirs(dataDir: string, ref: WorkspaceRef): WorkspaceDirs {
  const base = join(userDir(dataDir, ref.owner), ref.name);
  return { base, workspace: join(base, 'workspace'), config: join(base, 'config') };
}
