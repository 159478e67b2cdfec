import { useEffect, useState } from 'preact/hooks';
import type { Sandbox } from '../api.ts';
import { StateBadge } from './state-badge.tsx';

interface Target { id: string; type: string; title: string; url: string }

/** A browser sandbox has no screen: how to drive it, and what it has open. */
export function BrowserPanel(props: { sandbox: Sandbox }) {
  const s = props.sandbox;
  const [targets, setTargets] = useState<Target[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const load = () => fetch(`/cdp-proxy/${s.sandboxID}/json/list`).then(async (r) => {
      if (!r.ok) throw new Error(`the browser did not answer (${r.status})`);
      setTargets(((await r.json()) as Target[]).filter((t) => t.type === 'page'));
      setError('');
    }).catch((e: Error) => setError(e.message));
    void load();
    const t = setInterval(load, 3000);
    return () => clearInterval(t);
  }, [s.sandboxID]);
  const snippet = `import { chromium } from 'playwright-core';\nconst browser = await chromium.connectOverCDP('${s.urls.cdp}', { headers: { 'x-api-key': process.env.CODEYARD_API_KEY } });\nconst page = await browser.contexts()[0].newPage();\nawait page.goto('https://example.com');`;
  return (
    <div class="panel">
      <h2>Browser — {s.name} <StateBadge state={s.state} /></h2>
      <p>Headless Chromium, driven over the Chrome DevTools Protocol through this gateway. Connect any CDP client with an API key:</p>
      <dl>
        <dt>CDP (HTTP)</dt><dd><code class="wrap">{s.urls.cdp}</code></dd>
        <dt>Browser WebSocket</dt><dd><code class="wrap">{s.urls.cdpWebSocket}</code></dd>
      </dl>
      <pre class="log">{snippet}</pre>
      <h3>Open pages</h3>
      {error && <p class="error" role="alert">{error}</p>}
      {targets && targets.length === 0 && <p class="muted">None.</p>}
      {targets && targets.length > 0 && (
        <ul class="targets">{targets.map((t) => <li key={t.id}><strong>{t.title || '(untitled)'}</strong> <span class="muted wrap">{t.url}</span></li>)}</ul>
      )}
    </div>
  );
}
