import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { apiCommandGroup } from './api-client.ts';
import type { GlobalFlags } from './main.ts';

interface KeyStatus { provider: string; kind: string | null; configured: boolean; set: boolean; hint: string | null }
interface Settings { defaultModel: string; requestsPerMinute: number; monthlyTokens: number | null; upstreamTimeoutSeconds: number; providers: { provider: string; kind: string; models: string[] }[] }
interface Totals { calls: number; inputTokens: number; outputTokens: number }
interface Call { at: string; user: string; provider: string; model: string | null; inputTokens: number; outputTokens: number; status: number }
interface Group { user: string; provider: string; model: string | null; calls: number; inputTokens: number; outputTokens: number }

const iso = (date: string, flag: string) => {
  const d = new Date(date);
  if (Number.isNaN(d.getTime())) throw new Error(`${flag}: not a date: ${date} (e.g. 2025-11-01 or 2025-11-01T12:00Z)`);
  return d.toISOString();
};

/** `codeyard ai set-key|rm-key|keys|settings|usage`: the model proxy's keys, limits and what they were used for. */
export function aiCommands(program: Command, globals: () => GlobalFlags): void {
  const { group: ai, client } = apiCommandGroup(program, 'ai', 'model provider keys (admins), limits and usage on the running gateway', globals);
  ai.addHelpText('after', `
Sandboxes never see a provider key: their opencode sends a per-sandbox token to
the gateway's /ai/<provider>/, which swaps in the key stored here. Providers,
the default model and the limits are set under ai: in codeyard.yaml.

Examples:
  echo "$ANTHROPIC_API_KEY" | codeyard ai set-key anthropic
  codeyard ai keys
  codeyard ai usage --from 2025-11-01 --by-model`);

  ai.command('set-key').description('store a provider\'s API key (read from standard input, so it stays out of shell history and the process list)')
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

  ai.command('keys').description('each configured provider and whether it has a key (never the key)').action(async () => {
    const keys = await client().request<KeyStatus[]>('GET', '/api/ai/keys');
    for (const k of keys) {
      const state = k.set ? `key set${k.hint ? ` (${k.hint})` : ''}` : 'no key: codeyard ai set-key ' + k.provider;
      console.log([k.provider, k.kind ?? '-', k.configured ? state : `${state}; not under ai.providers any more (rm-key removes it)`].join('\t'));
    }
  });

  ai.command('settings').description('the default model and the limits in force (set under ai: in codeyard.yaml)').action(async () => {
    const s = await client().request<Settings>('GET', '/api/ai/settings');
    console.log(`default model        ${s.defaultModel}`);
    console.log(`requests a minute    ${s.requestsPerMinute} per user`);
    console.log(`monthly tokens       ${s.monthlyTokens === null ? 'no limit' : `${s.monthlyTokens} per user`}`);
    console.log(`upstream timeout     ${s.upstreamTimeoutSeconds} s`);
    for (const p of s.providers) console.log(`provider             ${p.provider} (${p.kind}): ${p.models.join(', ') || 'no models listed'}`);
  });

  ai.command('usage').description('model calls and tokens, newest first (or --by-model: totals by user, provider and model)')
    .option('--user <username>').option('--from <date>', 'from this instant (ISO 8601)').option('--to <date>', 'up to this instant, excluded')
    .option('--by-model', 'totals by user, provider and model instead of single calls').option('--json')
    .action(async (opts: { user?: string; from?: string; to?: string; byModel?: boolean; json?: boolean }) => {
      const q = new URLSearchParams({
        ...(opts.user ? { user: opts.user } : {}),
        ...(opts.from ? { from: iso(opts.from, '--from') } : {}),
        ...(opts.to ? { to: iso(opts.to, '--to') } : {}),
      });
      if (opts.byModel) {
        const u = await client().request<{ totals: Totals; rows: Group[] }>('GET', `/api/ai/usage/summary?${q}`);
        if (opts.json) return void console.log(JSON.stringify(u, null, 2));
        console.log(`${u.totals.calls} calls, ${u.totals.inputTokens} tokens in, ${u.totals.outputTokens} out`);
        for (const g of u.rows) console.log([g.user, g.provider, g.model ?? '-', `${g.calls} calls`, `${g.inputTokens} in`, `${g.outputTokens} out`].join('\t'));
        return;
      }
      const u = await client().request<{ totals: Totals; calls: Call[] }>('GET', `/api/ai/usage?${q}`);
      if (opts.json) return void console.log(JSON.stringify(u, null, 2));
      console.log(`${u.totals.calls} calls, ${u.totals.inputTokens} tokens in, ${u.totals.outputTokens} out`);
      for (const c of u.calls.slice(0, 50)) console.log([c.at, c.user, c.provider, c.model ?? '-', c.inputTokens, c.outputTokens, c.status].join('\t'));
    });
}
