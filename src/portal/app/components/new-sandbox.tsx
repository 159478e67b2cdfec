import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, type Sandbox, type Template, type Workspace } from '../api.ts';
import { templateLabel } from '../format.ts';

const THROWAWAY = '\u0000throwaway';
const NEW = '\u0000new';

/**
 * "+": pick what to run and on which workspace. The user's `default`
 * workspace is preselected; "Throwaway" is deleted when its tab closes.
 */
export function NewSandbox(props: { onCreated: (s: Sandbox) => void; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [workspaces, setWorkspaces] = useState<Workspace[]>([]);
  const [templateID, setTemplateID] = useState('vscode');
  const [workspace, setWorkspace] = useState('default');
  const [newName, setNewName] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    dialog.current?.showModal();
    get<Template[]>('/api/templates').then(setTemplates, (e) => setError(e.message));
    get<Workspace[]>('/api/workspaces').then(setWorkspaces, () => {});
  }, []);

  const names = [...new Set(['default', ...workspaces.map((w) => w.name)])];
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      const chosen = workspace === THROWAWAY ? null : workspace === NEW ? newName.trim() : workspace;
      const created = await api<Sandbox>('POST', '/api/sandboxes', { templateID, workspace: chosen });
      props.onCreated(created);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };

  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="new-title" onClose={props.onClose}>
      <form onSubmit={submit}>
        <h2 id="new-title">New sandbox</h2>
        <fieldset>
          <legend>What to run</legend>
          <div class="choices">
            {templates.map((t) => (
              <label class="choice" key={t.templateID}>
                <input type="radio" name="template" value={t.templateID} checked={templateID === t.templateID}
                  onChange={() => { setTemplateID(t.templateID); setWorkspace(t.defaultWorkspace ?? THROWAWAY); }} />
                <strong>{templateLabel(t.templateID)}</strong>
                <span class="muted">{t.description}</span>
              </label>
            ))}
          </div>
        </fieldset>
        <label for="workspace">Workspace</label>
        <select id="workspace" value={workspace} onChange={(e) => setWorkspace((e.target as HTMLSelectElement).value)}>
          {names.map((n) => <option value={n} key={n}>{n}{n === 'default' ? ' (your default)' : ''}</option>)}
          <option value={NEW}>New workspace…</option>
          <option value={THROWAWAY}>Throwaway (deleted when you close its tab)</option>
        </select>
        {workspace === NEW && (
          <>
            <label for="new-workspace">Name of the new workspace</label>
            <input id="new-workspace" value={newName} required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
              title="1–64 letters, digits, . _ or -, starting with a letter or digit" onInput={(e) => setNewName((e.target as HTMLInputElement).value)} />
          </>
        )}
        <p class="hint">{workspace === THROWAWAY
          ? 'Its files are deleted with it.'
          : 'Your files and VS Code settings stay in this workspace whatever happens to the sandbox.'}</p>
        {error && <p class="error" role="alert">{error}</p>}
        <div class="actions">
          <button type="button" class="secondary" onClick={() => dialog.current?.close()}>Cancel</button>
          <button type="submit" disabled={busy || templates.length === 0}>{busy ? 'Creating…' : 'Create'}</button>
        </div>
      </form>
    </dialog>
  );
}
