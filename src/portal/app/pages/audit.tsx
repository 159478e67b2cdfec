import { useEffect, useState } from 'preact/hooks';
import { get, type AuditEvent } from '../api.ts';

/** Admins: who did what, filtered by user, action and time. */
export function Audit() {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [filters, setFilters] = useState({ user: '', action: '', since: '' });
  const [applied, setApplied] = useState(filters);
  const [error, setError] = useState('');
  useEffect(() => {
    const q = new URLSearchParams({ limit: '200' });
    if (applied.user) q.set('user', applied.user);
    if (applied.action) q.set('action', applied.action);
    if (applied.since) q.set('since', new Date(applied.since).toISOString());
    get<AuditEvent[]>(`/api/audit?${q}`).then((e) => { setEvents(e); setError(''); }, (e) => setError(e.message));
  }, [applied]);
  const field = (k: keyof typeof filters) => ({ value: filters[k], onInput: (e: Event) => setFilters({ ...filters, [k]: (e.target as HTMLInputElement).value }) });
  return (
    <section class="page" aria-labelledby="page-title">
      <h1 id="page-title">Audit log</h1>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); setApplied(filters); }}>
        <label>User<input {...field('user')} placeholder="any" /></label>
        <label>Action starts with<input {...field('action')} placeholder="e.g. sandbox. or user.create" /></label>
        <label>Since<input type="datetime-local" {...field('since')} /></label>
        <button type="submit">Filter</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <table class="table">
        <thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Outcome</th><th>From</th><th>Details</th></tr></thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} class={e.outcome !== 'ok' ? 'warn' : ''}>
              <td>{new Date(e.at).toLocaleString()}</td><td>{e.actor ?? '—'}</td><td>{e.action}</td><td class="wrap">{e.target ?? ''}</td>
              <td>{e.outcome}</td><td>{e.ip ?? ''}</td><td class="wrap"><code>{Object.keys(e.details).length ? JSON.stringify(e.details) : ''}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
      {events.length === 0 && !error && <p class="muted">Nothing matches.</p>}
    </section>
  );
}
