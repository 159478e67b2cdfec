// Hash routes: the gateway serves one page at `/`; everything after `#` is the portal's.
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'home' }
  | { page: 'sandbox'; id: string }
  | { page: 'details'; id: string }
  | { page: 'users' | 'all-sandboxes' | 'audit' | 'host' | 'ai' | 'welcome' | 'account' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 's' && parts[1]) return parts[2] === 'details' ? { page: 'details', id: parts[1] } : { page: 'sandbox', id: parts[1] };
  if (parts[0] === 'admin' && (parts[1] === 'users' || parts[1] === 'sandboxes' || parts[1] === 'audit' || parts[1] === 'host' || parts[1] === 'ai')) {
    return { page: parts[1] === 'sandboxes' ? 'all-sandboxes' : parts[1] };
  }
  if (parts[0] === 'welcome' || parts[0] === 'account') return { page: parts[0] };
  return { page: 'home' };
}

export const href = {
  home: '#/',
  sandbox: (id: string) => `#/s/${id}`,
  details: (id: string) => `#/s/${id}/details`,
  users: '#/admin/users',
  allSandboxes: '#/admin/sandboxes',
  audit: '#/admin/audit',
  host: '#/admin/host',
  ai: '#/admin/ai',
  welcome: '#/welcome',
  account: '#/account',
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export const go = (to: string) => { location.hash = to; };
