// The sandboxes open as tabs: kept for the browser tab's life (sessionStorage),
// each one's IDE frame stays loaded while another tab is shown.
import { useCallback, useState } from 'preact/hooks';

const KEY = 'codeyard.tabs';

function load(): string[] {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function useTabs() {
  const [tabs, setTabs] = useState<string[]>(load);
  const save = (next: string[]) => {
    sessionStorage.setItem(KEY, JSON.stringify(next));
    setTabs(next);
  };
  const open = useCallback((id: string) => setTabs((t) => {
    if (t.includes(id)) return t;
    const next = [...t, id];
    sessionStorage.setItem(KEY, JSON.stringify(next));
    return next;
  }), []);
  const close = useCallback((id: string) => setTabs((t) => {
    const next = t.filter((x) => x !== id);
    sessionStorage.setItem(KEY, JSON.stringify(next));
    return next;
  }), []);
  return { tabs, open, close, replace: save };
}
