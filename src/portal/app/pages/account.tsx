import { useEffect, useState } from 'preact/hooks';
import { api, get, type Me, type MonthlyBudget, type UsageSummary } from '../api.ts';
import { count, monthOf, monthRange } from '../format.ts';
import { ProviderKeys } from '../components/provider-keys.tsx';
import { UsageTable } from '../components/usage-table.tsx';

/** Your account: change your password; your AI usage this month and your own model keys. */
export function Account(props: { me: Me }) {
  const [oldPassword, setOld] = useState('');
  const [newPassword, setNew] = useState('');
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api('POST', '/api/me/password', { oldPassword, newPassword });
      setMessage({ ok: true, text: 'Password changed. Your other sessions were logged out.' });
      setOld(''); setNew('');
    } catch (err) {
      setMessage({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <section class="page narrow" aria-labelledby="page-title">
      <h1 id="page-title">Account</h1>
      <p>Logged in as <strong>{props.me.username}</strong> ({props.me.role}).</p>
      <YourLimits limits={props.me.limits} />
      <form class="panel" onSubmit={submit}>
        <h2>Change password</h2>
        <label for="old-password">Current password</label>
        <input id="old-password" type="password" autocomplete="current-password" required value={oldPassword} onInput={(e) => setOld((e.target as HTMLInputElement).value)} />
        <label for="new-password">New password (at least 8 characters)</label>
        <input id="new-password" type="password" autocomplete="new-password" minLength={8} required value={newPassword} onInput={(e) => setNew((e.target as HTMLInputElement).value)} />
        {message && <p class={message.ok ? 'notice' : 'error'} role="status">{message.text}</p>}
        <div class="actions"><button type="submit">Change password</button></div>
      </form>
      <AiThisMonth />
      <section class="panel" aria-labelledby="own-keys-title">
        <h2 id="own-keys-title">Your own model keys</h2>
        <p class="hint">Optional. A key of your own is used for your calls only, and they do not count against your monthly budget. Nobody can read it back, and your sandboxes never see it.</p>
        <ProviderKeys own />
      </section>
    </section>
  );
}

/** What the user's sandboxes may hold together (set by an admin, or the configured defaults). */
function YourLimits(props: { limits: Me['limits'] }) {
  const l = props.limits;
  return (
    <section class="panel" aria-labelledby="limits-title">
      <h2 id="limits-title">Your limits</h2>
      <dl>
        <dt>Sandboxes</dt><dd>{l.maxSandboxes === null ? 'no limit' : `up to ${l.maxSandboxes}, stopped ones included`}</dd>
        <dt>Memory</dt><dd>{l.maxMemoryMB === null ? 'no limit' : `${l.maxMemoryMB} MB across your running sandboxes`}</dd>
        <dt>CPUs</dt><dd>{l.maxCpu === null ? 'no limit' : `${l.maxCpu} across your running sandboxes`}</dd>
      </dl>
      <p class="hint">Past a limit, creating or starting a sandbox is refused with a message saying which; stop or delete one, or ask an admin.</p>
    </section>
  );
}

/** What the user has spent this month of the organisation's budget, and on which models. */
function AiThisMonth() {
  const [budget, setBudget] = useState<MonthlyBudget | null>(null);
  const [usage, setUsage] = useState<UsageSummary | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    get<MonthlyBudget>('/api/me/ai-budget').then(setBudget, (e) => setError(e.message));
    get<UsageSummary>(`/api/ai/usage/summary?${new URLSearchParams(monthRange(monthOf()))}`).then(setUsage, (e) => setError(e.message));
  }, []);
  return (
    <section class="panel" aria-labelledby="ai-usage-title">
      <h2 id="ai-usage-title">AI usage this month</h2>
      {error && <p class="error" role="alert">{error}</p>}
      {budget && (budget.monthlyTokens === null
        ? <p>{count(budget.usedTokens)} tokens used; there is no monthly budget.</p>
        : <>
            <meter class="meter" min={0} max={budget.monthlyTokens} value={budget.usedTokens} high={budget.monthlyTokens * 0.8} optimum={0} aria-label="monthly token budget used" />
            <p>{count(budget.usedTokens)} of {count(budget.monthlyTokens)} tokens used ({count(budget.remainingTokens ?? 0)} left; it renews on {new Date(monthRange(monthOf()).to).toLocaleDateString(undefined, { timeZone: 'UTC', day: 'numeric', month: 'long' })}).
              {budget.remainingTokens === 0 && <strong> The budget is used up: opencode answers with an error until next month, unless you add a key of your own below.</strong>}</p>
          </>)}
      {usage && <UsageTable usage={usage} showUser={false} caption="Your model usage this month" />}
    </section>
  );
}
