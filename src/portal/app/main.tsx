import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, get, type Me, type Sandbox } from './api.ts';
import { go, href, useRoute } from './router.ts';
import { useTabs } from './tabs.ts';
import { templateLabel } from './format.ts';
import { Dashboard } from './pages/dashboard.tsx';
import { SandboxTab } from './pages/sandbox-tab.tsx';
import { SandboxDetails } from './pages/sandbox-details.tsx';
import { Users } from './pages/users.tsx';
import { Audit } from './pages/audit.tsx';
import { HostOverview } from './pages/host.tsx';
import { AiAdmin } from './pages/ai.tsx';
import { Welcome, WELCOME_SEEN } from './pages/welcome.tsx';
import { Account } from './pages/account.tsx';
import { NewSandbox } from './components/new-sandbox.tsx';
import { Confirm } from './components/confirm.tsx';

function App() {
  const route = useRoute();
  const { tabs, open, close } = useTabs();
  const [me, setMe] = useState<Me | null>(null);
  const [names, setNames] = useState<Record<string, Sandbox>>({});
  const [creating, setCreating] = useState(false);
  const [closing, setClosing] = useState<Sandbox | null>(null);
  const [refreshKey, setRefreshKey] = useState(0);
  const [error, setError] = useState('');

  useEffect(() => {
    get<Me>('/api/me').then(async (m) => {
      setMe(m);
      if (m.role === 'admin' && !localStorage.getItem(WELCOME_SEEN) && location.hash === '') {
        const users = await get<unknown[]>('/api/users').catch(() => []);
        if (users.length <= 1) go(href.welcome);
      }
    }, (e) => setError(e.message));
  }, []);

  // Tab titles: each open tab's sandbox, refreshed as tabs open.
  useEffect(() => {
    for (const id of tabs) {
      if (!names[id]) get<Sandbox>(`/api/sandboxes/${id}`).then((s) => setNames((n) => ({ ...n, [id]: s })), () => close(id));
    }
  }, [tabs]);

  useEffect(() => { if (route.page === 'sandbox') open(route.id); }, [route]);

  const openSandbox = async (s: Sandbox) => {
    // Opening a stopped sandbox starts it; the tab shows its progress.
    if (s.state === 'stopped' || s.state === 'error') await api('POST', `/api/sandboxes/${s.sandboxID}/start`).catch((e) => setError(e.message));
    setNames((n) => ({ ...n, [s.sandboxID]: s }));
    go(href.sandbox(s.sandboxID));
  };

  const requestClose = async (id: string) => {
    const s = names[id] ?? await get<Sandbox>(`/api/sandboxes/${id}`).catch(() => null);
    if (s && s.workspace === null) { setClosing(s); return; }
    finishClose(id);
  };
  const finishClose = (id: string) => {
    close(id);
    if (route.page === 'sandbox' && route.id === id) go(href.home);
    setRefreshKey((k) => k + 1);
  };

  const logout = async () => {
    await api('POST', '/api/auth/logout').catch(() => {});
    sessionStorage.clear();
    location.assign('/login');
  };

  if (!me) return <main class="page"><p class={error ? 'error' : 'muted'}>{error || 'Loading…'}</p></main>;
  const admin = me.role === 'admin';
  const activeTab = route.page === 'sandbox' ? route.id : null;

  return (
    <>
      <a class="skip" href="#content">Skip to content</a>
      <header class="topbar">
        <a class="brand" href={href.home}>codeyard</a>
        <nav aria-label="Main">
          <a href={href.home} aria-current={route.page === 'home' ? 'page' : undefined}>My sandboxes</a>
          {admin && <>
            <a href={href.users} aria-current={route.page === 'users' ? 'page' : undefined}>Users</a>
            <a href={href.allSandboxes} aria-current={route.page === 'all-sandboxes' ? 'page' : undefined}>All sandboxes</a>
            <a href={href.audit} aria-current={route.page === 'audit' ? 'page' : undefined}>Audit log</a>
            <a href={href.host} aria-current={route.page === 'host' ? 'page' : undefined}>Host</a>
            <a href={href.ai} aria-current={route.page === 'ai' ? 'page' : undefined}>AI</a>
          </>}
        </nav>
        <div class="me">
          <a href={href.account}>{me.username}</a>
          <button class="secondary small" onClick={logout}>Log out</button>
        </div>
      </header>
      <div class="tabbar" role="tablist" aria-label="Open sandboxes">
        <a role="tab" class="tab" href={href.home} aria-selected={activeTab === null}>Home</a>
        {tabs.map((id) => (
          <span class="tab-wrap" key={id}>
            <a role="tab" class="tab" href={href.sandbox(id)} aria-selected={activeTab === id} aria-controls={`pane-${id}`}>
              {names[id] ? `${templateLabel(names[id]!.templateID)} · ${names[id]!.name}` : id.slice(0, 6)}
            </a>
            <button class="tab-close" aria-label={`Close ${names[id]?.name ?? id}`} title="Close tab" onClick={() => requestClose(id)}>×</button>
          </span>
        ))}
        <button class="tab-new" aria-label="New sandbox" title="New sandbox" onClick={() => setCreating(true)}>+</button>
      </div>
      <main id="content">
        {error && <p class="error page" role="alert">{error}</p>}
        {tabs.map((id) => <div id={`pane-${id}`} role="tabpanel" key={id} hidden={activeTab !== id}><SandboxTab id={id} active={activeTab === id} /></div>)}
        {activeTab === null && (
          route.page === 'details' ? <SandboxDetails id={route.id} onOpen={openSandbox} />
            : route.page === 'users' && admin ? <Users />
            : route.page === 'all-sandboxes' && admin ? <Dashboard title="All sandboxes" path="/api/sandboxes" showOwner onOpen={openSandbox} refreshKey={refreshKey} />
            : route.page === 'audit' && admin ? <Audit />
            : route.page === 'host' && admin ? <HostOverview />
            : route.page === 'ai' && admin ? <AiAdmin />
            : route.page === 'welcome' && admin ? <Welcome onDone={() => { localStorage.setItem(WELCOME_SEEN, '1'); go(href.home); }} />
            : route.page === 'account' ? <Account me={me} />
            : <Dashboard title="My sandboxes" path="/api/sandboxes" onlyOwner={me.username} onOpen={openSandbox} onNew={() => setCreating(true)} refreshKey={refreshKey} />
        )}
      </main>
      {creating && <NewSandbox onClose={() => setCreating(false)} onCreated={(s) => { setCreating(false); setNames((n) => ({ ...n, [s.sandboxID]: s })); go(href.sandbox(s.sandboxID)); }} />}
      {closing && (
        <Confirm title={`Close ${closing.name}?`} confirm="Close and delete" danger
          body="Its workspace is throwaway: closing the tab deletes the sandbox and all its files."
          onAnswer={async (yes) => {
            const s = closing;
            setClosing(null);
            if (!yes) return;
            await api('DELETE', `/api/sandboxes/${s.sandboxID}`).catch((e) => setError(e.message));
            finishClose(s.sandboxID);
          }} />
      )}
    </>
  );
}

render(<App />, document.getElementById('app')!);
