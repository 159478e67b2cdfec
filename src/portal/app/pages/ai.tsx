import { useEffect, useState } from 'preact/hooks';
import { get, type AiSettings, type UsageSummary } from '../api.ts';
import { count, monthOf, monthRange } from '../format.ts';
import { ProviderKeys } from '../components/provider-keys.tsx';
import { UsageTable } from '../components/usage-table.tsx';

/** Admins: the model proxy — provider keys, the limits in force, and who used how much. */
export function AiAdmin() {
  return (
    <section class="page" aria-labelledby="page-title">
      <h1 id="page-title">AI</h1>
      <p class="muted">opencode in every VS Code sandbox talks to models through the gateway, which adds the key. Sandboxes never see one.</p>
      <section class="panel" aria-labelledby="keys-title">
        <h2 id="keys-title">Provider keys</h2>
        <ProviderKeys own={false} />
      </section>
      <Limits />
      <Usage />
    </section>
  );
}

function Limits() {
  const [settings, setSettings] = useState<AiSettings | null>(null);
  const [error, setError] = useState('');
  useEffect(() => { get<AiSettings>('/api/ai/settings').then(setSettings, (e) => setError(e.message)); }, []);
  return (
    <section class="panel" aria-labelledby="limits-title">
      <h2 id="limits-title">Limits and defaults</h2>
      {error && <p class="error" role="alert">{error}</p>}
      {settings && (
        <>
          <dl>
            <dt>Default model</dt><dd><code>{settings.defaultModel}</code></dd>
            <dt>Requests a minute</dt><dd>{settings.requestsPerMinute} per user</dd>
            <dt>Monthly token budget</dt><dd>{settings.monthlyTokens === null ? 'no limit' : `${count(settings.monthlyTokens)} tokens per user (calls with a user's own key do not count)`}</dd>
            <dt>Upstream timeout</dt><dd>{settings.upstreamTimeoutSeconds} s</dd>
            <dt>Providers</dt><dd>{settings.providers.map((p) => `${p.provider} (${p.models.join(', ') || 'no models listed'})`).join('; ')}</dd>
          </dl>
          <p class="hint">Set under <code>ai:</code> in codeyard.yaml. A gateway restart applies changes; a sandbox takes a new default model at its next start.</p>
        </>
      )}
    </section>
  );
}

function Usage() {
  const [month, setMonth] = useState(monthOf());
  const [user, setUser] = useState('');
  const [applied, setApplied] = useState({ month, user });
  const [usage, setUsage] = useState<UsageSummary | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!/^\d{4}-\d{2}$/.test(applied.month)) { setError('Month: pick a month, e.g. 2025-11.'); return; }
    const q = new URLSearchParams(monthRange(applied.month));
    if (applied.user.trim()) q.set('user', applied.user.trim());
    get<UsageSummary>(`/api/ai/usage/summary?${q}`).then((u) => { setUsage(u); setError(''); }, (e) => setError(e.message));
  }, [applied]);
  return (
    <section class="panel" aria-labelledby="usage-title">
      <h2 id="usage-title">Usage</h2>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); setApplied({ month, user }); }}>
        <label>Month (UTC)<input type="month" required value={month} onInput={(e) => setMonth((e.target as HTMLInputElement).value)} /></label>
        <label>User<input value={user} placeholder="everyone" onInput={(e) => setUser((e.target as HTMLInputElement).value)} /></label>
        <button type="submit">Show</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {usage && <UsageTable usage={usage} showUser caption={`Model usage in ${applied.month}`} />}
    </section>
  );
}
