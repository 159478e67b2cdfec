import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { randomToken } from '../auth/secrets.ts';
import { apiCommandGroup } from './api-client.ts';
import { positiveNumber, wholeNumber } from './flag-parsers.ts';
import type { GlobalFlags } from './main.ts';

interface UserView { username: string; role: string; disabled: boolean; limits: { maxSandboxes: number | null; maxMemoryMB: number | null; maxCpu: number | null }; sandboxes: number }

type Limit = number | 'none' | 'default';
/** A limit flag: a number, `none` (no limit: null in the API; commander would turn a null into '') or `default` (users.defaultLimits). */
const limitFlag = (parse: (v: string) => number) => (v: string): Limit => (v === 'none' || v === 'default' ? v : parse(v));
const LIMIT_FLAGS = [
  ['--max-sandboxes <n>', 'limit: number of sandboxes', limitFlag(wholeNumber('--max-sandboxes', 'a whole number of sandboxes, none or default'))],
  ['--max-memory <MB>', 'limit: memory of running sandboxes, in MB', limitFlag(wholeNumber('--max-memory', 'a whole number of megabytes (e.g. 8192), none or default'))],
  ['--max-cpu <n>', 'limit: CPUs of running sandboxes', limitFlag(positiveNumber('--max-cpu', 'a number of CPUs (e.g. 4), none or default'))],
] as const;
interface LimitOpts { maxSandboxes?: Limit; maxMemory?: Limit; maxCpu?: Limit }
const setting = (v: Limit | undefined) => (v === 'none' ? null : v);
const limitsOf = (o: LimitOpts) => ({ maxSandboxes: setting(o.maxSandboxes), maxMemoryMB: setting(o.maxMemory), maxCpu: setting(o.maxCpu) });

/** `codeyard user add|ls|passwd|disable|enable|rm`: the users API, from a shell. */
export function userCommands(program: Command, globals: () => GlobalFlags): void {
  const { group: user, client } = apiCommandGroup(program, 'user', 'manage accounts on the running gateway (admin)', globals);

  user.command('add').description('create a user; prints a generated password unless --password-stdin')
    .argument('<username>')
    .option('--admin', 'make an admin')
    .option('--password-stdin', 'read the password from standard input')
    .option(...LIMIT_FLAGS[0]).option(...LIMIT_FLAGS[1]).option(...LIMIT_FLAGS[2])
    .addHelpText('after', '\nLimits left out follow users.defaultLimits in codeyard.yaml (admins: none); `none` is no limit.')
    .action(async (username: string, opts: { admin?: boolean; passwordStdin?: boolean } & LimitOpts) => {
      const password = opts.passwordStdin ? readPasswordFromStdin() : randomToken(12);
      const created = await client().request<UserView>('POST', '/api/users', {
        username, password, role: opts.admin ? 'admin' : 'user', limits: limitsOf(opts),
      });
      console.log(`created ${created.role} ${created.username}${opts.passwordStdin ? '' : ` with password: ${password}`}`);
    });

  user.command('limits').description('change a user\'s limits: a number, none (no limit) or default (users.defaultLimits)')
    .argument('<username>')
    .option(...LIMIT_FLAGS[0]).option(...LIMIT_FLAGS[1]).option(...LIMIT_FLAGS[2])
    .action(async (username: string, opts: LimitOpts) => {
      const u = await client().request<UserView>('PATCH', `/api/users/${encodeURIComponent(username)}`, { limits: limitsOf(opts) });
      console.log(`${u.username}: ${limitText(u.limits)}`);
    });

  user.command('ls').description('list users').option('--json', 'print JSON').action(async (opts: { json?: boolean }) => {
    const users = await client().request<UserView[]>('GET', '/api/users');
    if (opts.json) return void console.log(JSON.stringify(users, null, 2));
    console.log(['USERNAME', 'ROLE', 'STATE', 'SANDBOXES', 'LIMITS'].join('\t'));
    for (const u of users) console.log([u.username, u.role, u.disabled ? 'disabled' : 'active', u.sandboxes, limitText(u.limits)].join('\t'));
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

/** The limits in force, e.g. `sandboxes≤4 memory≤8192MB`; `-` for none. */
function limitText(l: UserView['limits']): string {
  return [l.maxSandboxes !== null && `sandboxes≤${l.maxSandboxes}`, l.maxMemoryMB !== null && `memory≤${l.maxMemoryMB}MB`, l.maxCpu !== null && `cpu≤${l.maxCpu}`].filter(Boolean).join(' ') || '-';
}

function readPasswordFromStdin(): string {
  const password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (!password) throw new Error('no password on standard input');
  return password;
}
