import { useEffect, useState } from 'preact/hooks';
import { get, type Sandbox, type Workspace } from '../api.ts';
import { SandboxCard } from '../components/sandbox-card.tsx';

/** Home: the user's sandboxes as cards, and their workspaces. */
export function Dashboard(props: { title: string; path: string; showOwner?: boolean; onlyOwner?: string; onOpen: (s: Sandbox) => void; onNew?: () => void; refreshKey: number }) {
  const [sandboxes, setSandboxes] = useState<Sandbox[] | null>(null);
  const [workspaces, setWorkspaces] = useState<Workspace[]>([]);
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    get<Sandbox[]>(props.path).then((s) => { setSandboxes(props.onlyOwner ? s.filter((x) => x.owner === props.onlyOwner) : s); setError(''); }, (e) => setError(e.message));
    if (!props.showOwner) get<Workspace[]>('/api/workspaces').then(setWorkspaces, () => {});
  }, [tick, props.refreshKey, props.path]);
  useEffect(() => {
    // States change on their own (idle stop, crashes): keep the cards current.
    const t = setInterval(() => setTick((n) => n + 1), 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <section class="page" aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title">{props.title}</h1>
        {props.onNew && <button onClick={props.onNew}>+ New sandbox</button>}
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {sandboxes === null && !error && <p class="muted">Loading…</p>}
      {sandboxes?.length === 0 && (
        <div class="empty">
          <p>No sandboxes yet.</p>
          {props.onNew && <p>Press <strong>+ New sandbox</strong> to start VS Code in your browser. It opens here, in a tab.</p>}
        </div>
      )}
      <div class="cards">
        {sandboxes?.map((s) => <SandboxCard key={s.sandboxID} sandbox={s} showOwner={props.showOwner} onOpen={props.onOpen} onChanged={() => setTick((n) => n + 1)} />)}
      </div>
      {!props.showOwner && workspaces.length > 0 && (
        <>
          <h2>Your workspaces</h2>
          <table class="table">
            <thead><tr><th>Name</th><th>Created</th><th>Used by</th>{workspaces.some((w) => w.usage) && <th>Size</th>}</tr></thead>
            <tbody>
              {workspaces.map((w) => (
                <tr key={w.name}>
                  <td>{w.name}</td><td>{new Date(w.createdAt).toLocaleString()}</td>
                  <td>{w.sandboxes.length ? `${w.sandboxes.length} sandbox${w.sandboxes.length > 1 ? 'es' : ''}` : '—'}</td>
                  {workspaces.some((x) => x.usage) && <td>{w.usage ? `${w.usage.usedMB} MB${w.usage.limitMB === null ? '' : ` of ${w.usage.limitMB} MB`}` : '—'}</td>}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
