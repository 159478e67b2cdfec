import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, type Crash, type Sandbox, type Status } from '../api.ts';
import { ago, bytes, duration, templateLabel } from '../format.ts';
import { href } from '../router.ts';
import { StateBadge } from '../components/state-badge.tsx';

const LOG_LINES_KEPT = 500;

/** Everything about one sandbox: status, use, crash history, live log, links. */
export function SandboxDetails(props: { id: string; onOpen: (s: Sandbox) => void }) {
  const { id } = props;
  const [sandbox, setSandbox] = useState<Sandbox | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [crashes, setCrashes] = useState<Crash[]>([]);
  const [log, setLog] = useState<string[]>([]);
  const [error, setError] = useState('');
  const [share, setShare] = useState('');
  const logBox = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const load = () => Promise.all([
      get<Sandbox>(`/api/sandboxes/${id}`).then(setSandbox),
      get<Status>(`/api/sandboxes/${id}/status`).then(setStatus),
      get<Crash[]>(`/api/sandboxes/${id}/crashes`).then(setCrashes),
    ]).then(() => setError(''), (e) => setError(e.message));
    void load();
    const t = setInterval(load, 3000);
    return () => clearInterval(t);
  }, [id]);

  useEffect(() => {
    const stream = new EventSource(`/api/sandboxes/${id}/logs?tail=200&follow=true`);
    stream.onmessage = (e) => setLog((l) => [...l, e.data].slice(-LOG_LINES_KEPT));
    return () => stream.close();
  }, [id]);

  useEffect(() => {
    const box = logBox.current;
    if (box && box.scrollHeight - box.scrollTop - box.clientHeight < 80) box.scrollTop = box.scrollHeight;
  }, [log]);

  const copyShareLink = async () => {
    try {
      const { url, expiresAt } = await api<{ url: string; expiresAt: string }>('POST', `/api/sandboxes/${id}/ide-token`);
      await navigator.clipboard?.writeText(url).catch(() => {});
      setShare(`${url}  (works once, until ${new Date(expiresAt).toLocaleTimeString()})`);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (!sandbox) return <section class="page"><p class={error ? 'error' : 'muted'} role={error ? 'alert' : undefined}>{error || 'Loading…'}</p></section>;
  const memPct = status?.usage.memoryBytes != null ? Math.min(100, Math.round((status.usage.memoryBytes / (sandbox.memoryMB * 1024 * 1024)) * 100)) : null;
  return (
    <section class="page" aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title">{sandbox.name} <StateBadge state={sandbox.state} /></h1>
        <div class="actions">
          <button onClick={() => props.onOpen(sandbox)}>Open</button>
          <button class="secondary" onClick={copyShareLink}>Copy share link</button>
          <a class="button secondary" href={href.home}>Back</a>
        </div>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {share && <p class="notice" role="status">Copied: <code class="wrap">{share}</code></p>}
      <div class="grid2">
        <div class="panel">
          <h2>Status</h2>
          <dl>
            <dt>Runs</dt><dd>{templateLabel(sandbox.templateID)}</dd>
            <dt>Workspace</dt><dd>{sandbox.workspace ?? 'throwaway'}</dd>
            <dt>Owner</dt><dd>{sandbox.owner}</dd>
            <dt>Process</dt><dd>{status?.pid ? `pid ${status.pid}, up ${duration(status.uptimeSeconds)}` : '—'}</dd>
            <dt>Health</dt><dd>{status?.health.ok ? 'answering' : 'not answering'}{status?.health.checkedAt && ` (checked ${ago(status.health.checkedAt)})`}</dd>
            <dt>Restarts</dt><dd>{status?.restarts ?? 0}</dd>
            <dt>Last used</dt><dd>{ago(sandbox.lastActivityAt)}</dd>
            <dt>Expires</dt><dd>{sandbox.endAt ? new Date(sandbox.endAt).toLocaleString() : 'never'}</dd>
            {sandbox.urls.ide && <><dt>IDE link</dt><dd><a href={sandbox.urls.ide} target="_blank" rel="noopener">{sandbox.urls.ide}</a></dd></>}
            {sandbox.urls.workspace && <><dt>Own address</dt><dd><a href={sandbox.urls.workspace} target="_blank" rel="noopener">{sandbox.urls.workspace}</a></dd></>}
            {sandbox.urls.preview && <><dt>Port previews</dt><dd><code class="wrap">{sandbox.urls.preview}</code></dd></>}
            {sandbox.urls.cdp && <><dt>CDP</dt><dd><code class="wrap">{sandbox.urls.cdp}</code></dd></>}
          </dl>
          {sandbox.error && <><h3>Error</h3><pre class="log">{sandbox.error}</pre></>}
        </div>
        <div class="panel">
          <h2>Resources</h2>
          <dl>
            <dt>Memory</dt><dd>{bytes(status?.usage.memoryBytes ?? null)} of {sandbox.memoryMB} MB</dd>
            <dt>CPU time</dt><dd>{status?.usage.cpuSeconds != null ? `${status.usage.cpuSeconds.toFixed(1)} s` : '—'} ({sandbox.cpuCount} CPU allowed)</dd>
            <dt>Limits</dt><dd>{status?.limits.enforced ? 'enforced' : 'not enforced on this host'}</dd>
          </dl>
          {memPct !== null && <meter class="meter" min={0} max={100} value={memPct} aria-label="memory used">{memPct}%</meter>}
        </div>
      </div>
      <div class="panel">
        <h2>Crash history</h2>
        {crashes.length === 0 ? <p class="muted">No crashes.</p> : (
          <table class="table">
            <thead><tr><th>When</th><th>Cause</th><th>Exit</th><th>Up for</th><th>Log</th></tr></thead>
            <tbody>
              {crashes.map((c) => (
                <tr key={c.at}>
                  <td>{new Date(c.at).toLocaleString()}</td>
                  <td><code class="classification">{c.classification}</code></td>
                  <td>{c.signal ?? c.exitCode ?? '—'}</td>
                  <td>{duration(c.uptimeSeconds)}</td>
                  <td><details><summary>last lines</summary><pre class="log">{c.logTail}</pre></details></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <div class="panel">
        <h2>Log <span class="muted">(live)</span></h2>
        <pre class="log tall" ref={logBox} tabIndex={0} aria-label="sandbox log">{log.join('\n') || '(nothing yet)'}</pre>
      </div>
    </section>
  );
}
