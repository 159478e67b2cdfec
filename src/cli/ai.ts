import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { apiCommandGroup } from './api-client.ts';
import type { GlobalFlags } from './main.ts';

/** `codeyard ai set-key|rm-key|keys|usage`: the model proxy's keys and what they were used for. */
export function aiCommands(program: Command, globals: () => GlobalFlags): void {
  const { group: ai, client } = apiCommandGroup(program, 'ai', 'model provider keys and usage on the running gateway', globals);

  ai.command('set-key').description('store a provider\'s API key (read from standard input, so it stays out of shell history)')
    .argument('<provider>', 'a name under ai.providers, e.g. anthropic or openai')
    .action(async (provider: string) => {
      const key = readFileSync(0, 'utf8').trim();
      if (!key) throw new Error('no key on standard input: echo "$KEY" | codeyard ai set-key ' + provider);
      await client().request('PUT', `/api/ai/keys/${encodeURIComponent(provider)}`, { key });
      console.log(`key for ${provider} stored (sandboxes never see it)`);
    });

  ai.command('rm-key').description('remove a provider\'s key').argument('<provider>')
    .action(async (provider: string) => {
      await client().request('DELETE', `/api/ai/keys/${encodeURIComponent(provider)}`);
      console.log(`key for ${provider} removed`);
    });

  ai.command('keys').description('providers that have a key').action(async () => {
    const keys = await client().request<{ provider: string }[]>('GET', '/api/ai/keys');
    console.log(keys.length ? keys.map((k) => k.provider).join('\n') : 'no keys: codeyard ai set-key <provider>');
  });

  ai.command('usage').description('model calls and tokens, newest first').option('--user <username>').option('--from <iso-date>').option('--json')
    .action(async (opts: { user?: string; from?: string; json?: boolean }) => {
      const q = new URLSearchParams({ ...(opts.user ? { user: opts.user } : {}), ...(opts.from ? { from: new Date(opts.from).toISOString() } : {}) });
      const u = await client().request<{ totals: { calls: number; inputTokens: number; outputTokens: number }; calls: { at: string; user: string; provider: string; model: string | null; inputTokens: number; outputTokens: number; status: number }[] }>('GET', `/api/ai/usage?${q}`);
      if (opts.json) return void console.log(JSON.stringify(u, null, 2));
      console.log(`${u.totals.calls} calls, ${u.totals.inputTokens} tokens in, ${u.totals.outputTokens} out`);
      for (const c of u.calls.slice(0, 50)) console.log([c.at, c.user, c.provider, c.model ?? '-', c.inputTokens, c.outputTokens, c.status].join('\t'));
    });
}
