import type { Command } from 'commander';
import { apiCommandGroup } from './api-client.ts';
import type { GlobalFlags } from './main.ts';

interface WorkspaceView { name: string; owner: string; createdAt: string; sandboxes: string[] }

/** `codeyard workspace ls|create|rename|rm`: persistent workspaces, from a shell. */
export function workspaceCommands(program: Command, globals: () => GlobalFlags): void {
  const { group: workspace, client } = apiCommandGroup(program, 'workspace', 'list, create, rename and delete persistent workspaces on the running gateway', globals);
  const ownerQuery = (owner?: string) => (owner ? `?owner=${encodeURIComponent(owner)}` : '');

  workspace.command('ls').description('list workspaces').option('--owner <username>', 'another user\'s (admins)').option('--json', 'print JSON')
    .action(async (opts: { owner?: string; json?: boolean }) => {
      const list = await client().request<WorkspaceView[]>('GET', `/api/workspaces${ownerQuery(opts.owner)}`);
      if (opts.json) return void console.log(JSON.stringify(list, null, 2));
      if (!list.length) return void console.log('no workspaces');
      console.log(['NAME', 'OWNER', 'CREATED', 'USED BY'].join('\t'));
      for (const w of list) console.log([w.name, w.owner, w.createdAt, w.sandboxes.join(',') || '-'].join('\t'));
    });

  workspace.command('create').description('create a workspace').argument('<name>').option('--owner <username>', 'for another user (admins)')
    .action(async (name: string, opts: { owner?: string }) => {
      const w = await client().request<WorkspaceView>('POST', '/api/workspaces', { name, owner: opts.owner });
      console.log(`created ${w.owner}/${w.name}`);
    });

  workspace.command('rename').description('rename a workspace (its files move with it)').argument('<name>').argument('<new-name>')
    .option('--owner <username>', 'another user\'s (admins)')
    .action(async (name: string, newName: string, opts: { owner?: string }) => {
      const w = await client().request<WorkspaceView>('PATCH', `/api/workspaces/${encodeURIComponent(name)}${ownerQuery(opts.owner)}`, { name: newName });
      console.log(`renamed ${name} to ${w.name}`);
    });

  workspace.command('rm').description('delete a workspace and all its files (no sandbox may use it)').argument('<name>')
    .requiredOption('--confirm <name>', 'repeat the workspace name: its files are deleted')
    .option('--owner <username>', 'another user\'s (admins)')
    .action(async (name: string, opts: { confirm: string; owner?: string }) => {
      const query = new URLSearchParams({ confirm: opts.confirm, ...(opts.owner ? { owner: opts.owner } : {}) });
      await client().request('DELETE', `/api/workspaces/${encodeURIComponent(name)}?${query}`);
      console.log(`deleted workspace ${name} and its files`);
    });
}
