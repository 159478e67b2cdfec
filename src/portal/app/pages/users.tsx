import { useEffect, useState } from 'preact/hooks';
import { api, get, type LimitSetting, type LimitSettings, type User } from '../api.ts';
import { Confirm } from '../components/confirm.tsx';

const LIMIT_KEYS = ['maxSandboxes', 'maxMemoryMB', 'maxCpu'] as const;
const UNIT = { maxSandboxes: 'sandboxes', maxMemoryMB: 'MB', maxCpu: 'CPU' } as const;

/** The limits in force, e.g. "4 sandboxes · 8192 MB", saying which follow the configured defaults. */
const limitText = (u: User) => {
  const text = LIMIT_KEYS.filter((k) => u.limits[k] !== null).map((k) => `${u.limits[k]} ${UNIT[k]}`).join(' · ') || 'none';
  const defaults = LIMIT_KEYS.filter((k) => u.limitSettings[k] === 'default');
  if (defaults.length === LIMIT_KEYS.length) return `${text} (defaults)`;
  return defaults.length ? `${text} (${defaults.map((k) => UNIT[k]).join(', ')}: default)` : text;
};

/** A limit field: empty follows the default, `none` is no limit, else a number. */
const toSetting = (v: string): LimitSetting => {
  const t = v.trim().toLowerCase();
  return t === '' ? 'default' : t === 'none' ? null : Number(t);
};
const fromSetting = (s: LimitSetting) => (s === 'default' ? '' : s === null ? 'none' : String(s));
const limitInput = { inputMode: 'decimal' as const, pattern: '\\s*(none|[0-9]+(\\.[0-9]+)?)\\s*', title: 'a number; none: no limit; empty: the default' };

/** A readable random password for the admin to pass on. */
function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(14));
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

/** Admins: who can log in, with what role and limits. */
export function Users() {
  const [users, setUsers] = useState<User[]>([]);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [tick, setTick] = useState(0);
  const [form, setForm] = useState({ username: '', password: '', role: 'user', maxSandboxes: '', maxMemoryMB: '', maxCpu: '' });
  const [editing, setEditing] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<User | null>(null);
  useEffect(() => { get<User[]>('/api/users').then(setUsers, (e) => setError(e.message)); }, [tick]);

  const run = async (op: () => Promise<unknown>, done: string) => {
    setError(''); setNotice('');
    try { await op(); setNotice(done); } catch (e) { setError((e as Error).message); }
    setTick((n) => n + 1);
  };
  const field = (k: keyof typeof form) => ({
    value: form[k], onInput: (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value }),
  });
  const add = (e: Event) => {
    e.preventDefault();
    const password = form.password || generatePassword();
    void run(() => api('POST', '/api/users', {
      username: form.username, password, role: form.role,
      limits: { maxSandboxes: toSetting(form.maxSandboxes), maxMemoryMB: toSetting(form.maxMemoryMB), maxCpu: toSetting(form.maxCpu) },
    }), `Added ${form.username}.${form.password ? '' : ` Their password: ${password} — pass it on; it is not shown again.`}`)
      .then(() => setForm({ username: '', password: '', role: 'user', maxSandboxes: '', maxMemoryMB: '', maxCpu: '' }));
  };
  const resetPassword = (u: User) => {
    const password = generatePassword();
    void run(() => api('PATCH', `/api/users/${u.username}`, { password }), `New password for ${u.username}: ${password} — pass it on; their sessions were logged out.`);
  };

  return (
    <section class="page" aria-labelledby="page-title">
      <h1 id="page-title">Users</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <table class="table">
        <thead><tr><th>User</th><th>Role</th><th>State</th><th>Sandboxes</th><th>Limits</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.username}>
              <td>{u.username}</td><td>{u.role}</td><td>{u.disabled ? 'disabled' : 'active'}</td><td>{u.sandboxes}</td>
              <td>{editing === u.username ? <LimitsForm user={u} onSave={(limits) => { setEditing(null); void run(() => api('PATCH', `/api/users/${u.username}`, { limits }), `Limits of ${u.username} saved.`); }} onCancel={() => setEditing(null)} /> : limitText(u)}</td>
              <td class="actions">
                <button class="secondary small" onClick={() => resetPassword(u)}>Reset password</button>
                <button class="secondary small" onClick={() => setEditing(u.username)}>Limits</button>
                <button class="secondary small" onClick={() => run(() => api('PATCH', `/api/users/${u.username}`, { disabled: !u.disabled }), `${u.username} ${u.disabled ? 'enabled' : 'disabled'}.`)}>{u.disabled ? 'Enable' : 'Disable'}</button>
                <button class="danger small" onClick={() => setDeleting(u)}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="panel" onSubmit={add} aria-labelledby="add-user">
        <h2 id="add-user">Add a user</h2>
        <div class="form-grid">
          <label>Username<input required pattern="[a-z0-9]([a-z0-9\-]{0,30}[a-z0-9])?" title="1–32 lowercase letters, digits or -" autocomplete="off" {...field('username')} /></label>
          <label>Password <span class="muted">(empty: generate one)</span><input type="text" minLength={8} autocomplete="new-password" {...field('password')} /></label>
          <label>Role<select {...field('role')}><option value="user">user</option><option value="admin">admin</option></select></label>
          <label>Max sandboxes<input {...limitInput} placeholder="default" {...field('maxSandboxes')} /></label>
          <label>Max memory (MB)<input {...limitInput} placeholder="default" {...field('maxMemoryMB')} /></label>
          <label>Max CPUs<input {...limitInput} placeholder="default" {...field('maxCpu')} /></label>
        </div>
        <p class="hint">Limits left empty follow the configured defaults (<code>users.defaultLimits</code>; admins have none); <code>none</code> is no limit.</p>
        <div class="actions"><button type="submit">Add user</button></div>
      </form>
      {deleting && (
        <Confirm title={`Delete ${deleting.username}?`} danger confirm="Delete user"
          body="They can no longer log in and their sandboxes stop. Their workspaces are kept (purge them with the API or `codeyard user rm --purge`)."
          onAnswer={(yes) => { const u = deleting; setDeleting(null); if (yes) void run(() => api('DELETE', `/api/users/${u.username}`), `${u.username} deleted; their workspaces are kept.`); }} />
      )}
    </section>
  );
}

/** Edits a user's limits: a number, `none`, or empty for the default (shown as the placeholder when in force). */
function LimitsForm(props: { user: User; onSave: (l: LimitSettings) => void; onCancel: () => void }) {
  const { limits, limitSettings: l } = props.user;
  const [v, setV] = useState({ s: fromSetting(l.maxSandboxes), m: fromSetting(l.maxMemoryMB), c: fromSetting(l.maxCpu) });
  const keyOf = { s: 'maxSandboxes', m: 'maxMemoryMB', c: 'maxCpu' } as const;
  const placeholder = (k: 's' | 'm' | 'c') => (l[keyOf[k]] === 'default' ? `default (${limits[keyOf[k]] ?? 'none'})` : 'default');
  const input = (k: 's' | 'm' | 'c', label: string) => (
    <label class="inline">{label}<input {...limitInput} value={v[k]} placeholder={placeholder(k)} onInput={(e) => setV({ ...v, [k]: (e.target as HTMLInputElement).value })} /></label>
  );
  return (
    <form class="limits" onSubmit={(e) => { e.preventDefault(); props.onSave({ maxSandboxes: toSetting(v.s), maxMemoryMB: toSetting(v.m), maxCpu: toSetting(v.c) }); }}>
      {input('s', 'sandboxes')}{input('m', 'MB')}{input('c', 'CPU')}
      <button class="small" type="submit">Save</button><button class="small secondary" type="button" onClick={props.onCancel}>Cancel</button>
    </form>
  );
}
