import type { Config } from '../config.ts';

const NPM: Record<Config['ai']['providers'][string]['kind'], string> = {
  anthropic: '@ai-sdk/anthropic',
  openai: '@ai-sdk/openai',
  'openai-compatible': '@ai-sdk/openai-compatible',
};

/**
 * The opencode configuration a sandbox gets (OPENCODE_CONFIG points at it):
 * every provider the gateway proxies, at the gateway's /ai/<name>/, with the
 * sandbox's own token as the API key — never a provider's real key — and the
 * admin's default model. Models are listed explicitly, so opencode needs
 * nothing from the internet to know them.
 */
export function opencodeConfig(ai: Config['ai'], gatewayUrl: string, token: string): string {
  const provider: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(ai.providers)) {
    const path = p.kind === 'openai-compatible' ? `/ai/${name}` : `/ai/${name}/v1`;
    provider[name] = {
      npm: NPM[p.kind],
      name,
      options: { baseURL: `${gatewayUrl}${path}`, apiKey: token },
      models: Object.fromEntries((p.models ?? []).map((m) => [m, { name: m }])),
    };
  }
  return JSON.stringify({
    $schema: 'https://opencode.ai/config.json',
    provider,
    model: ai.defaultModel,
    autoupdate: false,
    share: 'disabled',
  }, null, 2) + '\n';
}
