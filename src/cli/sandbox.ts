import type { Command } from 'commander';
import { positiveNumber, wholeNumber } from './flag-parsers.ts';
import { apiCommandGroup } from './api-client.ts';
import type { GlobalFlags } from './main.ts';

interface SandboxView { sandboxID: string; templateID: string; name: string; owner: string; state: string; workspace: string | null; memoryMB: number; cpuCount: number; createdAt: string; urls: { ide: string }; error?: string }

/** `codeyard sandbox ls|create|rm`: the API, from a shell. */
export function sandboxCommands(program: Command, globals: () => GlobalFlags): void {
  const { group: sandbox, client } = apiCommandGroup(program, 'sandbox', 'list, create and delete sandboxes on the running gateway', globals);

  sandbox.command('ls').description('list sandboxes').option('--json', 'print JSON').action(async (opts: { json?: boolean }) => {
    const list = await client().request<SandboxView[]>('GET', '/api/sandboxes');
    if (opts.json) return void console.log(JSON.stringify(list, null, 2));
    if (!list.length) return void console.log('no sandboxes');
    console.log(['SANDBOX ID', 'TEMPLATE', 'STATE', 'OWNER', 'NAME', 'IDE', 'WORKSPACE'].join('\t'));
    for (const s of list) console.log([s.sandboxID, s.templateID, s.state, s.owner, s.name, s.urls.ide, s.workspace ?? '(throwaway)'].join('\t'));
  });

  sandbox.command('create').description('create a sandbox and wait until it runs')
    .option('-t, --template <id>', 'template', 'vscode')
    .option('-n, --name <name>', 'name')
    .option('--memory <MB>', 'memory limit in MB', wholeNumber('--memory', 'a whole number of megabytes, e.g. 2048'))
    .option('--cpu <count>', 'CPU count', positiveNumber('--cpu', 'a number of CPUs, e.g. 1 or 0.5'))
    .option('-w, --workspace <name>', 'persistent workspace to mount (default: your "default" one)')
    .option('--throwaway', 'a throwaway workspace, deleted with the sandbox')
    .option('--no-wait', 'return at once, while it starts')
    .action(async (opts: { template: string; name?: string; memory?: number; cpu?: number; wait: boolean; workspace?: string; throwaway?: boolean }) => {
      if (opts.throwaway && opts.workspace) throw new Error('--workspace and --throwaway contradict each other: pick one');
      const api = client();
      const s = await api.request<SandboxView>('POST', `/api/sandboxes${opts.wait ? '?wait=true' : ''}`, {
        templateID: opts.template, name: opts.name, memoryMB: opts.memory, cpuCount: opts.cpu,
        workspace: opts.throwaway ? null : opts.workspace,
      });
      console.log(`${s.sandboxID}\t${s.state}\t${s.urls.ide}`);
      if (s.state === 'error') {
        console.error(s.error);
        process.exitCode = 1;
      }
    });

  for (const [verb, what] of [['stop', 'stop (files kept)'], ['start', 'start again on the same files'], ['restart', 'stop and start']] as const) {
    sandbox.command(verb).description(`${what}; waits until it settles`).argument('<ids...>')
      .action(async (ids: string[]) => {
        const api = client();
        for (const id of ids) {
          const s = await api.request<SandboxView>('POST', `/api/sandboxes/${encodeURIComponent(id)}/${verb}${verb === 'stop' ? '' : '?wait=true'}`);
          console.log(`${s.sandboxID}\t${s.state}${s.error ? `\t${s.error.split('\n')[0]}` : ''}`);
        }
      });
  }

  sandbox.command('rm').description('delete sandboxes (stops them; a persistent workspace is kept)').argument('<ids...>')
    .action(async (ids: string[]) => {
      const api = client();
      for (const id of ids) {
        await api.request('DELETE', `/api/sandboxes/${encodeURIComponent(id)}`);
        console.log(`deleted ${id}`);
      }
    });
}

