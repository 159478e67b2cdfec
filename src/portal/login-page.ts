import { createHash } from 'node:crypto';

// The login page: server-rendered (it must work before anyone is logged in and
// needs none of the portal's code), a form that posts JSON to /api/auth/login
// and then goes where the user was headed: the portal by default.
const SCRIPT = `
const form = document.querySelector('form');
const out = document.querySelector('#error');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  out.textContent = '';
  const body = JSON.stringify({ username: form.username.value, password: form.password.value });
  const res = await fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.ok) { location.assign(form.dataset.next); return; }
  const data = await res.json().catch(() => ({}));
  out.textContent = data.message || 'login failed (' + res.status + ')';
});`;

const SCRIPT_HASH = createHash('sha256').update(SCRIPT).digest('base64');

/** CSP allowing exactly this page's inline script and style, nothing else. */
export const LOGIN_PAGE_CSP = `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

const AFTER_LOGIN = '/';

/**
 * Only a path on this gateway: `next` must never send the user to another host.
 * Browsers drop tabs and newlines from URLs and read `\` as `/`, so those are
 * refused outright before the origin check.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || /[\u0000-\u001f\u007f\\]/.test(next)) return AFTER_LOGIN;
  const base = 'http://gateway.invalid';
  let url: URL;
  try { url = new URL(next, base); } catch { return AFTER_LOGIN; }
  const path = url.pathname + url.search + url.hash;
  // "/.//evil.com" normalises to "//evil.com": a browser reads that as another host.
  return url.origin === base && !path.startsWith('//') ? path : AFTER_LOGIN;
}

export function loginPage(next: string, done: boolean): string {
  const attr = next.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>codeyard — log in</title>
<style>:root{color-scheme:light dark}body{font:16px system-ui,sans-serif;max-width:22em;margin:15vh auto;padding:0 1em}
@media (prefers-color-scheme:dark){body{background:#14171c;color:#e6e9ee}}
label{display:block;margin:.8em 0 .2em}input{width:100%;padding:.5em;font:inherit;box-sizing:border-box}
button{margin-top:1.2em;padding:.55em 1.4em;font:inherit}#error{color:#d0342c;min-height:1.4em}:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}</style></head>
<body><h1>codeyard</h1>${done ? '<p>You are logged in. <a href="/">Go to your sandboxes</a>.</p>' : ''}
<form data-next="${attr}"><label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button><p id="error" role="alert"></p></form>
<script>${SCRIPT}</script></body></html>`;
}
