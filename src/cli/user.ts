import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { randomToken } from '../auth/secrets.ts';
import { apiCommandGroup } from './api-client.ts';
import { positiveNumber, wholeNumber } from './flag-parsers.ts';
import type { GlobalFlags } from './main.ts';

interface UserView { username: string; role: string; disabled: boolean; limits: { maxSandboxes: number | null; maxMemoryMB: number | null; maxCpu: number | null }; sandboxes: number }

/** `codeyard user add|ls|passwd|disable|enable|rm`: the users API, from a shell. */
export function userCommands(program: Command, globals: () => GlobalFlags): void {
  const { group: user, client } = apiCommandGroup(program, 'user', 'manage accounts on the running gateway (admin)', globals);

  user.command('add').description('create a user; prints a generated password unless --password-stdin')
    .argument('<username>')
    .option('--admin', 'make an admin')
    .option('--password-stdin', 'read the password from standard input')
    .option('--max-sandboxes <n>', 'limit: number of sandboxes', wholeNumber('--max-sandboxes', 'a whole number of sandboxes'))
    .option('--max-memory <MB>', 'limit: memory of running sandboxes, in MB', wholeNumber('--max-memory', 'a whole number of megabytes, e.g. 8192'))
    .option('--max-cpu <n>', 'limit: CPUs of running sandboxes', positiveNumber('--max-cpu', 'a number of CPUs, e.g. 4'))
    .action(async (username: string, opts: { admin?: boolean; passwordStdin?: boolean; maxSandboxes?: number; maxMemory?: number; maxCpu?: number }) => {
      const password = opts.passwordStdin ? readPasswordFromStdin() : randomToken(12);
      const created = await client().request<UserView>('POST', '/api/users', {
        username, password, role: opts.admin ? 'admin' : 'user',
        limits: { maxSandboxes: opts.maxSandboxes, maxMemoryMB: opts.maxMemory, maxCpu: opts.maxCpu },
      });
      console.log(`created ${created.role} ${created.username}${opts.passwordStdin ? '' : ` with password: ${password}`}`);
    });

  user.command('ls').description('list users').option('--json', 'print JSON').action(async (opts: { json?: boolean }) => {
    const users = await client().request<UserView[]>('GET', '/api/users');
    if (opts.json) return void console.log(JSON.stringify(users, null, 2));
    console.log(['USERNAME', 'ROLE', 'STATE', 'SANDBOXES', 'LIMITS'].join('\t'));
    for (const u of users) {
      const l = u.limits;
      const limits = [l.maxSandboxes !== null && `sandboxes≤${l.maxSandboxes}`, l.maxMemoryMB !== null && `memory≤${l.maxMemoryMB}MB`, l.maxCpu !== null && `cpu≤${l.maxCpu}`].filter(Boolean).join(' ') || '-';
      console.log([u.username, u.role, u.disabled ? 'disabled' : 'active', u.sandboxes, limits].join('\t'));
    }
  });

  user.command('passwd').description('set a user\'s password (ends their sessions); prints a generated one unless --password-stdin')
    .argument('<username>').option('--password-stdin', 'read the password from standard input')
    .action(async (username: string, opts: { passwordStdin?: boolean }) => {
      const password = opts.passwordStdin ? readPasswordFromStdin() : randomToken(12);
      await client().request('PATCH', `/api/users/${encodeURIComponent(username)}`, { password });
      console.log(`password of ${username} changed${opts.passwordStdin ? '' : ` to: ${password}`}; their sessions were ended`);
    });

  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    user.command(name).description(disabled ? 'disable a user: no login, sessions and keys stop working' : 'enable a disabled user')
      .argument('<username>').action(async (username: string) => {
        await client().request('PATCH', `/api/users/${encodeURIComponent(username)}`, { disabled });
        console.log(`${username} ${disabled ? 'disabled' : 'enabled'}`);
      });
  }

  user.command('rm').description('delete a user: stops their sandboxes, keeps their workspaces unless --purge')
    .argument('<username>').option('--purge', 'also delete their sandboxes and workspaces')
    .action(async (username: string, opts: { purge?: boolean }) => {
      await client().request('DELETE', `/api/users/${encodeURIComponent(username)}${opts.purge ? '?purge=true' : ''}`);
      console.log(`deleted ${username}${opts.purge ? ' and their workspaces' : ' (workspaces kept; `codeyard user rm --purge` deletes them)'}`);
    });
}

function readPasswordFromStdin(): string {
  const password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (!password) throw new Error('no password on standard input');
  return password;
}
