import { useState } from 'preact/hooks';
import { api, type Me } from '../api.ts';

/** Your account: change your password. */
export function Account(props: { me: Me }) {
  const [oldPassword, setOld] = useState('');
  const [newPassword, setNew] = useState('');
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await api('POST', '/api/me/password', { oldPassword, newPassword });
      setMessage({ ok: true, text: 'Password changed. Your other sessions were logged out.' });
      setOld(''); setNew('');
    } catch (err) {
      setMessage({ ok: false, text: (err as Error).message });
    }
  };
  return (
    <section class="page narrow" aria-labelledby="page-title">
      <h1 id="page-title">Account</h1>
      <p>Logged in as <strong>{props.me.username}</strong> ({props.me.role}).</p>
      <form class="panel" onSubmit={submit}>
        <h2>Change password</h2>
        <label for="old-password">Current password</label>
        <input id="old-password" type="password" autocomplete="current-password" required value={oldPassword} onInput={(e) => setOld((e.target as HTMLInputElement).value)} />
        <label for="new-password">New password (at least 8 characters)</label>
        <input id="new-password" type="password" autocomplete="new-password" minLength={8} required value={newPassword} onInput={(e) => setNew((e.target as HTMLInputElement).value)} />
        {message && <p class={message.ok ? 'notice' : 'error'} role="status">{message.text}</p>}
        <div class="actions"><button type="submit">Change password</button></div>
      </form>
    </section>
  );
}
