import { useEffect, useState } from 'preact/hooks';
import { get, type Host } from '../api.ts';
import { bytes } from '../format.ts';

/** Admins: the machine at a glance. */
export function HostOverview() {
  const [host, setHost] = useState<Host | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const load = () => get<Host>('/api/host').then((h) => { setHost(h); setError(''); }, (e) => setError(e.message));
    void load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  if (!host) return <section class="page"><p class={error ? 'error' : 'muted'}>{error || 'Loading…'}</p></section>;
  const used = host.memory.totalBytes - (host.memory.availableBytes ?? 0);
  return (
    <section class="page" aria-labelledby="page-title">
      <h1 id="page-title">Host</h1>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="stats">
        <div class="stat"><span class="stat-value">{host.sandboxes.running}</span><span class="stat-label">sandboxes running, of {host.sandboxes.total}</span></div>
        <div class="stat"><span class="stat-value">{bytes(host.memory.sandboxesBytes)}</span><span class="stat-label">memory used by sandboxes ({host.memory.reservedMB} MB allowed)</span></div>
        <div class="stat"><span class="stat-value">{bytes(host.memory.availableBytes)}</span><span class="stat-label">memory available, of {bytes(host.memory.totalBytes)}</span></div>
        <div class="stat"><span class="stat-value">{host.cpu.loadAverage[0]?.toFixed(2)}</span><span class="stat-label">load (1 min) on {host.cpu.count} CPUs</span></div>
        <div class="stat"><span class="stat-value">{host.users}</span><span class="stat-label">users</span></div>
      </div>
      <div class="panel">
        <h2>Memory</h2>
        <meter class="meter" min={0} max={host.memory.totalBytes} value={used} high={host.memory.totalBytes * 0.9} aria-label="host memory in use" />
        <p>{bytes(used)} in use of {bytes(host.memory.totalBytes)}; sandboxes hold {bytes(host.memory.sandboxesBytes)}.</p>
        <h2>Sandboxes by state</h2>
        <ul>{Object.entries(host.sandboxes.byState).map(([state, n]) => <li key={state}>{state}: {n}</li>)}</ul>
      </div>
    </section>
  );
}
