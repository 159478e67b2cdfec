import { useEffect, useState } from 'preact/hooks';
import { api, type Crash, type Sandbox, type Status } from '../api.ts';
import { href } from '../router.ts';
import { templateLabel } from '../format.ts';
import { StateBadge } from '../components/state-badge.tsx';
import { BrowserPanel } from '../components/browser-panel.tsx';

interface Step { phase: string; message: string; at: string }

const STEPS: { phase: string; label: (s: Sandbox | null) => string }[] = [
  { phase: 'created', label: () => 'Sandbox created' },
  { phase: 'preparing', label: (s) => (s?.workspace ? `Preparing workspace “${s.workspace}”` : 'Preparing a throwaway workspace') },
  { phase: 'starting', label: (s) => (s?.templateID === 'vscode' ? 'Starting code-server' : s?.templateID === 'browser' ? 'Starting Chromium' : 'Starting') },
  { phase: 'waiting', label: () => 'Waiting for it to answer' },
  { phase: 'loading', label: (s) => `Loading ${templateLabel(s?.templateID ?? '')}` },
];
const ORDER = STEPS.map((s) => s.phase);
const IDE_PROBE_MS = 300;
const IDE_PROBE_TRIES = 100;

/**
 * One open sandbox: its progress while it starts (streamed from the gateway,
 * never a blank screen), what went wrong if it fails, then its IDE in a frame.
 */
export function SandboxTab(props: { id: string; active: boolean }) {
  const { id } = props;
  const [sandbox, setSandbox] = useState<Sandbox | null>(null);
  const [phase, setPhase] = useState('created');
  const [crash, setCrash] = useState<Crash | null>(null);
  const [message, setMessage] = useState('');
  const [ideReady, setIdeReady] = useState(false);
  const [problem, setProblem] = useState('');
  const [started] = useState(Date.now());
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const events = new EventSource(`/api/sandboxes/${id}/events`);
    events.addEventListener('progress', (e) => {
      const d = JSON.parse((e as MessageEvent).data) as Step & { sandbox: Sandbox | null; lastCrash: Crash | null };
      setSandbox(d.sandbox);
      setCrash(d.lastCrash);
      setMessage(d.message);
      setPhase(d.phase);
      setProblem('');
      if (d.phase === 'deleted') events.close();
    });
    events.onerror = () => {
      // The stream reconnects by itself; say why if the sandbox itself is the problem.
      api<Sandbox>('GET', `/api/sandboxes/${id}`).then(setSandbox, (err) => setProblem(err.message));
    };
    return () => events.close();
  }, [id]);

  const state = sandbox?.state;
  const isBrowser = sandbox?.urls.cdp !== undefined;
  useEffect(() => {
    if (state !== 'running' || isBrowser) { setIdeReady(false); return; }
    let cancelled = false;
    (async () => {
      setPhase((p) => (p === 'running' || p === 'waiting' ? 'loading' : p));
      // An IDE on a host of its own (a base domain) cannot be fetched from here: ask the gateway. A sandbox is
      // `running` only once its IDE answered (the periodic health check may come seconds later).
      const ownHost = /^https?:/.test(sandbox?.urls.ide ?? '');
      for (let i = 0; i < IDE_PROBE_TRIES && !cancelled; i++) {
        const ok = ownHost
          ? await api<Status>('GET', `/api/sandboxes/${id}/status`).then((st) => st.state === 'running', () => false)
          : (await fetch(`/vscode-proxy/${id}/`, { headers: { accept: 'text/html' } }).catch(() => null))?.ok === true;
        if (ok) { if (!cancelled) setIdeReady(true); return; }
        await new Promise((r) => setTimeout(r, IDE_PROBE_MS));
      }
      if (!cancelled) setProblem('The sandbox runs but its IDE does not answer. Try Restart; if it persists, look at its logs.');
    })();
    return () => { cancelled = true; };
  }, [state, id]);

  useEffect(() => {
    if (ideReady || !props.active) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [ideReady, props.active]);

  const start = async () => {
    setProblem('');
    try { setSandbox(await api<Sandbox>('POST', `/api/sandboxes/${id}/start`)); } catch (e) { setProblem((e as Error).message); }
  };

  const title = sandbox ? `${templateLabel(sandbox.templateID)} — ${sandbox.name}` : 'Sandbox';
  if (isBrowser && state === 'running' && sandbox) {
    return <section class="progress-pane" hidden={!props.active} aria-label={title}><BrowserPanel sandbox={sandbox} /></section>;
  }
  if (ideReady && sandbox) {
    return (
      <section class="ide-pane" hidden={!props.active} aria-label={title}>
        <iframe class="ide" src={sandbox.urls.ide} title={title} allow="clipboard-read; clipboard-write" />
      </section>
    );
  }

  const failed = state === 'error' || state === 'restarting';
  const current = ORDER.indexOf(phase === 'running' ? 'loading' : phase);
  return (
    <section class="progress-pane" hidden={!props.active} aria-label={title}>
      <div class="panel">
        <h2>{title} {sandbox && <StateBadge state={sandbox.state} />}</h2>
        {state === 'stopped' ? (
          <>
            <p>This sandbox is stopped. Its files are kept; starting it takes a few seconds.</p>
            <button onClick={start}>Start</button>
          </>
        ) : failed ? (
          <div class="failure" role="alert">
            <p><strong>{state === 'error' ? 'It could not start.' : 'It crashed and is being restarted.'}</strong> {message}</p>
            {crash && <p>Cause: <code class="classification">{crash.classification}</code>
              {crash.exitCode !== null && <> · exit code {crash.exitCode}</>}{crash.signal && <> · {crash.signal}</>}</p>}
            {crash?.logTail && <><h3>Last lines of its log</h3><pre class="log">{crash.logTail}</pre></>}
            {sandbox?.error && !crash && <pre class="log">{sandbox.error}</pre>}
            <div class="actions">
              <button onClick={start}>Retry</button>
              <a class="button secondary" href={href.details(id)}>Show logs</a>
            </div>
          </div>
        ) : (
          <>
            <ol class="steps" aria-live="polite">
              {STEPS.map((s, i) => (
                <li key={s.phase} class={i < current ? 'done' : i === current ? 'current' : 'todo'} aria-current={i === current ? 'step' : undefined}>
                  {s.label(sandbox)}
                </li>
              ))}
            </ol>
            <p class="muted">{Math.round((now - started) / 1000)} s</p>
          </>
        )}
        {problem && <p class="error" role="alert">{problem}</p>}
      </div>
    </section>
  );
}
