import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, type ProviderKey } from '../api.ts';
import { Confirm } from './confirm.tsx';

/**
 * Model provider keys: each provider, whether a key is stored (with its hint,
 * never the key), set or replace one through a password field, remove one
 * after confirming. `own`: the signed-in user's own keys, else the organisation's.
 */
export function ProviderKeys(props: { own: boolean }) {
  const path = props.own ? '/api/me/ai-keys' : '/api/ai/keys';
  const [keys, setKeys] = useState<ProviderKey[] | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => { get<ProviderKey[]>(path).then(setKeys, (e) => setError(e.message)); }, [tick, path]);

  const run = async (op: () => Promise<unknown>, done: string) => {
    setError(''); setNotice('');
    try { await op(); setNotice(done); } catch (e) { setError((e as Error).message); }
    setTick((n) => n + 1);
  };
  const save = (provider: string, key: string) => {
    setEditing(null);
    void run(() => api('PUT', `${path}/${provider}`, { key }),
      props.own ? `Your key for ${provider} is stored; your calls to ${provider} use it from now on.` : `Key for ${provider} stored. Sandboxes use it from their next call; none of them ever sees it.`);
  };
  const unset = props.own ? 'Not set: the organisation\'s key is used' : 'Not set: opencode cannot use this provider';

  return (
    <>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      {keys === null && !error && <p class="muted">Loading…</p>}
      {keys && (
        <table class="table">
          <thead><tr><th>Provider</th><th>Kind</th><th>Key</th><th><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.provider}>
                <td>{k.provider}</td>
                <td>{k.kind ?? '—'}</td>
                <td>
                  {k.set ? <span class="state-running">Set{k.hint && <> · <code>{k.hint}</code></>}</span> : <span class="muted">{unset}</span>}
                  {!k.configured && <span class="muted"> (no longer under ai.providers)</span>}
                  {editing === k.provider && <KeyForm provider={k.provider} replacing={k.set} onSave={(key) => save(k.provider, key)} onCancel={() => setEditing(null)} />}
                </td>
                <td class="actions">
                  {k.configured && editing !== k.provider && (
                    <button class="secondary small" aria-label={`${k.set ? 'Replace' : 'Set'} key for ${k.provider}`} onClick={() => setEditing(k.provider)}>{k.set ? 'Replace' : 'Set key'}</button>
                  )}
                  {k.set && <button class="danger small" aria-label={`Remove key for ${k.provider}`} onClick={() => setRemoving(k.provider)}>Remove</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {removing && (
        <Confirm title={`Remove the key for ${removing}?`} danger confirm="Remove key"
          body={props.own
            ? `Your calls to ${removing} go back to the organisation's key, and count against your monthly budget again.`
            : `opencode in every sandbox gets "an admin must add a key" from ${removing} until a key is set again (users' own keys still work).`}
          onAnswer={(yes) => { const p = removing; setRemoving(null); if (yes) void run(() => api('DELETE', `${path}/${p}`), `Key for ${p} removed.`); }} />
      )}
    </>
  );
}

/** A password field for a new key: focused when it opens, Escape cancels; the key is sent once and never shown. */
function KeyForm(props: { provider: string; replacing: boolean; onSave: (key: string) => void; onCancel: () => void }) {
  const [key, setKey] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => { input.current?.focus(); }, []);
  const id = `key-${props.provider}`;
  return (
    <form class="key-form" onSubmit={(e) => { e.preventDefault(); if (key.trim()) props.onSave(key.trim()); }}
      onKeyDown={(e) => { if (e.key === 'Escape') props.onCancel(); }}>
      <label for={id}>{props.replacing ? 'New' : 'API'} key for {props.provider}</label>
      <input id={id} ref={input} type="password" autocomplete="off" spellcheck={false} required minLength={8} value={key}
        onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
      <div class="actions">
        <button class="small" type="submit">Save key</button>
        <button class="small secondary" type="button" onClick={props.onCancel}>Cancel</button>
      </div>
    </form>
  );
}
