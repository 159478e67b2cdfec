import { useState } from 'preact/hooks';
import { api, type Sandbox } from '../api.ts';
import { ago, templateLabel } from '../format.ts';
import { href } from '../router.ts';
import { StateBadge } from './state-badge.tsx';
import { Confirm } from './confirm.tsx';

/** A sandbox at a glance, with what can be done to it now. */
export function SandboxCard(props: { sandbox: Sandbox; showOwner?: boolean; onOpen: (s: Sandbox) => void; onChanged: () => void }) {
  const s = props.sandbox;
  const [busy, setBusy] = useState('');
  const [error, setError] = useState('');
  const [confirming, setConfirming] = useState(false);
  const act = async (what: string, method: string, path: string) => {
    setBusy(what);
    setError('');
    try { await api(method, path); } catch (e) { setError((e as Error).message); }
    setBusy('');
    props.onChanged();
  };
  const stopped = s.state === 'stopped' || s.state === 'error';
  return (
    <article class="card" aria-labelledby={`card-${s.sandboxID}`}>
      <header>
        <h3 id={`card-${s.sandboxID}`}>{s.name}</h3>
        <StateBadge state={s.state} />
      </header>
      <dl>
        <dt>Runs</dt><dd>{templateLabel(s.templateID)}</dd>
        <dt>Workspace</dt><dd>{s.workspace ?? <em>throwaway</em>}</dd>
        {props.showOwner && <><dt>Owner</dt><dd>{s.owner}</dd></>}
        <dt>Size</dt><dd>{s.memoryMB} MB · {s.cpuCount} CPU</dd>
        <dt>Last used</dt><dd>{ago(s.lastActivityAt)}</dd>
      </dl>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="actions">
        <button onClick={() => props.onOpen(s)}>Open</button>
        {stopped
          ? <button class="secondary" disabled={!!busy} onClick={() => act('start', 'POST', `/api/sandboxes/${s.sandboxID}/start`)}>{busy === 'start' ? 'Starting…' : 'Start'}</button>
          : <button class="secondary" disabled={!!busy || s.state === 'stopping'} onClick={() => act('stop', 'POST', `/api/sandboxes/${s.sandboxID}/stop`)}>{busy === 'stop' ? 'Stopping…' : 'Stop'}</button>}
        <button class="secondary" disabled={!!busy} onClick={() => act('restart', 'POST', `/api/sandboxes/${s.sandboxID}/restart`)}>{busy === 'restart' ? 'Restarting…' : 'Restart'}</button>
        <a class="button secondary" href={href.details(s.sandboxID)}>Details</a>
        <button class="danger" disabled={!!busy} onClick={() => setConfirming(true)}>Delete</button>
      </div>
      {confirming && (
        <Confirm title={`Delete ${s.name}?`} confirm="Delete" danger
          body={s.workspace ? `Its processes stop and the sandbox goes away. Workspace “${s.workspace}” and its files are kept.` : 'Its processes stop and its throwaway workspace is deleted with all its files.'}
          onAnswer={(yes) => { setConfirming(false); if (yes) void act('delete', 'DELETE', `/api/sandboxes/${s.sandboxID}`); }} />
      )}
    </article>
  );
}
