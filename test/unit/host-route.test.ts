import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostName, matchHostRoute, subdomainHost } from '../../src/proxy/host-route.ts';

const base = 'code.example.com';
const id = 'abcdefghij0123456789';

test('host routing: user, workspace--user and port-sandbox subdomains; the base domain and other names are the gateway', () => {
  assert.deepEqual(matchHostRoute(`dan.${base}`, base), { kind: 'workspace', host: `dan.${base}`, user: 'dan', workspace: 'default' });
  assert.deepEqual(matchHostRoute(`Api-Work--dan.${base}:8443`, base), { kind: 'workspace', host: `api-work--dan.${base}`, user: 'dan', workspace: 'api-work' });
  assert.deepEqual(matchHostRoute(`3000-${id}.${base}`, base), { kind: 'port', host: `3000-${id}.${base}`, sandboxID: id, port: 3000 });
  for (const gateway of [base, `${base}:443`, '127.0.0.1:8080', 'localhost', 'example.com', `x${base}`, '[::1]:80', undefined]) {
    assert.deepEqual(matchHostRoute(gateway, base), { kind: 'gateway' }, String(gateway));
  }
  for (const unknown of [`a.b.${base}`, `99999-${id}.${base}`, `-x.${base}`, `x--.${base}`, `under_score.${base}`]) {
    assert.equal(matchHostRoute(unknown, base).kind, 'unknown', unknown);
  }
  assert.deepEqual(matchHostRoute(`dan.${base}`, undefined), { kind: 'gateway' });
});

test('host names: port and brackets dropped, lowercased; subdomain hosts built back', () => {
  assert.equal(hostName('Dan.Code.Example.com:8443'), 'dan.code.example.com');
  assert.equal(hostName('[::1]:8080'), '[::1]');
  assert.equal(subdomainHost(base, { user: 'dan' }), `dan.${base}`);
  assert.equal(subdomainHost(base, { user: 'dan', workspace: 'API' }), `api--dan.${base}`);
  assert.equal(subdomainHost(base, { sandboxID: id, port: 5173 }), `5173-${id}.${base}`);
});

test('login next= stays on the gateway: "/.//evil" and friends go home instead', async () => {
  const { safeNext } = await import('../../src/portal/login-page.ts');
  assert.equal(safeNext('/vscode-proxy/abc/?x=1'), '/vscode-proxy/abc/?x=1');
  assert.equal(safeNext('/auth/handoff?host=dan.example.test&next=%2F'), '/auth/handoff?host=dan.example.test&next=%2F');
  for (const bad of ['/.//evil.test', '//evil.test', '/\\evil.test', 'https://evil.test', '/..//evil.test', '/%2e//evil.test']) assert.equal(safeNext(bad), '/', bad);
});

test('served hosts: the public name, the base domain and below, IPs and localhost; nothing else', async () => {
  const { isServedHost } = await import('../../src/proxy/host-route.ts');
  for (const ok of ['code.example.com', 'dan.code.example.com:8443', 'DAN.code.example.com.', '127.0.0.1:8080', '[::1]:80', 'localhost:3000', undefined]) assert.ok(isServedHost(ok, 'code.example.com', 'code.example.com'), String(ok));
  for (const bad of ['evil.com', 'code.example.com.evil.com', 'xcode.example.com']) assert.ok(!isServedHost(bad, 'code.example.com', 'code.example.com'), bad);
});
